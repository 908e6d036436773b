/**
 * A stripe402 server written from the specification alone (spec/, schemas/,
 * vectors/), without looking at the reference implementation: a target the
 * conformance suite has never seen. It runs on node:http with no framework,
 * reaches Stripe through the official SDK, and keeps its ledger in memory
 * (one process, so a synchronous check-and-deduct is atomic; top-ups are
 * serialized per client id and currency by a promise chain). Its options
 * cover the legal variety a foreign implementer may choose: prices per route
 * in any currency, one or several offers, `maxTopUp` or not, each extension
 * on or off, and crediting a PaymentIntent from the webhook before the
 * paying request does (LEDG-4). Where the spec left a choice open, the
 * choice is written in SPEC-NOTES.md beside this file.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/** One way to pay for a route (one entry of `accepts`). */
export interface SpecOffer {
  currency: string;
  amount: number;
  minTopUp: number;
  maxTopUp?: number;
}

export interface SpecRoute {
  method: 'GET' | 'POST';
  path: string;
  description?: string;
  /** The first offer is the default (MSG-11). */
  offers: SpecOffer[];
  /** The handler answers 500: the spend is restored (PROC-10). */
  fails?: boolean;
}

export interface SpecExtensions {
  /** Section 9: `authentication_required` and resuming with `paymentIntentId`. */
  cardAuthentication?: boolean;
  /** PROC-12: one charge per client id and `idempotencyKey`. */
  idempotencyKey?: boolean;
  /** Section 12: GET /.well-known/stripe402. */
  discovery?: boolean;
  /** MSG-11: the payload's `currency` selects the offer. */
  multiCurrency?: boolean;
  /** ENC-4: also accept base64url. */
  base64url?: boolean;
}

export interface SpecServerOptions {
  stripeUrl: string;
  stripeSecretKey: string;
  publishableKey: string;
  serverSecret: string;
  routes: SpecRoute[];
  extensions?: SpecExtensions;
  /** `webhook-first`: a succeeded PaymentIntent is credited by its webhook, the paying request waits for it. */
  creditFrom?: 'request' | 'webhook-first';
  /** The signing secret of the webhook endpoint at `webhookPath`. */
  webhookSecret?: string;
  webhookPath?: string;
  port?: number;
}

export interface SpecServer {
  url: string;
  webhookUrl: string;
  /** Balances by `clientId:currency`, for tests that look inside. */
  balances(): Map<string, number>;
  close(): Promise<void>;
}

const ALL_EXTENSIONS: Required<SpecExtensions> = {
  cardAuthentication: true,
  idempotencyKey: true,
  discovery: true,
  multiCurrency: true,
  base64url: false,
};

const MAX_UNITS = Number.MAX_SAFE_INTEGER;
/** Stripe's largest charge for most currencies, in the smallest unit (Section 5.5). */
const STRIPE_MAX_CHARGE = 99_999_999n;
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** Table 5.2. */
export function exponentOf(currency: string): number {
  return ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
}

/** Table 5.5. */
export function chargeStepOf(currency: string): bigint {
  return THREE_DECIMAL.has(currency) ? 10n : currency === 'isk' ? 100n : 1n;
}

/** UNIT-2, exactly, in BigInt. */
export function chargeOf(units: number, currency: string): bigint {
  return (BigInt(units) * 10n ** BigInt(exponentOf(currency)) + 9999n) / 10000n;
}

/** ERR-4: every message a client can see comes from this fixed set. */
const MESSAGES: Record<string, string> = {
  invalid_payment: 'The payment header is not a valid stripe402 payment.',
  unsupported_version: 'This server speaks stripe402 version 1.',
  currency_not_accepted: 'This resource is not sold in that currency.',
  insufficient_credits: 'The balance does not cover this request.',
  top_up_below_minimum: 'The top-up is below the minimum for this resource.',
  top_up_above_maximum: 'The top-up is above the maximum for this resource.',
  card_declined: 'The card was declined.',
  authentication_required: 'The card issuer asks the card holder to authenticate this payment.',
  payment_failed: 'The payment did not succeed.',
};

type ErrorCode = keyof typeof MESSAGES;

interface Payload {
  paymentMethodId?: string;
  clientId?: string;
  topUpAmount?: number;
  idempotencyKey?: string;
  paymentIntentId?: string;
  currency?: string;
}

/** The end of one paid request: an error 402, a 503, or serve. */
type Outcome =
  | { kind: 'error'; code: ErrorCode; clientId: string; paymentIntentId?: string; nextActionUrl?: string }
  | { kind: 'unavailable' }
  | { kind: 'serve'; clientId: string; remaining: number; chargeId?: string; chargeAmount?: number };

class PaymentError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly clientId = '',
  ) {
    super(code);
  }
}

/** ERR-9: Stripe could not be reached or the outcome is unknown. */
class Unavailable extends Error {}

// ---------------------------------------------------------------------------
// Decoding (Section 3.3)

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URLSAFE = /^[A-Za-z0-9_-]*={0,2}$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** ENC-3 to ENC-7; undefined when the value fails any step. */
export function decodeHeader(raw: string, base64url: boolean): Record<string, unknown> | undefined {
  const value = raw.replace(/^[ \t]+|[ \t]+$/g, '');
  if (value === '') return undefined;
  let standard = value;
  if (!STANDARD.test(value)) {
    if (!base64url || !URLSAFE.test(value)) return undefined;
    standard = value.replace(/-/g, '+').replace(/_/g, '/');
  }
  const data = standard.replace(/=+$/, '');
  if (data.length % 4 === 1) return undefined;
  if (standard.length > data.length && standard.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(data, 'base64');
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return undefined;
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return parsed as Record<string, unknown>;
}

function encodeHeader(message: object): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}

const isUnits = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_UNITS;
const FORMATS: Record<keyof Payload, (v: unknown) => boolean> = {
  paymentMethodId: (v) => typeof v === 'string' && v.length <= 255 && /^pm_[A-Za-z0-9_]+$/.test(v),
  clientId: (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v),
  topUpAmount: isUnits,
  idempotencyKey: (v) => typeof v === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(v),
  paymentIntentId: (v) => typeof v === 'string' && v.length <= 255 && /^pi_[A-Za-z0-9_]+$/.test(v),
  currency: (v) => typeof v === 'string' && /^[a-z]{3}$/.test(v),
};

/** MSG-1, MSG-3, MSG-8, MSG-10, MSG-15, CID-3: the payload, or the error code of step 1. */
function validatePayload(message: Record<string, unknown>): Payload | 'invalid_payment' | 'unsupported_version' {
  const version = message.stripe402Version;
  if (typeof version !== 'number' || !Number.isInteger(version)) return 'invalid_payment';
  if (version !== 1) return 'unsupported_version';
  const payload: Payload = {};
  for (const [name, valid] of Object.entries(FORMATS) as [keyof Payload, (v: unknown) => boolean][]) {
    if (!(name in message)) continue;
    if (!valid(message[name])) return 'invalid_payment';
    (payload as Record<string, unknown>)[name] = message[name];
  }
  if (payload.paymentMethodId === undefined && payload.clientId === undefined) return 'invalid_payment';
  return payload;
}

// ---------------------------------------------------------------------------
// Ledger

/** Balances and a journal in memory; every method is synchronous, hence atomic in one process. */
class MemoryLedger {
  readonly balances = new Map<string, number>();
  readonly journal: { kind: 'topup' | 'spend' | 'restore'; key: string; units: number; ref?: string }[] = [];
  /** LEDG-4: PaymentIntent ids already credited. */
  readonly credited = new Set<string>();
  private readonly locks = new Map<string, Promise<void>>();

  balance(clientId: string, currency: string): number {
    return this.balances.get(`${clientId}:${currency}`) ?? 0;
  }

  /** LEDG-1: deduct only if covered; the balance after, or undefined. */
  spend(clientId: string, currency: string, units: number): number | undefined {
    const key = `${clientId}:${currency}`;
    const balance = this.balances.get(key) ?? 0;
    if (balance < units) return undefined;
    this.balances.set(key, balance - units);
    this.journal.push({ kind: 'spend', key, units: -units });
    return balance - units;
  }

  /** Credits a PaymentIntent once, ever; true when this call credited it. */
  credit(paymentIntentId: string, clientId: string, currency: string, units: number): boolean {
    if (this.credited.has(paymentIntentId)) return false;
    const key = `${clientId}:${currency}`;
    const balance = this.balances.get(key) ?? 0;
    // Past 2^53-1 a balance could no longer be reported exactly (MSG-3): refuse rather than round.
    if (balance + units > MAX_UNITS) return false;
    this.credited.add(paymentIntentId);
    this.balances.set(key, balance + units);
    this.journal.push({ kind: 'topup', key, units, ref: paymentIntentId });
    return true;
  }

  restore(clientId: string, currency: string, units: number): number {
    const key = `${clientId}:${currency}`;
    const balance = (this.balances.get(key) ?? 0) + units;
    this.balances.set(key, balance);
    this.journal.push({ kind: 'restore', key, units });
    return balance;
  }

  /** PROC-7: runs `task` after every earlier task of the same key. */
  async serialize<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chain = before.then(() => mine);
    this.locks.set(key, chain);
    await before;
    try {
      return await task();
    } finally {
      release();
      if (this.locks.get(key) === chain) this.locks.delete(key);
    }
  }
}

// ---------------------------------------------------------------------------
// The server

/** Starts the server on 127.0.0.1 (port 0 by default). */
export async function startSpecServer(options: SpecServerOptions): Promise<SpecServer> {
  if (Buffer.byteLength(options.serverSecret, 'utf8') < 32) throw new Error('The server secret must be at least 32 bytes (CID-2).');
  const ext = { ...ALL_EXTENSIONS, ...options.extensions };
  for (const route of options.routes) {
    if (route.offers.length === 0) throw new Error(`${route.path}: at least one offer`);
    if (route.offers.length > 1 && !ext.multiCurrency) throw new Error(`${route.path}: several offers need the multiCurrency extension`);
  }
  const creditFrom = options.creditFrom ?? 'request';
  if (creditFrom === 'webhook-first' && !options.webhookSecret) throw new Error('webhook-first needs a webhookSecret');
  const webhookPath = options.webhookPath ?? '/stripe/webhook';
  const stripeUrl = new URL(options.stripeUrl);
  const stripe = new Stripe(options.stripeSecretKey, {
    host: stripeUrl.hostname,
    port: Number(stripeUrl.port || (stripeUrl.protocol === 'https:' ? 443 : 80)),
    protocol: stripeUrl.protocol === 'https:' ? 'https' : 'http',
    maxNetworkRetries: 1,
    timeout: 10_000,
  });
  const ledger = new MemoryLedger();
  const customers = new Map<string, string>();
  /** PROC-12: the top-up each (client id, idempotencyKey) named. */
  const keyed = new Map<string, { topUpAmount: number; currency: string; credited: boolean; paymentIntentId?: string }>();
  /** Resolvers waiting for a webhook to credit a PaymentIntent. */
  const creditWaiters = new Map<string, () => void>();
  const nonce = Math.random().toString(36).slice(2);

  const clientIdOf = (fingerprint: string) =>
    createHmac('sha256', Buffer.from(options.serverSecret, 'utf8')).update(Buffer.from(fingerprint, 'utf8')).digest('hex');

  function findRoute(method: string, path: string): SpecRoute | undefined {
    const wanted = method === 'HEAD' ? 'GET' : method;
    return options.routes.find((route) => route.method === wanted && route.path === path);
  }

  function challenge(route: SpecRoute, path: string, error?: ErrorCode): object {
    return {
      stripe402Version: 1,
      resource: { url: path, ...(route.description ? { description: route.description } : {}), mimeType: 'application/json' },
      accepts: route.offers.map((offer) => ({
        scheme: 'stripe',
        currency: offer.currency,
        amount: offer.amount,
        minTopUp: offer.minTopUp,
        ...(offer.maxTopUp !== undefined ? { maxTopUp: offer.maxTopUp } : {}),
        publishableKey: options.publishableKey,
        ...(route.description ? { description: route.description } : {}),
      })),
      ...(error ? { error } : {}),
    };
  }

  /** Maps a Stripe SDK error to a payment error, or to a 503 when the outcome is unknown (ERR-9). */
  function stripeFailure(error: unknown, clientId: string, missing: ErrorCode = 'payment_failed'): Error {
    const e = error as { type?: string; statusCode?: number; code?: string };
    if (e.type === 'StripeCardError') return new PaymentError('card_declined', clientId);
    if (e.type === 'StripeConnectionError' || e.type === 'StripeAPIError' || e.type === 'StripeRateLimitError') return new Unavailable();
    if (e.statusCode !== undefined && (e.statusCode >= 500 || e.statusCode === 429)) return new Unavailable();
    if (e.code === 'resource_missing') return new PaymentError(missing, clientId);
    if (e.type === 'StripeInvalidRequestError' || e.type === 'StripeIdempotencyError') return new PaymentError(missing === 'payment_failed' ? 'payment_failed' : missing, clientId);
    return new Unavailable();
  }

  async function identify(paymentMethodId: string): Promise<string> {
    let method: Stripe.PaymentMethod;
    try {
      method = await stripe.paymentMethods.retrieve(paymentMethodId);
    } catch (error) {
      throw stripeFailure(error, '', 'invalid_payment');
    }
    // CID-6
    if (method.type !== 'card' || !method.card?.fingerprint) throw new PaymentError('invalid_payment');
    return clientIdOf(method.card.fingerprint);
  }

  /** Waits (webhook-first mode) until the webhook has credited the PaymentIntent, at most a few seconds. */
  async function awaitWebhookCredit(paymentIntentId: string): Promise<void> {
    if (creditFrom !== 'webhook-first' || ledger.credited.has(paymentIntentId)) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        creditWaiters.delete(paymentIntentId);
        resolve();
      }, 5000);
      creditWaiters.set(paymentIntentId, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The Customer of a client id (v1 does the same), so that one PaymentMethod can pay several top-ups. */
  async function usableMethod(clientId: string, paymentMethodId: string): Promise<{ customer: string; paymentMethod: string }> {
    try {
      const method = await stripe.paymentMethods.retrieve(paymentMethodId);
      if (typeof method.customer === 'string') return { customer: method.customer, paymentMethod: method.id };
      let customer = customers.get(clientId);
      if (!customer) {
        const created = await stripe.customers.create(
          { metadata: { stripe402_client_id: clientId } },
          { idempotencyKey: `stripe402-customer:${nonce}:${clientId}` },
        );
        customer = created.id;
        customers.set(clientId, customer);
      }
      const attached = await stripe.paymentMethods.attach(paymentMethodId, { customer });
      return { customer, paymentMethod: attached.id };
    } catch (error) {
      throw stripeFailure(error, clientId);
    }
  }

  /** Steps 4 (again, under the lock) to 7 for one client id and currency. */
  async function topUp(payload: Payload, offer: SpecOffer, clientId: string, unique: string): Promise<Outcome> {
    const currency = offer.currency;
    return ledger.serialize(`${clientId}:${currency}`, async () => {
      const covered = ledger.spend(clientId, currency, offer.amount);
      if (covered !== undefined) return { kind: 'serve', clientId, remaining: covered };
      // Step 5 (PROC-5, UNIT-7, UNIT-8).
      const units = payload.topUpAmount ?? offer.minTopUp;
      if (units < offer.minTopUp || units < offer.amount) throw new PaymentError('top_up_below_minimum', clientId);
      if (offer.maxTopUp !== undefined && units > offer.maxTopUp) throw new PaymentError('top_up_above_maximum', clientId);
      const charge = chargeOf(units, currency);
      if (charge > STRIPE_MAX_CHARGE) throw new PaymentError('top_up_above_maximum', clientId);
      if (charge % chargeStepOf(currency) !== 0n) throw new PaymentError('invalid_payment', clientId);
      // A credit that would pass 2^53-1 could not be reported (MSG-3); no code names it, so the nearest bound does (SPEC-NOTES.md).
      if (ledger.balance(clientId, currency) + units > MAX_UNITS) throw new PaymentError('top_up_above_maximum', clientId);
      // Step 6 (PROC-12): a key names one top-up, with one amount and currency.
      const idempotencyKey = ext.idempotencyKey ? payload.idempotencyKey : undefined;
      const record = idempotencyKey ? keyed.get(`${clientId}:${idempotencyKey}`) : undefined;
      if (record && (record.topUpAmount !== units || record.currency !== currency)) throw new PaymentError('invalid_payment', clientId);
      if (record?.credited) throw new PaymentError('insufficient_credits', clientId);
      if (idempotencyKey && !record) keyed.set(`${clientId}:${idempotencyKey}`, { topUpAmount: units, currency, credited: false });
      let intent: Stripe.PaymentIntent;
      if (record?.paymentIntentId) {
        // The key's top-up exists (it awaited authentication, or its answer was lost): its outcome, not a new charge.
        try {
          intent = await stripe.paymentIntents.retrieve(record.paymentIntentId);
        } catch (error) {
          throw stripeFailure(error, clientId);
        }
        return settle(intent, offer, clientId, idempotencyKey);
      }
      const { customer, paymentMethod } = await usableMethod(clientId, payload.paymentMethodId!);
      try {
        intent = await stripe.paymentIntents.create(
          {
            amount: Number(charge),
            currency,
            customer,
            payment_method: paymentMethod,
            confirm: true,
            automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
            ...(ext.cardAuthentication ? { return_url: 'https://example.com/stripe402/authenticated' } : {}),
            metadata: {
              stripe402_client_id: clientId,
              stripe402_units: String(units),
              ...(idempotencyKey ? { stripe402_idempotency_key: idempotencyKey } : {}),
            },
          },
          { idempotencyKey: idempotencyKey ? `stripe402:${clientId}:${idempotencyKey}` : `stripe402:${unique}` },
        );
      } catch (error) {
        throw stripeFailure(error, clientId);
      }
      if (idempotencyKey) keyed.get(`${clientId}:${idempotencyKey}`)!.paymentIntentId = intent.id;
      return settle(intent, offer, clientId, idempotencyKey);
    });
  }

  /** Table 8.3 for a PaymentIntent this request created or resumed. */
  async function settle(intent: Stripe.PaymentIntent, offer: SpecOffer, clientId: string, idempotencyKey?: string): Promise<Outcome> {
    if (intent.status === 'succeeded') {
      await awaitWebhookCredit(intent.id);
      const credited = ledger.credit(intent.id, clientId, offer.currency, Number(intent.metadata.stripe402_units));
      if (idempotencyKey) keyed.get(`${clientId}:${idempotencyKey}`)!.credited = true;
      const remaining = ledger.spend(clientId, offer.currency, offer.amount);
      // A concurrent spend took the credit a webhook made before us: the top-up happened, the request is not paid.
      if (remaining === undefined) throw new PaymentError('insufficient_credits', clientId);
      return { kind: 'serve', clientId, remaining, ...(credited ? { chargeId: intent.id, chargeAmount: intent.amount } : {}) };
    }
    if (intent.status === 'requires_action') {
      if (ext.cardAuthentication) {
        const url = intent.next_action?.redirect_to_url?.url ?? undefined;
        return { kind: 'error', code: 'authentication_required', clientId, paymentIntentId: intent.id, ...(url ? { nextActionUrl: url } : {}) };
      }
      // AUTH-4
      await stripe.paymentIntents.cancel(intent.id).catch(() => undefined);
    }
    throw new PaymentError('payment_failed', clientId);
  }

  /** Step 2, AUTH-2 and AUTH-3: completes the PaymentIntent named by the payload; the chargeId when this call credited. */
  async function resume(payload: Payload, offer: SpecOffer, clientId: string): Promise<{ chargeId: string; chargeAmount: number } | undefined> {
    let intent: Stripe.PaymentIntent;
    try {
      intent = await stripe.paymentIntents.retrieve(payload.paymentIntentId!);
    } catch (error) {
      throw stripeFailure(error, clientId, 'invalid_payment');
    }
    const units = intent.metadata?.stripe402_units;
    if (
      intent.metadata?.stripe402_client_id !== clientId ||
      units === undefined ||
      !/^[1-9][0-9]*$/.test(units) ||
      (payload.topUpAmount !== undefined && String(payload.topUpAmount) !== units) ||
      intent.currency !== offer.currency ||
      BigInt(intent.amount) !== chargeOf(Number(units), offer.currency)
    ) {
      throw new PaymentError('invalid_payment', clientId);
    }
    if (intent.status === 'requires_action') {
      const url = intent.next_action?.redirect_to_url?.url ?? undefined;
      throw Object.assign(new PaymentError('authentication_required', clientId), { intent: intent.id, url });
    }
    if (intent.status !== 'succeeded') throw new PaymentError('payment_failed', clientId);
    await awaitWebhookCredit(intent.id);
    return ledger.credit(intent.id, clientId, offer.currency, Number(units)) ? { chargeId: intent.id, chargeAmount: intent.amount } : undefined;
  }

  /** Section 8.2, steps 2 to 7, after step 1 passed. */
  async function pay(payload: Payload, offer: SpecOffer, unique: string): Promise<Outcome> {
    let clientId = payload.clientId ?? '';
    let charged: { chargeId: string; chargeAmount: number } | undefined;
    if (payload.paymentIntentId !== undefined && ext.cardAuthentication) {
      if (payload.paymentMethodId !== undefined) clientId = await identify(payload.paymentMethodId);
      try {
        charged = await resume(payload, offer, clientId);
      } catch (error) {
        const pending = error as PaymentError & { intent?: string; url?: string };
        if (pending.intent) {
          return { kind: 'error', code: 'authentication_required', clientId, paymentIntentId: pending.intent, ...(pending.url ? { nextActionUrl: pending.url } : {}) };
        }
        throw error;
      }
      // Step 3 for the resumed client id; never a new PaymentIntent (AUTH-2).
      const remaining = ledger.spend(clientId, offer.currency, offer.amount);
      if (remaining === undefined) throw new PaymentError('insufficient_credits', clientId);
      return { kind: 'serve', clientId, remaining, ...charged };
    }
    // Step 3.
    if (payload.clientId !== undefined) {
      const remaining = ledger.spend(payload.clientId, offer.currency, offer.amount);
      if (remaining !== undefined) return { kind: 'serve', clientId: payload.clientId, remaining };
      if (payload.paymentMethodId === undefined) throw new PaymentError('insufficient_credits', payload.clientId);
    }
    // Step 4: the derived id replaces the payload's for the rest of the request.
    clientId = await identify(payload.paymentMethodId!);
    const remaining = ledger.spend(clientId, offer.currency, offer.amount);
    if (remaining !== undefined) return { kind: 'serve', clientId, remaining };
    return topUp(payload, offer, clientId, unique);
  }

  function send(res: http.ServerResponse, head: boolean, status: number, headers: Record<string, string>, body?: string): void {
    res.writeHead(status, {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Expose-Headers': 'payment-required, payment-response',
      ...headers,
      ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
    });
    res.end(head ? undefined : body);
  }

  let requestCounter = 0;

  async function paidRequest(req: http.IncomingMessage, res: http.ServerResponse, route: SpecRoute, path: string): Promise<void> {
    const head = req.method === 'HEAD';
    const fields = req.headersDistinct.payment;
    const defaultOffer = route.offers[0]!;
    if (fields === undefined) {
      const body = JSON.stringify(challenge(route, path));
      send(res, head, 402, { 'payment-required': encodeHeader(JSON.parse(body)), 'Cache-Control': 'no-store' }, body);
      return;
    }
    let offer = defaultOffer;
    let outcome: Outcome;
    // Step 1 (PROC-2): ENC-8, ENC-9, ENC-3..7, then the members.
    const raw = fields.length === 1 && fields[0]!.length <= 4096 ? fields[0]! : undefined;
    const message = raw === undefined ? undefined : decodeHeader(raw, ext.base64url);
    const checked = message === undefined ? 'invalid_payment' : validatePayload(message);
    if (typeof checked === 'string') {
      outcome = { kind: 'error', code: checked, clientId: '' };
    } else if (checked.currency !== undefined && ext.multiCurrency && !route.offers.some((o) => o.currency === checked.currency)) {
      outcome = { kind: 'error', code: 'currency_not_accepted', clientId: '' };
    } else {
      if (checked.currency !== undefined && ext.multiCurrency) offer = route.offers.find((o) => o.currency === checked.currency)!;
      try {
        outcome = await pay(checked, offer, `${nonce}:${++requestCounter}`);
      } catch (error) {
        // ERR-2: the id established before the error, the payload's own once step 1 passed.
        if (error instanceof PaymentError) outcome = { kind: 'error', code: error.code, clientId: error.clientId || (checked.clientId ?? '') };
        else if (error instanceof Unavailable) outcome = { kind: 'unavailable' };
        else throw error;
      }
    }
    const several = route.offers.length > 1;
    if (outcome.kind === 'unavailable') {
      send(res, head, 503, { 'Retry-After': '2', 'Cache-Control': 'no-store' }, JSON.stringify({ error: 'The payment service is unavailable; try again shortly.' }));
      return;
    }
    if (outcome.kind === 'error') {
      const clientId = outcome.clientId;
      const response = {
        success: false,
        creditsRemaining: clientId ? ledger.balance(clientId, offer.currency) : 0,
        clientId,
        error: MESSAGES[outcome.code],
        errorCode: outcome.code,
        ...(outcome.paymentIntentId ? { paymentIntentId: outcome.paymentIntentId } : {}),
        ...(outcome.nextActionUrl ? { nextActionUrl: outcome.nextActionUrl } : {}),
        ...(several ? { currency: offer.currency } : {}),
      };
      const body = JSON.stringify(challenge(route, path, outcome.code));
      send(res, head, 402, { 'payment-required': encodeHeader(JSON.parse(body)), 'payment-response': encodeHeader(response), 'Cache-Control': 'no-store' }, body);
      return;
    }
    // Step 8: the handler, then PROC-10 on a 5xx.
    let status = 200;
    let body = JSON.stringify({ served: path, price: offer.amount, currency: offer.currency });
    let remaining = outcome.remaining;
    if (route.fails) {
      status = 500;
      body = JSON.stringify({ error: 'The resource failed.' });
      remaining = ledger.restore(outcome.clientId, offer.currency, offer.amount);
    }
    const response = {
      success: true,
      // PROC-9, and PROC-17's chargeAmount beside it.
      ...(outcome.chargeId ? { chargeId: outcome.chargeId, chargeAmount: outcome.chargeAmount } : {}),
      creditsRemaining: remaining,
      clientId: outcome.clientId,
      ...(several ? { currency: offer.currency } : {}),
    };
    send(res, head, status, { 'payment-response': encodeHeader(response), 'Cache-Control': 'no-store' }, body);
  }

  async function webhook(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let event: Stripe.Event;
    try {
      // LEDG-8: nothing is acted on before the signature is verified.
      event = stripe.webhooks.constructEvent(Buffer.concat(chunks), String(req.headers['stripe-signature'] ?? ''), options.webhookSecret ?? '');
    } catch {
      send(res, false, 400, {}, JSON.stringify({ error: 'Invalid signature.' }));
      return;
    }
    if (event.type === 'payment_intent.succeeded') {
      const intent = event.data.object as Stripe.PaymentIntent;
      const clientId = intent.metadata?.stripe402_client_id;
      const units = intent.metadata?.stripe402_units;
      if (clientId && /^[0-9a-f]{64}$/.test(clientId) && units && /^[1-9][0-9]*$/.test(units) && BigInt(intent.amount) === chargeOf(Number(units), intent.currency)) {
        ledger.credit(intent.id, clientId, intent.currency, Number(units));
      }
      creditWaiters.get(intent.id)?.();
      creditWaiters.delete(intent.id);
    }
    send(res, false, 200, {}, JSON.stringify({ received: true }));
  }

  function discovery(): object {
    return {
      stripe402Version: 1,
      publishableKey: options.publishableKey,
      routes: options.routes.flatMap((route) =>
        route.offers.map((offer) => ({
          method: route.method,
          path: route.path,
          amount: offer.amount,
          currency: offer.currency,
          minTopUp: offer.minTopUp,
          ...(offer.maxTopUp !== undefined ? { maxTopUp: offer.maxTopUp } : {}),
          ...(route.description ? { description: route.description } : {}),
        })),
      ),
    };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (method === 'POST' && path === webhookPath && options.webhookSecret) return webhook(req, res);
    // Drain any request body: no route reads it.
    req.resume();
    if (method === 'OPTIONS') {
      // ENC-14: a preflight never needs payment.
      send(res, false, 204, { 'Access-Control-Allow-Headers': 'payment, content-type', 'Access-Control-Allow-Methods': 'GET, POST, HEAD, OPTIONS', 'Access-Control-Max-Age': '600' });
      return;
    }
    if (path === '/.well-known/stripe402' && (method === 'GET' || method === 'HEAD') && ext.discovery) {
      send(res, method === 'HEAD', 200, {}, JSON.stringify(discovery()));
      return;
    }
    if (path === '/health' && method === 'GET') {
      send(res, false, 200, {}, JSON.stringify({ ok: true }));
      return;
    }
    // Exact routing, then the paywall on the chosen route: a variant spelling finds no route (PAY-1).
    const route = findRoute(method, path);
    if (route) return paidRequest(req, res, route, path);
    const known = options.routes.some((r) => r.path === path);
    send(res, method === 'HEAD', known ? 405 : 404, {}, JSON.stringify({ error: known ? 'Method not allowed.' : 'Not found.' }));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, false, 500, {}, JSON.stringify({ error: 'Internal error.' }));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    webhookUrl: `${url}${webhookPath}`,
    balances: () => new Map(ledger.balances),
    close: () =>
      new Promise<void>((resolve) => {
        for (const resolveWaiter of creditWaiters.values()) resolveWaiter();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
