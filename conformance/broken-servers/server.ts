/**
 * A compact stripe402 v1 server that exists to prove the conformance suite:
 * correct by default, and with `break` set, wrong in exactly one named way
 * (breaks.ts lists them). broken.test.ts runs the suite against the correct
 * server (every check must pass) and against each break (the check naming
 * the broken rule must fail), so a check that can never fail is found.
 *
 * It is a fixture, not the reference server: balances live in a Map, top-ups
 * are serialized by an in-process mutex, and only reference/core (codec,
 * units, client id) is shared, so a bug in reference/server cannot hide a
 * bug in the suite. Stripe is reached through the official SDK, pointed at
 * the emulator. Every `is('...')` below is a deliberate bug, off by default.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import Stripe from 'stripe';
import {
  base64Decode,
  base64Encode,
  checkMessage,
  decodeHeaderObject,
  decodePaymentHeader,
  deriveClientId,
  encodeHeader,
  unitsToMinor,
  HeaderDecodeError,
  endOfJsonString,
  hasDuplicateMembers,
  DISCOVERY_PATH,
  HEADER_PAYMENT,
  HEADER_PAYMENT_REQUIRED,
  HEADER_PAYMENT_RESPONSE,
  MAX_PAYMENT_HEADER_LENGTH,
  STRIPE402_VERSION,
  type Decoded,
  type DiscoveryDocument,
  type ErrorCode,
  type PaymentPayload,
  type PaymentRequiredResponse,
  type PaymentRequirements,
  type PaymentResponse,
} from '@stripe402/core';
import { BREAKS, VARIANTS, type BreakName, type VariantName } from './breaks.ts';

export { BREAKS, NOT_FOR_THE_CORRECT_SERVER, UNBREAKABLE, VARIANTS, type BreakName, type BreakInfo, type VariantName, type VariantInfo } from './breaks.ts';

export interface BrokenServerOptions {
  /** Base URL of the Stripe backend (the emulator), e.g. http://127.0.0.1:12111. */
  stripeUrl: string;
  stripeSecretKey: string;
  publishableKey: string;
  /** The HMAC key of client ids (CID-1); at least 32 bytes. */
  serverSecret: string;
  /** The one rule to break, or a departure the spec allows (VARIANTS); absent for the correct server. */
  break?: BreakName | VariantName;
}

export interface BrokenServer {
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

/** One price of a paid route (one accepts entry). */
interface Price {
  currency: string;
  amount: number;
  minTopUp: number;
  maxTopUp?: number;
}

/** A paid route of the fixture and what it serves once paid. */
interface PaidRoute {
  path: string;
  description: string;
  prices: Price[];
  handler: () => Response;
}

/** What a payment error answers: the wire code, a message for humans, and the payment-response fields. */
interface Refusal {
  code: ErrorCode;
  message: string;
  clientId: string;
  creditsRemaining: number;
  extra?: Partial<PaymentResponse>;
}

/** A charge or resume that did not end in credit. */
class NotCredited {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
    readonly extra: Partial<PaymentResponse> = {},
  ) {}
}

/** Stripe itself could not be reached: the answer is 503 with Retry-After, never a charge (ERR-5). */
class BackendUnavailable extends Error {}

/** Serializes async work per key: one top-up per client and currency at a time (PROC-7). */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

const JOKES = [
  'There are 10 kinds of people: those who read binary and those who do not.',
  'A SQL query walks into a bar, goes up to two tables and asks: may I join you?',
  'Why do programmers prefer dark mode? Because light attracts bugs.',
];

const KNOWN_MEMBERS = new Set(['stripe402Version', 'paymentMethodId', 'clientId', 'topUpAmount', 'idempotencyKey', 'paymentIntentId', 'currency']);
const MOUNT_PREFIXES = ['/v1', '/api', '/public', '/static'];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts the fixture on 127.0.0.1 with an OS-chosen port. */
export async function startBrokenServer(options: BrokenServerOptions): Promise<BrokenServer> {
  if (options.break !== undefined && !Object.hasOwn(BREAKS, options.break) && !Object.hasOwn(VARIANTS, options.break)) {
    throw new Error(`unknown break: ${options.break}`);
  }
  const app = buildApp(options);
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function buildApp(options: BrokenServerOptions): Hono<{ Bindings: HttpBindings }> {
  const is = (name: BreakName | VariantName) => options.break === name;
  // Errors as stripe402 v1 sends them (Table 15.2); top-ups not serialized; no card authentication (AUTH-4).
  const v1Errors = is('v1-error-bodies') || is('double-charge-with-v1-error-bodies');
  const doubleCharge = is('double-charge-on-concurrent-top-ups') || is('double-charge-with-v1-error-bodies');
  const noAuthentication = is('no-card-authentication') || is('without-authentication-refuses-payment-intent');
  const stripeUrl = new URL(options.stripeUrl);
  const stripe = new Stripe(options.stripeSecretKey, {
    host: stripeUrl.hostname,
    port: stripeUrl.port || (stripeUrl.protocol === 'https:' ? 443 : 80),
    protocol: stripeUrl.protocol === 'https:' ? 'https' : 'http',
    telemetry: false,
    maxNetworkRetries: 0,
  });

  // ---- prices: two currencies, so that balances per currency can be tested (UNIT-5)
  const minTopUp = is('min-top-up-below-amount') ? 50 : is('min-top-up-below-stripe-minimum') ? 1_000 : 50_000;
  const maxTopUp = is('no-max-top-up') ? undefined : 1_000_000;
  const usd: Price = { currency: 'usd', amount: 100, minTopUp, ...(maxTopUp ? { maxTopUp } : {}) };
  const eur: Price = { ...usd, currency: 'eur' };
  const prices: Price[] = [usd, eur];
  // A minTopUp of 50,010 units charges 5,001 fils: not a multiple of kwd's 10-fils step (UNIT-7).
  if (is('min-top-up-off-charge-step')) prices.push({ currency: 'kwd', amount: 100, minTopUp: 50_010, maxTopUp: 1_000_000 });
  if (is('duplicate-currency-entries')) prices.push({ ...usd, amount: 200, minTopUp: 60_000 });

  const routes: PaidRoute[] = [
    {
      path: '/api/joke',
      description: 'A random joke',
      prices,
      handler: () => Response.json({ joke: JOKES[Math.floor(Math.random() * JOKES.length)] }),
    },
    {
      path: '/api/fail',
      description: 'A paid route whose handler always fails',
      prices,
      handler: () => Response.json({ error: 'the handler failed on purpose' }, { status: 500 }),
    },
  ];

  // ---- the ledger: balances per (client id, currency); a PaymentIntent credits once (UNIT-5, LEDG-4)
  const balances = new Map<string, number>();
  const creditedIntents = new Set<string>();
  const idempotencyRecords = new Map<string, { units: number; currency: string; intentId?: string }>();
  const lastChargeOf = new Map<string, string>();
  const seenSpendHeaders = new Set<string>();
  const topUpLock = new KeyedMutex();
  // ---- rate limits (ERR-10, ERR-11): client ids that do not pay, one budget for the whole fixture (one source)
  const unpaid = { tokens: 600, at: Date.now() };
  const unpaidLimited = () => {
    unpaid.tokens = Math.min(600, unpaid.tokens + ((Date.now() - unpaid.at) / 1000) * 20);
    unpaid.at = Date.now();
    return unpaid.tokens < 1;
  };
  const keyOf = (clientId: string, currency: string) => (is('balance-shared-across-currencies') ? clientId : `${clientId}|${currency}`);
  const balanceOf = (clientId: string, currency: string) => balances.get(keyOf(clientId, currency)) ?? 0;
  const credit = (clientId: string, currency: string, units: number) => {
    const after = balanceOf(clientId, currency) + units;
    balances.set(keyOf(clientId, currency), after);
    return after;
  };

  /**
   * Deducts only if the balance covers it and returns the balance after this
   * deduction (PROC-9), or undefined; JavaScript runs the read and the write
   * without yielding, so spends cannot interleave (LEDG-1).
   */
  async function trySpend(clientId: string, currency: string, amount: number): Promise<number | undefined> {
    const key = keyOf(clientId, currency);
    const before = balances.get(key) ?? 0;
    if (before < amount) return undefined;
    if (is('overdraft-under-concurrency')) await sleep(20); // read, await, write what was read
    balances.set(key, before - amount);
    return before - amount;
  }

  // ---- messages
  function requirementsOf(route: PaidRoute): PaymentRequirements[] {
    return route.prices.map((price) => ({
      scheme: 'stripe',
      currency: price.currency,
      amount: price.amount,
      minTopUp: price.minTopUp,
      ...(price.maxTopUp !== undefined ? { maxTopUp: price.maxTopUp } : {}),
      publishableKey: options.publishableKey,
      description: route.description,
    }));
  }

  function challengeOf(route: PaidRoute, error?: ErrorCode): PaymentRequiredResponse {
    const challenge = {
      stripe402Version: STRIPE402_VERSION,
      resource: { url: is('resource-url-elsewhere') ? '/api' : route.path, description: route.description, mimeType: 'application/json' },
      accepts: requirementsOf(route) as PaymentRequiredResponse['accepts'],
      ...(error ? { error } : {}),
    } satisfies PaymentRequiredResponse;
    if (is('challenge-missing-resource')) delete (challenge as Partial<PaymentRequiredResponse>).resource;
    return challenge;
  }

  function encodeChallenge(challenge: PaymentRequiredResponse): string {
    if (!is('challenge-header-unpadded')) return encodeHeader(challenge);
    // Insignificant whitespace until the encoding needs padding, which is then dropped.
    let text = JSON.stringify(challenge);
    while (!base64Encode(new TextEncoder().encode(text)).endsWith('=')) text = '{ ' + text.slice(1);
    return base64Encode(new TextEncoder().encode(text)).replace(/=+$/, '');
  }

  function humanMessage(message: string): string {
    return is('leaks-internals') ? `${message}\n${new Error(message).stack ?? ''}` : message;
  }

  /** The headers every response to a paid request carries: never stored by a shared cache (ENC-11, ENC-15). */
  function paidResponseHeaders(): Headers {
    const headers = new Headers({ 'content-type': 'application/json' });
    if (!is('no-cache-control-no-store')) headers.set('cache-control', 'no-store');
    return headers;
  }

  /** A 402: the challenge as header and body, plus on a payment error the payment-response (ENC-10, ERR-2). */
  function answer402(route: PaidRoute, refusal?: Refusal): Response {
    if (refusal?.code === 'rate_limited' && is('rate-limited-as-429')) return new Response('Too Many Requests', { status: 429, headers: { 'retry-after': '1' } });
    if (refusal && v1Errors && refusal.code !== 'insufficient_credits') {
      // v1: neither payment header; the body is a PaymentResponse with no client id and a placeholder balance.
      const body = { success: false, creditsRemaining: 0, clientId: '', error: humanMessage(refusal.message), errorCode: refusal.code, ...refusal.extra };
      return new Response(JSON.stringify(body), { status: 402, headers: paidResponseHeaders() });
    }
    let code = refusal?.code;
    if (code === 'insufficient_credits' && is('legacy-error-code')) code = 'payment_required';
    const challenge = challengeOf(route, is('challenge-carries-error') && !refusal ? 'insufficient_credits' : code);
    const headers = paidResponseHeaders();
    if (code === 'rate_limited') headers.set('retry-after', '1');
    if (!(refusal && is('error-402-without-payment-required'))) headers.set(HEADER_PAYMENT_REQUIRED, encodeChallenge(challenge));
    let body = challenge;
    if (is('challenge-body-differs-from-header')) {
      body = { ...challenge, accepts: challenge.accepts.map((a) => ({ ...a, amount: a.amount * 2 })) as PaymentRequiredResponse['accepts'] };
    }
    let status = 402;
    if (refusal && !is('error-402-without-payment-response') && !v1Errors) {
      const response: PaymentResponse = {
        success: false,
        creditsRemaining: refusal.creditsRemaining,
        clientId: refusal.clientId,
        error: humanMessage(refusal.message),
        ...(is('error-response-without-error-code') ? {} : { errorCode: code }),
        ...refusal.extra,
      };
      headers.set(HEADER_PAYMENT_RESPONSE, encodeHeader(response));
      if (is('payment-errors-not-402') && refusal.code === 'invalid_payment') status = 400;
    }
    return new Response(JSON.stringify(body), { status, headers });
  }

  // ---- decoding the payment header, with the lenient variants the breaks need
  function decodePayment(raw: string): Decoded<PaymentPayload> {
    if (is('accepts-duplicate-payment-header') && raw.includes(',')) raw = raw.split(',')[0]!.trim();
    if (is('requires-padding') && raw.trim().length % 4 !== 0) {
      return { ok: false, error: new HeaderDecodeError('invalid_payment', 'the header must be padded base64') };
    }
    if (is('five-hundred-on-null-payload')) {
      // v1's reading: whatever Buffer makes of it, JSON.parse, then straight to the members.
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
      } catch {
        json = undefined;
      }
      if (json === null) (json as unknown as PaymentPayload).clientId; // TypeError: Cannot read properties of null
      if (json !== undefined && (typeof json !== 'object' || Array.isArray(json))) return { ok: true, value: {} as PaymentPayload };
    }
    if (is('five-hundred-on-invalid-input')) {
      // Trusts the header: JSON.parse throws on junk and nothing catches it.
      const json = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as unknown;
      if (typeof json !== 'object' || json === null) throw new TypeError('the payload is not an object');
    }
    let object: Decoded<Record<string, unknown>> | undefined;
    if (is('accepts-oversize-header') && raw.length > MAX_PAYMENT_HEADER_LENGTH) object = decodeHeaderObject(raw);
    if (is('accepts-junk-base64')) object = parseLoosely(Buffer.from(raw, 'base64'));
    if (is('accepts-invalid-utf8')) {
      const strict = decodeHeaderObject(raw);
      if (!strict.ok && strict.error.detail.includes('UTF-8')) {
        object = parseLoosely(Buffer.from(raw.trim(), 'base64'), new TextDecoder('utf-8', { fatal: false }));
      }
    }
    if (is('unwraps-non-object-json')) {
      const bytes = Buffer.from(raw.trim(), 'base64');
      try {
        let json: unknown = JSON.parse(bytes.toString('utf8'));
        if (typeof json === 'string') json = JSON.parse(json);
        if (Array.isArray(json)) json = json[0];
        if (typeof json === 'object' && json !== null) object = { ok: true, value: json as Record<string, unknown> };
      } catch {
        // not JSON at all: the strict path answers
      }
    }
    if (object?.ok) return checkPayload(object.value);
    // The strict codec refuses two members of one name (ENC-16); these breaks read them anyway.
    if ((is('duplicate-member-first-wins') || is('accepts-duplicate-members')) && raw.length <= MAX_PAYMENT_HEADER_LENGTH && !raw.includes(',')) {
      const bytes = base64Decode(raw);
      const text = bytes ? new TextDecoder().decode(bytes) : '';
      if (bytes && parseLoosely(Buffer.from(bytes)) && hasDuplicateMembers(text)) {
        return checkPayload(is('duplicate-member-first-wins') ? firstMemberWins(text) : (JSON.parse(text) as Record<string, unknown>));
      }
    }
    const strict = decodePaymentHeader(raw);
    if (strict.ok) return checkPayload(strict.value as unknown as Record<string, unknown>);
    // The lenient breaks repair members only: the length and repetition rules stay strict.
    if (!isLenient() || raw.length > MAX_PAYMENT_HEADER_LENGTH || raw.includes(',')) return strict;
    const lenient = decodeHeaderObject(raw);
    return lenient.ok ? checkPayload(lenient.value, strict) : strict;
  }

  function parseLoosely(bytes: Buffer, decoder: TextDecoder = new TextDecoder()): Decoded<Record<string, unknown>> | undefined {
    try {
      const json: unknown = JSON.parse(decoder.decode(bytes));
      return typeof json === 'object' && json !== null && !Array.isArray(json) ? { ok: true, value: json as Record<string, unknown> } : undefined;
    } catch {
      return undefined;
    }
  }

  function isLenient(): boolean {
    return [
      'no-version-check', 'loose-version-equality', 'accepts-float-top-up', 'coerces-top-up-amount',
      'accepts-out-of-range-top-up', 'accepts-malformed-client-id', 'drops-malformed-members', 'no-ids-treated-as-unpaid',
      'charges-fractional-top-up',
    ].some((name) => is(name as BreakName));
  }

  /**
   * Schema validation of a decoded payload, where each lenient break repairs
   * one kind of invalid member and lets it through, as careless servers do.
   */
  function checkPayload(value: Record<string, unknown>, strictResult?: Decoded<PaymentPayload>): Decoded<PaymentPayload> {
    const repaired = { ...value };
    let restore: Record<string, unknown> = {};
    if (is('no-version-check') && Number.isInteger(repaired.stripe402Version)) repaired.stripe402Version = 1;
    // eslint-disable-next-line eqeqeq -- the bug is exactly this loose comparison
    if (is('loose-version-equality') && (repaired.stripe402Version as unknown) == 1) repaired.stripe402Version = 1;
    if (is('accepts-float-top-up') && typeof repaired.topUpAmount === 'number') repaired.topUpAmount = Math.trunc(repaired.topUpAmount);
    if (is('charges-fractional-top-up') && typeof repaired.topUpAmount === 'number' && !Number.isInteger(repaired.topUpAmount)) {
      restore = { topUpAmount: repaired.topUpAmount };
      delete repaired.topUpAmount;
    }
    if (is('coerces-top-up-amount') && repaired.topUpAmount !== undefined && typeof repaired.topUpAmount !== 'number') {
      repaired.topUpAmount = Number(repaired.topUpAmount);
    }
    if (is('accepts-out-of-range-top-up') && Number.isInteger(repaired.topUpAmount) && !Number.isSafeInteger(repaired.topUpAmount as number)) {
      restore = { topUpAmount: repaired.topUpAmount };
      delete repaired.topUpAmount;
    }
    if (is('accepts-out-of-range-top-up') && Number.isInteger(repaired.topUpAmount) && (repaired.topUpAmount as number) < 1) {
      restore = { topUpAmount: repaired.topUpAmount };
      delete repaired.topUpAmount;
    }
    if (is('accepts-malformed-client-id') && typeof repaired.clientId === 'string') {
      repaired.clientId = repaired.clientId.trim().toLowerCase().replace(/[^0-9a-f]/g, '0').padEnd(64, '0').slice(0, 64);
    }
    if (is('drops-malformed-members')) {
      for (const name of ['paymentMethodId', 'idempotencyKey', 'paymentIntentId', 'currency']) {
        if (!(name in repaired)) continue;
        const alone = checkMessage<PaymentPayload>({ stripe402Version: 1, clientId: '0'.repeat(64), [name]: repaired[name] }, 'payment-payload');
        if (!alone.ok) delete repaired[name];
      }
    }
    if (is('no-ids-treated-as-unpaid') && repaired.clientId === undefined && repaired.paymentMethodId === undefined) {
      return { ok: true, value: repaired as unknown as PaymentPayload };
    }
    const checked = checkMessage<PaymentPayload>(repaired, 'payment-payload');
    if (!checked.ok) return strictResult && !strictResult.ok ? strictResult : checked;
    return { ok: true, value: { ...checked.value, ...restore } as PaymentPayload };
  }

  // ---- processing a payment header (spec 8.2), for one paid route
  type Paid = { clientId: string; currency: string; deducted: number; balance: number; chargeId?: string; chargeAmount?: number };
  type Outcome = { paid: Paid } | { refused: Refusal } | { challenge: true };

  async function processPayment(route: PaidRoute, raw: string): Promise<Outcome> {
    const refuse = (code: ErrorCode, message: string, clientId = '', creditsRemaining = 0, extra?: Partial<PaymentResponse>): Outcome => ({
      refused: { code, message, clientId, creditsRemaining, ...(extra ? { extra } : {}) },
    });

    // 1. Decode and validate: nothing reaches Stripe or the ledger before this passes (PROC-2).
    const decoded = decodePayment(raw);
    if (!decoded.ok) {
      return refuse(decoded.error.code, is('leaks-runtime-error-text') ? `strconv.ParseInt: parsing "${raw.slice(0, 12)}": invalid syntax` : decoded.error.detail);
    }
    let payload = decoded.value;
    if (noAuthentication && payload.paymentIntentId !== undefined) {
      if (is('without-authentication-refuses-payment-intent')) return refuse('invalid_payment', 'paymentIntentId is not supported');
      // AUTH-4: the format was checked with the rest of the payload; the member is then ignored.
      const { paymentIntentId: _ignored, ...rest } = payload;
      payload = rest as PaymentPayload;
    }
    if (payload.clientId === undefined && payload.paymentMethodId === undefined) return { challenge: true };
    if (is('rejects-unknown-fields')) {
      const unknown = Object.keys(payload).find((name) => !KNOWN_MEMBERS.has(name));
      if (unknown) return refuse('invalid_payment', `the payload member ${unknown} is not allowed`);
    }
    if (is('requires-top-up-amount') && payload.paymentMethodId !== undefined && payload.topUpAmount === undefined) {
      return refuse('invalid_payment', 'topUpAmount is required with paymentMethodId');
    }
    let price = route.prices[0]!;
    if (payload.currency !== undefined) {
      const chosen = route.prices.find((p) => p.currency === payload.currency);
      if (!chosen && !is('ignores-currency')) return refuse('currency_not_accepted', `this resource is not sold in ${payload.currency}`);
      if (chosen) price = chosen;
    }
    const { currency, amount } = price;
    const served = (clientId: string, balance: number, chargeId?: string, chargeAmount?: number): Outcome => ({
      paid: { clientId, currency, deducted: amount, balance, ...(chargeId ? { chargeId, chargeAmount } : {}) },
    });
    const shortMessage = is('leaks-database-error-text') ? 'ERR value is not an integer or out of range' : 'the balance does not cover this request';
    const short = (clientId: string) => refuse('insufficient_credits', shortMessage, clientId, balanceOf(clientId, currency));

    // 3. A client id spends its balance (the resume of step 2 is handled with the card, below).
    const bothGiven = payload.clientId !== undefined && payload.paymentMethodId !== undefined;
    if (payload.clientId !== undefined && payload.paymentIntentId === undefined && !(bothGiven && is('charges-when-card-given-with-client-id'))) {
      const clientId = payload.clientId;
      if (is('replay-served-free') && seenSpendHeaders.has(raw) && balanceOf(clientId, currency) >= amount) {
        return { paid: { clientId, currency, deducted: 0, balance: balanceOf(clientId, currency) } };
      }
      if (is('replay-served-free')) seenSpendHeaders.add(raw);
      const limitable = payload.paymentMethodId === undefined;
      if (limitable && !is('rate-limited-after-spend') && unpaidLimited()) return refuse('rate_limited', 'too many client ids that do not pay; retry after Retry-After');
      const balance = await trySpend(clientId, currency, amount);
      if (limitable && is('rate-limited-after-spend') && unpaidLimited()) return refuse('rate_limited', 'too many client ids that do not pay; retry after Retry-After');
      if (balance !== undefined) return served(clientId, balance);
      if (limitable) unpaid.tokens -= 1;
      if (payload.paymentMethodId === undefined) {
        if (is('unknown-client-distinguishable') && !balances.has(keyOf(clientId, currency))) {
          return refuse('insufficient_credits', 'unknown client', '', 0);
        }
        return short(clientId);
      }
    }

    // 4. A PaymentMethod names the client through its card fingerprint (PROC-4, CID-1).
    let clientId: string;
    if (payload.paymentMethodId !== undefined) {
      let card: Stripe.PaymentMethod.Card | null | undefined;
      try {
        card = (await stripe.paymentMethods.retrieve(payload.paymentMethodId)).card;
      } catch (error) {
        if (isUnavailable(error)) throw new BackendUnavailable('stripe unreachable', { cause: error });
        if (is('unknown-payment-method-declined')) return refuse('card_declined', 'the card was declined');
        if (is('leaks-stripe-error-text')) {
          const requestId = (error as { requestId?: string }).requestId ?? `req_${randomUUID().replaceAll('-', '').slice(0, 14)}`;
          return refuse('invalid_payment', `${(error as Error).message}; request-id: ${requestId}`);
        }
        return refuse('invalid_payment', 'the PaymentMethod cannot be used');
      }
      if (!card?.fingerprint) return refuse('invalid_payment', 'the PaymentMethod is not a card');
      clientId = await clientIdOf(card);
    } else {
      clientId = payload.clientId!;
    }

    // 2. Resume after card authentication (spec 9.3): credit the PaymentIntent once, then spend, never charge.
    if (payload.paymentIntentId !== undefined) {
      const paymentIntentId = payload.paymentIntentId;
      return topUpLock.run(keyOf(clientId, currency), async () => {
        const result = await resume(price, clientId, paymentIntentId, payload.topUpAmount);
        if (result instanceof NotCredited) return refuse(result.code, result.message, clientId, balanceOf(clientId, currency), result.extra);
        const balance = await trySpend(clientId, currency, amount);
        if (balance !== undefined) return served(clientId, balance, result.credited ? result.intentId : undefined, result.amount);
        return short(clientId);
      });
    }
    const paymentMethodId = payload.paymentMethodId!;
    const spendFirst = !is('charges-when-balance-covers') && !(bothGiven && is('charges-when-card-given-with-client-id'));
    if (spendFirst) {
      const balance = await trySpend(clientId, currency, amount);
      if (balance !== undefined) return served(clientId, balance);
    }

    // 5. Only now validate the top-up (PROC-5).
    const topUp = payload.topUpAmount ?? (is('default-top-up-is-max') ? (price.maxTopUp ?? price.minTopUp) : price.minTopUp);
    if (!is('no-minimum-top-up-check') && (topUp < price.minTopUp || topUp < amount)) {
      const named = is('error-names-payload-client-id') && payload.clientId !== undefined ? payload.clientId : clientId;
      return refuse('top_up_below_minimum', `the smallest top-up is ${price.minTopUp} units`, named, balanceOf(named, currency));
    }
    if (!is('no-maximum-top-up-check') && price.maxTopUp !== undefined && topUp > price.maxTopUp) {
      return refuse('top_up_above_maximum', `the largest top-up is ${price.maxTopUp} units`, clientId, balanceOf(clientId, currency));
    }
    if (is('requires-idempotency-key') && payload.idempotencyKey === undefined) {
      return refuse('invalid_payment', 'a top-up needs an idempotencyKey', clientId, balanceOf(clientId, currency));
    }

    // 6. Charge, one top-up per client and currency at a time (PROC-7), then 7. credit and spend (PROC-8).
    const charge = async (): Promise<Outcome> => {
      // Another top-up for this client may have finished while this one waited for the lock.
      if (spendFirst && !doubleCharge) {
        const balance = await trySpend(clientId, currency, amount);
        if (balance !== undefined) return served(clientId, balance);
      }
      const result = await chargeTopUp(price, clientId, paymentMethodId, topUp, payload.idempotencyKey);
      if (result instanceof NotCredited) return refuse(result.code, result.message, clientId, balanceOf(clientId, currency), result.extra);
      const balance = await trySpend(clientId, currency, amount);
      if (balance === undefined) return short(clientId);
      return served(clientId, balance, result.credited && !is('no-charge-id-on-charge') ? result.intentId : undefined, result.amount);
    };
    return doubleCharge ? charge() : topUpLock.run(keyOf(clientId, currency), charge);
  }

  async function clientIdOf(card: Stripe.PaymentMethod.Card): Promise<string> {
    const fingerprint = card.fingerprint!;
    if (is('client-id-key-and-message-swapped')) return deriveClientId(fingerprint, options.serverSecret);
    if (is('client-id-per-payment')) return deriveClientId(options.serverSecret, randomUUID());
    if (is('one-client-id-for-all-cards')) return deriveClientId(options.serverSecret, card.country ?? 'card');
    if (is('client-id-upper-case')) return (await deriveClientId(options.serverSecret, fingerprint)).toUpperCase();
    if (is('client-id-too-short')) return (await deriveClientId(options.serverSecret, fingerprint)).slice(0, 32);
    return deriveClientId(options.serverSecret, fingerprint);
  }

  /** Creates and confirms one PaymentIntent (PROC-6, PROC-14) and credits it once (PROC-8, PROC-12). */
  async function chargeTopUp(
    price: Price,
    clientId: string,
    paymentMethodId: string,
    topUp: number,
    idempotencyKey: string | undefined,
  ): Promise<{ intentId: string; credited: boolean; amount?: number } | NotCredited> {
    const { currency } = price;
    let stripeKey = `stripe402:${clientId}:server:${randomUUID()}`;
    if (idempotencyKey !== undefined && !is('ignores-idempotency-key')) {
      // The key names one top-up, forever: the same key with other terms is refused, a credited one is not charged again.
      const recordKey = `${clientId}|${idempotencyKey}`;
      const record = idempotencyRecords.get(recordKey);
      if (record && (record.units !== topUp || record.currency !== currency)) {
        return new NotCredited('invalid_payment', 'this idempotencyKey was used for a different top-up');
      }
      if (record?.intentId && creditedIntents.has(record.intentId)) {
        return new NotCredited('insufficient_credits', 'this top-up was already credited and spent');
      }
      if (!record) idempotencyRecords.set(recordKey, { units: topUp, currency });
      stripeKey = `stripe402:${clientId}:${idempotencyKey}`;
    }
    // The break charges every currency as if it were the first (usd); a fractional top-up is rounded up as v1 does.
    const chargedCurrency = is('charges-first-currency') ? prices[0]!.currency : currency;
    const minor = is('rounds-charge-down')
      ? Math.floor((topUp * 10 ** 2) / 10_000)
      : Number.isInteger(topUp) ? unitsToMinor(topUp, chargedCurrency) : Math.ceil(topUp / 100);
    let intent: Stripe.PaymentIntent;
    try {
      intent = await stripe.paymentIntents.create(
        {
          amount: minor,
          currency: chargedCurrency,
          payment_method: paymentMethodId,
          confirm: true,
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          metadata: {
            stripe402_client_id: clientId,
            stripe402_units: is('metadata-units-in-cents') ? String(minor) : String(topUp),
          },
          description: `stripe402 top-up of ${topUp} units`,
        },
        { idempotencyKey: stripeKey },
      );
    } catch (error) {
      if (isUnavailable(error)) throw new BackendUnavailable('stripe unreachable', { cause: error });
      const type = (error as { type?: string }).type;
      if (type === 'StripeCardError' && is('card-errors-are-payment-failed') && (error as { code?: string }).code !== 'card_declined') {
        return new NotCredited('payment_failed', 'the payment could not be completed');
      }
      if (type === 'StripeCardError') {
        if (is('declined-card-credits-anyway')) {
          credit(clientId, currency, topUp);
          return { intentId: (error as { payment_intent?: { id: string } }).payment_intent?.id ?? 'pi_declined', credited: true };
        }
        return new NotCredited('card_declined', 'the card was declined');
      }
      if (type === 'StripeIdempotencyError') return new NotCredited('invalid_payment', 'this idempotencyKey was used for a different top-up');
      return new NotCredited('payment_failed', 'the payment could not be completed');
    }
    const record = idempotencyKey !== undefined ? idempotencyRecords.get(`${clientId}|${idempotencyKey}`) : undefined;
    if (record) record.intentId = intent.id;
    // The break charged units that are no integer: its ledger refuses the credit, and the charge stays.
    if (!Number.isInteger(topUp)) return new NotCredited('payment_failed', 'the payment could not be completed');
    return settle(price, clientId, intent, topUp);
  }

  /** Maps a PaymentIntent's status to a credit (once per PaymentIntent) or to the answer of Table 8.3. */
  function settle(price: Price, clientId: string, intent: Stripe.PaymentIntent, units: number): { intentId: string; credited: boolean; amount?: number } | NotCredited {
    if (intent.status === 'succeeded') {
      if (creditedIntents.has(intent.id) && !is('resume-credits-twice')) return { intentId: intent.id, credited: false };
      creditedIntents.add(intent.id);
      credit(clientId, price.currency, is('credits-wrong-amount') ? units - 1 : units);
      lastChargeOf.set(clientId, intent.id);
      return { intentId: intent.id, credited: true, amount: intent.amount };
    }
    if (intent.status === 'requires_action' && noAuthentication) {
      // AUTH-4: without the extension, cancel it (SHOULD) and answer payment_failed.
      void stripe.paymentIntents.cancel(intent.id).catch(() => undefined);
      return new NotCredited('payment_failed', 'the payment could not be completed');
    }
    if (intent.status === 'requires_action') {
      const nextActionUrl = intent.next_action?.redirect_to_url?.url ?? undefined;
      return new NotCredited('authentication_required', 'the card holder must authenticate this payment', {
        ...(is('authentication-without-payment-intent-id') ? {} : { paymentIntentId: intent.id }),
        ...(nextActionUrl && !is('authentication-without-next-action-url') ? { nextActionUrl } : {}),
      });
    }
    return new NotCredited('payment_failed', 'the payment could not be completed');
  }

  /** AUTH-2, AUTH-3: the PaymentIntent must be ours, for this client, these units and this currency. */
  async function resume(price: Price, clientId: string, paymentIntentId: string, topUpAmount: number | undefined): Promise<{ intentId: string; credited: boolean; amount?: number } | NotCredited> {
    let intent: Stripe.PaymentIntent;
    try {
      intent = await stripe.paymentIntents.retrieve(paymentIntentId);
    } catch (error) {
      if (isUnavailable(error)) throw new BackendUnavailable('stripe unreachable', { cause: error });
      return new NotCredited('invalid_payment', 'the PaymentIntent is unknown');
    }
    const unitsText = intent.metadata?.stripe402_units ?? '';
    const units = /^[1-9][0-9]*$/.test(unitsText) ? Number(unitsText) : NaN;
    const ours =
      intent.metadata?.stripe402_client_id === clientId &&
      Number.isSafeInteger(units) &&
      (topUpAmount === undefined || topUpAmount === units) &&
      intent.currency === price.currency &&
      intent.amount === unitsToMinor(units, price.currency);
    if (!ours && !is('resume-skips-metadata-check')) return new NotCredited('invalid_payment', 'the PaymentIntent does not belong to this top-up');
    if (is('webhook-credits-first') && ours && intent.status === 'succeeded' && !creditedIntents.has(intent.id)) {
      // The payment_intent.succeeded webhook arrived before the resume: it credits, and the resume finds it credited (LEDG-4).
      creditedIntents.add(intent.id);
      credit(clientId, price.currency, units);
    }
    if (intent.status === 'requires_action') return settle(price, clientId, intent, units);
    if (intent.status !== 'succeeded') return new NotCredited('payment_failed', 'the payment could not be completed');
    return settle(price, clientId, intent, Number.isSafeInteger(units) ? units : (topUpAmount ?? price.minTopUp));
  }

  function isUnavailable(error: unknown): boolean {
    const type = (error as { type?: string }).type;
    return type === 'StripeConnectionError' || type === 'StripeAPIError' || type === 'StripeRateLimitError' || type === 'StripeAuthenticationError';
  }

  // ---- the paywall covers the resource, however its path is spelled (PAY-1 to PAY-3)
  function canonicalPath(rawPath: string): string {
    let path = rawPath;
    try {
      path = decodeURIComponent(path);
    } catch {
      // an undecodable path is compared as sent, and matches no route
    }
    path = path.toLowerCase().replace(/\/{2,}/g, '/');
    const segments: string[] = [];
    for (const segment of path.split('/')) {
      if (segment === '.') continue;
      if (segment === '..') segments.pop();
      else segments.push(segment);
    }
    path = segments.join('/');
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    return path.startsWith('/') ? path : `/${path}`;
  }

  /** Which spellings and methods a paywall break lets through unpaid. */
  function bypassed(request: Request, rawTarget: string, rawPath: string): boolean {
    const method = request.method;
    if (is('head-bypass') && method === 'HEAD') return true;
    if (is('method-override-bypass') && method === 'POST' && request.headers.get('x-http-method-override')?.toUpperCase() === 'GET') return true;
    if (is('trailing-slash-bypass') && rawPath.length > 1 && rawPath.endsWith('/')) return true;
    if (is('case-bypass') && rawPath !== rawPath.toLowerCase()) return true;
    if (is('duplicate-slash-bypass') && rawPath.includes('//')) return true;
    if (is('percent-encoding-bypass') && rawPath.includes('%')) return true;
    if (is('dot-segment-bypass') && /\/\.\.?(\/|$)/.test(rawPath)) return true;
    if (is('query-string-bypass') && rawTarget.includes('?')) return true;
    return false;
  }

  function routeFor(rawPath: string): PaidRoute | undefined {
    const canonical = canonicalPath(rawPath);
    return routes.find((r) => r.path === canonical);
  }

  /** The break mounts the handlers a second time under a prefix, outside the paywall. */
  function mountedUnpaid(rawPath: string): PaidRoute | undefined {
    if (!is('mount-prefix-bypass')) return undefined;
    const prefix = MOUNT_PREFIXES.find((p) => rawPath.startsWith(p + '/'));
    return prefix ? routes.find((r) => r.path === rawPath.slice(prefix.length)) : undefined;
  }

  function withCors(request: Request, response: Response): Response {
    if (!request.headers.get('origin')) return response;
    const headers = new Headers(response.headers);
    headers.set('access-control-allow-origin', '*');
    if (!is('no-cors-expose-headers')) headers.set('access-control-expose-headers', `${HEADER_PAYMENT_REQUIRED}, ${HEADER_PAYMENT_RESPONSE}`);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }

  function discoveryDocument(): unknown {
    const document: DiscoveryDocument = {
      stripe402Version: STRIPE402_VERSION,
      publishableKey: options.publishableKey,
      routes: routes.flatMap((route) =>
        route.prices.map((price) => ({
          method: 'GET',
          path: route.path,
          amount: is('discovery-price-differs') ? price.amount * 2 : price.amount,
          currency: price.currency,
          minTopUp: price.minTopUp,
          ...(price.maxTopUp !== undefined ? { maxTopUp: price.maxTopUp } : {}),
          description: is('discovery-leaks-secret') ? `${route.description} (${options.stripeSecretKey})` : route.description,
        })),
      ),
    };
    return is('discovery-document-invalid') ? { ...document, stripe402Version: '1', publishableKey: undefined } : document;
  }

  /** The payment header, unless the break only recognises the exact lower-case field name. */
  function paymentHeaderOf(request: Request, incoming: HttpBindings['incoming']): string | null {
    if (is('payment-header-case-sensitive')) {
      const raw = incoming.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (raw[i] === HEADER_PAYMENT) return raw[i + 1]!;
      return null;
    }
    return request.headers.get(HEADER_PAYMENT);
  }

  async function handlePaid(request: Request, route: PaidRoute, raw: string | null): Promise<Response> {
    const bodyless = (response: Response) =>
      request.method === 'HEAD' ? new Response(null, { status: response.status, headers: response.headers }) : response;
    if (raw === null) return bodyless(answer402(route)); // PROC-1
    const outcome = await processPayment(route, raw);
    if ('challenge' in outcome) return bodyless(answer402(route));
    if ('refused' in outcome) return bodyless(answer402(route, outcome.refused));
    const { paid } = outcome;
    const handled = route.handler();
    let balance = paid.balance;
    if (handled.status >= 500 && !is('no-restore-on-5xx')) {
      // PROC-10: the client did not get what it paid for.
      balance = credit(paid.clientId, paid.currency, paid.deducted);
    }
    const headers = paidResponseHeaders();
    if (is('payment-response-cacheable')) headers.delete('cache-control');
    if (is('reports-balance-before-spend')) balance += paid.deducted;
    if (is('reports-balance-read-late')) {
      // Reads the balance again once the response is built: other requests have spent in the meantime.
      await sleep(10);
      balance = balanceOf(paid.clientId, paid.currency);
    }
    if (!(is('no-payment-response-on-success') && paid.chargeId === undefined)) {
      const chargeId = paid.chargeId ?? (is('charge-id-on-spend') ? lastChargeOf.get(paid.clientId) : undefined);
      const chargeAmount = paid.chargeId !== undefined ? paid.chargeAmount : undefined;
      const response: PaymentResponse = {
        success: true,
        creditsRemaining: balance,
        clientId: paid.clientId,
        ...(chargeId !== undefined ? { chargeId } : {}),
        ...(chargeAmount !== undefined && !is('no-charge-amount') ? { chargeAmount } : {}),
      };
      headers.set(HEADER_PAYMENT_RESPONSE, encodeHeader(response));
    }
    // A buffered body: node-server writes it in one go, where a stream costs a round of scheduling per response.
    return bodyless(new Response(await handled.text(), { status: handled.status, headers }));
  }

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.onError((error) => {
    if (error instanceof BackendUnavailable) {
      return Response.json({ error: 'the payment backend is unavailable; try again shortly' }, { status: 503, headers: { 'retry-after': '5' } });
    }
    // Only the deliberately broken paths end here: the correct server never throws on input.
    if (is('five-hundred-on-null-payload')) return new Response(error.stack ?? String(error), { status: 500, headers: { 'content-type': 'text/plain' } });
    return new Response('Internal Server Error', { status: 500 });
  });
  app.all('*', async (c) => {
    const request = c.req.raw;
    // The request target as sent, before URL parsing resolves dot segments.
    const rawTarget = c.env.incoming.url ?? '/';
    const rawPath = rawTarget.replace(/[?#].*$/s, '');
    const method = request.method;
    const respond = (response: Response) => withCors(request, response);
    if (rawPath === '/health') return respond(Response.json({ ok: true }));
    if (rawPath === DISCOVERY_PATH) return respond(Response.json(discoveryDocument()));
    const route = routeFor(rawPath);
    if (method === 'OPTIONS' && request.headers.get('origin')) {
      if (route && is('cors-preflight-needs-payment')) return respond(answer402(route));
      return respond(new Response(null, {
        status: 204,
        headers: { 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-headers': `${HEADER_PAYMENT}, content-type`, 'access-control-max-age': '600' },
      }));
    }
    const unpaid = mountedUnpaid(rawPath) ?? (route && bypassed(request, rawTarget, rawPath) ? route : undefined);
    if (unpaid) {
      const handled = unpaid.handler();
      return respond(method === 'HEAD' ? new Response(null, { status: handled.status, headers: handled.headers }) : handled);
    }
    if (!route) {
      if (is('spends-on-unknown-path')) {
        // A global payment middleware that spends before routing finds nothing to serve.
        const decoded = decodePaymentHeader(request.headers.get(HEADER_PAYMENT));
        if (decoded.ok && decoded.value.clientId) await trySpend(decoded.value.clientId, 'usd', 100);
      }
      return respond(Response.json({ error: 'not found' }, { status: 404 }));
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return respond(Response.json({ error: 'method not allowed' }, { status: 405, headers: { allow: 'GET, HEAD' } }));
    }
    return respond(await handlePaid(request, route, paymentHeaderOf(request, c.env.incoming)));
  });
  return app;
}

/** Whether a (valid) JSON text has an object, at any depth, with two members of one name (ENC-16). */

/** The top-level members of a (valid) JSON object text, the first of each name kept: the broken reading ENC-16 forbids. */
function firstMemberWins(text: string): Record<string, unknown> {
  const members: Record<string, unknown> = {};
  let depth = 0;
  let name: string | undefined;
  let valueStart = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = endOfJsonString(text, i);
      if (depth === 1 && name === undefined) name = JSON.parse(text.slice(i, end + 1)) as string;
      i = end;
    } else if (c === ':' && depth === 1 && valueStart < 0) valueStart = i + 1;
    else if (c === '{' || c === '[') depth++;
    else if ((c === ',' && depth === 1) || ((c === '}' || c === ']') && depth-- === 1)) {
      if (name !== undefined && valueStart >= 0 && !Object.hasOwn(members, name)) members[name] = JSON.parse(text.slice(valueStart, i));
      name = undefined;
      valueStart = -1;
    }
  }
  return members;
}

