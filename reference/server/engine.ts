/**
 * The payment engine (spec sections 8 to 10): a request for a paid route
 * and its raw `payment` header in, a decision out: a 402 with both headers
 * and the challenge body, a 503, or "serve", followed by a settle step that
 * sets `payment-response` and gives the credits back when the handler
 * failed. It follows the processing order of Section 8.2 step by step and
 * knows nothing of HTTP frameworks, so any adapter (the Hono middleware
 * here) is a thin shell around it.
 */
import { randomUUID } from 'node:crypto';
import { HEADER_PAYMENT_REQUIRED, HEADER_PAYMENT_RESPONSE, STRIPE402_VERSION, decodePaymentHeader, encodeHeader, type Decoded } from '@stripe402/core';
import { deriveClientId, isClientId, isStrongServerSecret, SERVER_SECRET_MIN_BYTES } from '@stripe402/core';
import { unitsToMinor } from '@stripe402/core';
import type { ErrorCode, PaymentPayload, PaymentRequiredResponse, PaymentRequirements, PaymentResponse } from '@stripe402/core';
import { LedgerUnavailableError, type Ledger, type RestoreRequest } from './ledger/types.ts';
import { METADATA_CLIENT_ID, METADATA_CURRENCY, METADATA_UNITS, show, type GatewayFailure, type PaymentIntentView, type StripeGateway } from './gateway.ts';
import { RateLimiter, UNKNOWN_SOURCE, type Limited, type RateLimitOptions } from './limits.ts';
import { chargeStep, compileRoutes, RouteTable, STRIPE_MAXIMUM_CHARGE, type PaidRoute, type PaidRouteConfig, type Price, type RouteMatch } from './routes.ts';

/** Headers every stripe402 response exposes to browsers (ENC-12). */
export const EXPOSED_HEADERS = `${HEADER_PAYMENT_REQUIRED}, ${HEADER_PAYMENT_RESPONSE}`;

export interface EngineOptions {
  ledger: Ledger;
  gateway: StripeGateway;
  /** HMAC key of client ids; at least 32 bytes (CID-2). */
  serverSecret: string;
  /** `pk_test_...` or `pk_live_...`, advertised in every challenge. */
  publishableKey: string;
  routes: readonly PaidRouteConfig[];
  /** Refuse routes whose minTopUp charges less than Stripe's minimum (UNIT-6); default true. */
  enforceStripeMinimums?: boolean;
  /** Match paid routes under any path prefix (PAY-3); default true. */
  anyPrefix?: boolean;
  /** Seconds in the Retry-After of a 503; default 2. */
  retryAfterSeconds?: number;
  /** How long a dead holder keeps a top-up lock; default 60 s, longer than a Stripe call with its retries. */
  topUpLockTtlMs?: number;
  /** `return_url` of every PaymentIntent, so that Stripe offers a next-action URL for card authentication (AUTH-1). */
  returnUrl?: string;
  /** Which handler statuses give a served request's credits back; default 5xx (PROC-10) and 404 (nothing was served). */
  restoreOnStatus?: (status: number) => boolean;
  /** Receives internal failures (with SDK and driver text) for the server log; never shown to clients. */
  onInternalError?: (event: InternalErrorEvent) => void;
  /** Rate limits on unpaid client ids, charge attempts and Stripe calls (SEC-3, SEC-7, SEC-8); default DEFAULT_RATE_LIMITS, `false` for none. */
  rateLimits?: RateLimitOptions | false;
  /**
   * How long after a keyed top-up was recorded its Stripe Idempotency-Key is
   * trusted to replay the first call (PROC-12); past it, a top-up whose
   * PaymentIntent the ledger does not know is searched for. Default 23 hours:
   * Stripe keeps keys at least 24, and an hour covers clocks apart.
   */
  stripeIdempotencyWindowMs?: number;
}

/** See EngineOptions.stripeIdempotencyWindowMs. */
export const STRIPE_IDEMPOTENCY_WINDOW_MS = 23 * 60 * 60 * 1000;

export interface InternalErrorEvent {
  stage: 'ledger' | 'stripe' | 'settle' | 'unexpected';
  route: string;
  clientId?: string;
  detail: string;
  error?: unknown;
}

/** What to log about a decision; ids are redacted by the logger, never here. */
export interface DecisionContext {
  clientId?: string;
  paymentMethodId?: string;
  errorCode?: ErrorCode;
  chargeId?: string;
  /** Why a 503 was sent. */
  fault?: 'ledger' | 'stripe';
  /** Which budget a rate_limited answer ran out of (ERR-10). */
  limited?: Limited['kind'];
}

/** Permission to run the handler; settle it afterwards with `engine.settle`. */
export interface Grant {
  readonly route: PaidRoute;
  readonly price: Price;
  readonly clientId: string;
  /** Balance after this request's spend, as the atomic deduction returned it (PROC-9). */
  readonly balance: number;
  /** The PaymentIntent this request charged, or credited first, if any (PROC-9). */
  readonly chargeId?: string;
  /** Its amount in the currency's smallest unit, reported as chargeAmount (PROC-17). */
  readonly chargeAmount?: number;
  readonly context: DecisionContext;
}

export type Decision =
  /** Answer now: a 402 (challenge or error) or a 503. `body` is the exact response body. */
  | { kind: 'respond'; status: 402 | 503; headers: Record<string, string>; body: string; context: DecisionContext }
  /** Run the handler, then call `engine.settle(grant, status)`. */
  | { kind: 'serve'; grant: Grant; context: DecisionContext };

export interface Settlement {
  headers: Record<string, string>;
  restored: boolean;
  balance: number;
}

/** Client-facing messages, a fixed set per code (ERR-4): plain words, no internals. */
const MESSAGES = {
  insufficient_credits: 'The balance does not cover this request; top up with a paymentMethodId.',
  insufficient_after_topup: 'This top-up was already credited and the balance does not cover this request; use a new idempotencyKey to top up again.',
  currency_not_accepted: 'This resource is not sold in that currency; see accepts.',
  top_up_below_minimum: 'The top-up is below the minimum for this resource.',
  top_up_above_maximum: 'The top-up is above the maximum for this resource.',
  top_up_step: 'The top-up cannot be charged exactly in this currency; choose a multiple of its charge step.',
  card_declined: 'The card was declined.',
  authentication_required: 'The card issuer asks the card holder to authenticate this payment: complete it at nextActionUrl, then repeat the request with paymentIntentId.',
  payment_failed: 'The payment did not succeed.',
  payment_mismatch: 'The payment service answered with a payment other than this top-up; nothing was credited.',
  unusable_payment_method: 'The PaymentMethod does not exist on this server\'s Stripe account or is not a card.',
  unknown_payment_intent: 'The paymentIntentId does not name a top-up of this client for this price.',
  key_reused: 'This idempotencyKey was used for a different top-up; use a new key.',
  payment_intent_failed: 'The payment for this paymentIntentId did not succeed; start a new top-up.',
  payment_intent_processing: 'The payment for this paymentIntentId is still processing; repeat the request later.',
  unavailable: 'The server cannot process payments right now; repeat the request after the delay in Retry-After.',
  rate_limited: 'Too many requests from this source or for this card; repeat the request after the delay in Retry-After.',
} as const;

/** The fixed headers of every served paid response, beside its payment-response. */
const SERVED_HEADERS = Object.freeze({ 'cache-control': 'no-store', 'access-control-expose-headers': EXPOSED_HEADERS });

/** How many decoded `payment` headers an engine remembers, and the longest it remembers (see PaymentEngine.decode). */
/**
 * A restore (PROC-10) that fails for want of the ledger is tried again at
 * once after these delays, while its response waits: a dropped connection
 * reconnects in well under this. After them, the response goes out with the
 * balance unrestored and the restore goes on in the background (doubling
 * from 1 s to 60 s, about 20 minutes in all).
 */
const RESTORE_RETRY_DELAYS_MS = [50, 200, 750];
const RESTORE_BACKGROUND_FIRST_MS = 1_000;
const RESTORE_BACKGROUND_MAX_MS = 60_000;
const RESTORE_BACKGROUND_ATTEMPTS = 25;
const MAX_PENDING_RESTORES = 10_000;

const DECODE_CACHE_ENTRIES = 1024;
const DECODE_CACHE_MAX_LENGTH = 512;

type Failure = { code: ErrorCode; message: string; clientId: string; balance: number; currency?: string; paymentIntentId?: string; nextActionUrl?: string };

/** Refusals of a top-up's amount (step 5), which give a charge attempt back. */
const AMOUNT_ERRORS: ReadonlySet<ErrorCode | undefined> = new Set(['top_up_below_minimum', 'top_up_above_maximum']);

/** Thrown inside the engine when a budget is empty, always before the call it guards: the request ends in rate_limited (ERR-10). */
class RateLimited extends Error {
  override name = 'RateLimited';
  constructor(readonly limited: Limited) {
    super(limited.kind);
  }
}

/** The rate-limit state of one request: its source, and the charge attempt it holds, given back if the request ends served. */
interface RequestLimits {
  source: string;
  attempt: boolean;
  card?: string;
}

/** Thrown inside the engine when Stripe cannot be reached or the outcome of a call is unknown: the request ends in 503 (ERR-9). */
class StripeUnavailable extends Error {
  override name = 'StripeUnavailable';
}

/** The engine: build one per server, share it across requests. */
export class PaymentEngine {
  readonly routes: RouteTable;
  readonly publishableKey: string;
  readonly ledger: Ledger;
  readonly gateway: StripeGateway;
  readonly limiter: RateLimiter;
  private readonly serverSecret: string;
  private readonly retryAfter: string;
  private readonly lockTtlMs: number;
  private readonly idempotencyWindowMs: number;
  private readonly returnUrl: string | undefined;
  private readonly restoreOn: (status: number) => boolean;
  private readonly report: (event: InternalErrorEvent) => void;
  /** Encoded challenges per route and error code (hot path: no re-encoding per request). */
  private readonly challengeCache = new Map<string, { header: string; body: string }>();
  /** Recently decoded valid `payment` headers (see `decode`). */
  private readonly decodeCache = new Map<string, Decoded<PaymentPayload>>();

  constructor(options: EngineOptions) {
    if (typeof options.serverSecret !== 'string' || !isStrongServerSecret(options.serverSecret)) {
      throw new RangeError(`the server secret must be at least ${SERVER_SECRET_MIN_BYTES} bytes (CID-2)`);
    }
    if (!/^pk_(test|live)_[A-Za-z0-9_]+$/.test(options.publishableKey)) {
      throw new RangeError('the publishable key must look like pk_test_... or pk_live_...');
    }
    this.ledger = options.ledger;
    this.gateway = options.gateway;
    this.serverSecret = options.serverSecret;
    this.publishableKey = options.publishableKey;
    this.routes = new RouteTable(compileRoutes(options.routes, { enforceStripeMinimums: options.enforceStripeMinimums ?? true }), {
      anyPrefix: options.anyPrefix ?? true,
    });
    this.retryAfter = String(options.retryAfterSeconds ?? 2);
    this.lockTtlMs = options.topUpLockTtlMs ?? 60_000;
    this.idempotencyWindowMs = options.stripeIdempotencyWindowMs ?? STRIPE_IDEMPOTENCY_WINDOW_MS;
    this.returnUrl = options.returnUrl;
    this.restoreOn = options.restoreOnStatus ?? ((status) => status >= 500 || status === 404);
    this.report = options.onInternalError ?? (() => {});
    this.limiter = new RateLimiter(options.rateLimits ?? {});
  }

  /** The paid route a request is for, or null for a free one. */
  match(method: string, path: string): RouteMatch | null {
    return this.routes.match(method, path);
  }

  /** The discovery document (DISC-1). */
  discovery() {
    return this.routes.discovery(this.publishableKey);
  }

  /** The client id of a card fingerprint on this server (CID-1). */
  clientIdFor(fingerprint: string): Promise<string> {
    return deriveClientId(this.serverSecret, fingerprint);
  }

  /**
   * Decides what to do with a request for a paid route. `paymentHeader` is
   * the raw field value (a string; several lines joined by ", " or given as
   * an array count as "sent more than once"), or null when absent.
   * `source` names the network the request came from, for the rate limits
   * (see `sourceOf` in limits.ts); requests without one share one budget.
   */
  async handle(match: RouteMatch, paymentHeader: string | readonly string[] | null | undefined, source: string = UNKNOWN_SOURCE): Promise<Decision> {
    if (paymentHeader === null || paymentHeader === undefined) {
      // PROC-1: the first challenge, error absent, no payment-response, no Stripe, no ledger.
      const challenge = this.challenge(match, undefined);
      return { kind: 'respond', status: 402, headers: this.errorHeaders(challenge.header, undefined), body: challenge.body, context: {} };
    }
    // Step 1 (PROC-2): decode and validate before anything else; a failure touches neither Stripe nor the ledger.
    const decoded = this.decode(paymentHeader);
    if (!decoded.ok) {
      const { code, detail } = decoded.error;
      return this.fail(match, { code, message: `The payment header is invalid: ${detail}.`, clientId: '', balance: 0 });
    }
    const payload = decoded.value;
    const price = payload.currency === undefined ? match.route.prices[0]! : match.route.byCurrency.get(payload.currency);
    if (!price) return this.fail(match, { code: 'currency_not_accepted', message: MESSAGES.currency_not_accepted, clientId: '', balance: 0 });

    const context: DecisionContext = {};
    if (payload.clientId) context.clientId = payload.clientId;
    if (payload.paymentMethodId) context.paymentMethodId = payload.paymentMethodId;
    const limits: RequestLimits = { source, attempt: false };
    try {
      const decision = await this.pay(match, price, payload, context, limits);
      // A charge attempt that ended paid gives its tokens back: paying never uses up a budget (SEC-7). So does a top-up
      // refused for its amount: a client's mistake, not card testing (its one Stripe call is the global budget's). So
      // does a 503: a fault of the server (ERR-9) must not use up the budgets of the clients it failed.
      const notCardTesting = decision.kind === 'serve' || AMOUNT_ERRORS.has(decision.context.errorCode!) || decision.context.fault !== undefined;
      if (limits.attempt && notCardTesting) this.limiter.attemptPaid(limits.source, limits.card);
      return decision;
    } catch (error) {
      if (error instanceof RateLimited) return this.limited(match, error.limited, context);
      // A fault of the server, never of the request: 503 (ERR-5, ERR-9); nothing was charged that is not recoverable.
      const fault = error instanceof StripeUnavailable ? 'stripe' : 'ledger';
      const stage = error instanceof StripeUnavailable ? 'stripe' : error instanceof LedgerUnavailableError ? 'ledger' : 'unexpected';
      this.report({ stage, route: match.route.key, detail: describe(error), error, ...(context.clientId ? { clientId: context.clientId } : {}) });
      context.fault = fault;
      if (limits.attempt) this.limiter.attemptPaid(limits.source, limits.card);
      return this.unavailable(context);
    }
  }

  /**
   * Decodes a `payment` header, remembering the last valid short ones: a
   * client spending its balance sends the same value with every request,
   * and decoding (base64, UTF-8, JSON, schema) is a fair share of a paid
   * request's cost. Decoding is a pure function of the value and the payload
   * is frozen, so a remembered one is exactly what decoding would return.
   * Bounded, so junk cannot grow it: only successes up to
   * DECODE_CACHE_MAX_LENGTH characters, at most DECODE_CACHE_ENTRIES of
   * them, the oldest forgotten first.
   */
  private decode(paymentHeader: string | readonly string[]): Decoded<PaymentPayload> {
    const cacheable = typeof paymentHeader === 'string' && paymentHeader.length <= DECODE_CACHE_MAX_LENGTH;
    if (cacheable) {
      const cached = this.decodeCache.get(paymentHeader);
      if (cached !== undefined) return cached;
    }
    const decoded = decodePaymentHeader(paymentHeader);
    if (cacheable && decoded.ok) {
      Object.freeze(decoded.value);
      if (this.decodeCache.size >= DECODE_CACHE_ENTRIES) this.decodeCache.delete(this.decodeCache.keys().next().value!);
      this.decodeCache.set(paymentHeader, Object.freeze(decoded));
    }
    return decoded;
  }

  /**
   * After the handler: the `payment-response` header (PROC-9), with the
   * credits given back when the handler failed (PROC-10; `success` stays
   * true and the response reports the balance after the restore).
   */
  settle(grant: Grant, status: number): Promise<Settlement> {
    // The common case settles without a ledger call: no async function, one resolved promise.
    if (!this.restoreOn(status)) return Promise.resolve(this.settlement(grant, grant.balance, false));
    return this.settleRestoring(grant);
  }

  private async settleRestoring(grant: Grant): Promise<Settlement> {
    const { route, price, clientId } = grant;
    // One id for every attempt: a restore whose answer was lost is sent again and applied once.
    const request: RestoreRequest = { clientId, currency: price.currency, amount: price.amount, route: route.key, restoreId: randomUUID() };
    for (let attempt = 0; ; attempt++) {
      try {
        const { balance } = await this.ledger.restore(request);
        return this.settlement(grant, balance, true);
      } catch (error) {
        const transient = error instanceof LedgerUnavailableError;
        if (transient && attempt < RESTORE_RETRY_DELAYS_MS.length) {
          await sleep(RESTORE_RETRY_DELAYS_MS[attempt]!);
          continue;
        }
        this.report({ stage: 'settle', route: route.key, clientId, detail: describe(error), error });
        // The answer cannot wait longer; the units still come back once the ledger does.
        if (transient) this.restoreLater(request, 0);
        return this.settlement(grant, grant.balance, false);
      }
    }
  }

  /** Pending restores retried in the background, by id (bounded: an outage must not grow memory without end). */
  private readonly pendingRestores = new Set<string>();

  private restoreLater(request: RestoreRequest, attempt: number): void {
    if (attempt === 0 && this.pendingRestores.size >= MAX_PENDING_RESTORES) return;
    this.pendingRestores.add(request.restoreId);
    const delay = Math.min(RESTORE_BACKGROUND_FIRST_MS * 2 ** attempt, RESTORE_BACKGROUND_MAX_MS);
    setTimeout(() => {
      this.ledger.restore(request).then(
        () => this.pendingRestores.delete(request.restoreId),
        (error: unknown) => {
          if (error instanceof LedgerUnavailableError && attempt + 1 < RESTORE_BACKGROUND_ATTEMPTS) return this.restoreLater(request, attempt + 1);
          this.pendingRestores.delete(request.restoreId);
          this.report({ stage: 'settle', route: request.route, clientId: request.clientId, detail: `a restore was given up: ${describe(error)}`, error });
        },
      );
    }, delay).unref();
  }

  private settlement(grant: Grant, balance: number, restored: boolean): Settlement {
    const { price, clientId } = grant;
    const response: PaymentResponse =
      grant.chargeId === undefined
        ? { success: true, creditsRemaining: balance, clientId, currency: price.currency }
        : { success: true, chargeId: grant.chargeId, ...(grant.chargeAmount ? { chargeAmount: grant.chargeAmount } : {}), creditsRemaining: balance, clientId, currency: price.currency };
    return {
      // ENC-15: a response carrying a client id is never stored by a shared cache.
      headers: { [HEADER_PAYMENT_RESPONSE]: encodeHeaderNative(response), ...SERVED_HEADERS },
      restored,
      balance,
    };
  }

  // ---- processing order (Section 8.2, steps 2 to 7) ----

  private async pay(match: RouteMatch, price: Price, payload: PaymentPayload, context: DecisionContext, limits: RequestLimits): Promise<Decision> {
    const { route } = match;
    // Step 2: resume a top-up that awaited card authentication (AUTH-2).
    if (payload.paymentIntentId !== undefined) return this.resume(match, price, payload, context, limits);

    // Step 3 (PROC-3): a client id spends atomically. An unknown well-formed id reads as a zero balance (CID-4).
    let balance = 0;
    if (payload.clientId !== undefined) {
      // SEC-3: a source whose client ids keep not paying is refused before the ledger, whether the ids are unknown or empty (CID-4).
      if (payload.paymentMethodId === undefined) this.allowUnpaid(limits);
      const spent = await this.ledger.spend({ clientId: payload.clientId, currency: price.currency, amount: price.amount, route: route.key });
      if (spent.ok) return this.serve(match, price, payload.clientId, spent.balance, undefined, context);
      balance = spent.balance;
      if (payload.paymentMethodId === undefined) {
        this.limiter.unpaidSeen(limits.source);
        return this.fail(match, { code: 'insufficient_credits', message: MESSAGES.insufficient_credits, clientId: payload.clientId, balance, currency: price.currency }, context);
      }
    }

    // Step 4 (PROC-4): the card's fingerprint names the client; spend without charging when its balance covers the request.
    this.startAttempt(limits);
    const identified = await this.identify(payload.paymentMethodId!);
    if (!identified.ok) {
      return this.fail(match, { code: 'invalid_payment', message: MESSAGES.unusable_payment_method, clientId: payload.clientId ?? '', balance, currency: price.currency }, context);
    }
    const clientId = identified.clientId;
    context.clientId = clientId;
    if (clientId !== payload.clientId) {
      const spent = await this.ledger.spend({ clientId, currency: price.currency, amount: price.amount, route: route.key });
      if (spent.ok) return this.serve(match, price, clientId, spent.balance, undefined, context);
      balance = spent.balance;
    }

    // Step 5 (PROC-5): only now is the top-up itself checked.
    const topUp = payload.topUpAmount ?? price.minTopUp;
    const base = { clientId, balance, currency: price.currency };
    if (topUp < price.minTopUp || topUp < price.amount) return this.fail(match, { ...base, code: 'top_up_below_minimum', message: MESSAGES.top_up_below_minimum }, context);
    const charge = unitsToMinor(topUp, price.currency);
    if ((price.maxTopUp !== undefined && topUp > price.maxTopUp) || charge > STRIPE_MAXIMUM_CHARGE) {
      return this.fail(match, { ...base, code: 'top_up_above_maximum', message: MESSAGES.top_up_above_maximum }, context);
    }
    if (charge % chargeStep(price.currency) !== 0) return this.fail(match, { ...base, code: 'invalid_payment', message: MESSAGES.top_up_step }, context);

    // Step 6 (PROC-6, PROC-7): one charge per client and currency at a time; whoever waited checks the balance again.
    const account = { clientId, currency: price.currency };
    return this.ledger.withTopUpLock(
      account,
      async () => {
        const spent = await this.ledger.spend({ ...account, amount: price.amount, route: route.key });
        if (spent.ok) return this.serve(match, price, clientId, spent.balance, undefined, context);
        // SEC-7, per card: counted here, under the top-up lock, so concurrent top-ups of one card (which charge once) count once.
        this.startCardAttempt(limits, clientId);
        return this.charge(match, price, payload, clientId, topUp, identified.customerId, spent.balance, context);
      },
      this.lockTtlMs,
    );
  }

  /** PROC-4, CID-6: the client id of a PaymentMethod, or not usable. Stripe unreachable ends the request in 503. */
  private async identify(paymentMethodId: string): Promise<{ ok: true; clientId: string; customerId: string | null } | { ok: false }> {
    this.stripeBudget();
    const found = await this.gateway.paymentMethod(paymentMethodId);
    if (!found.ok) {
      this.unavailableIfUnknown(found, 'payment method lookup');
      return { ok: false };
    }
    const { fingerprint, customer } = found.paymentMethod;
    if (!fingerprint) return { ok: false };
    return { ok: true, clientId: await this.clientIdFor(fingerprint), customerId: customer };
  }

  private async charge(
    match: RouteMatch,
    price: Price,
    payload: PaymentPayload,
    clientId: string,
    topUp: number,
    attachedCustomer: string | null,
    balance: number,
    context: DecisionContext,
  ): Promise<Decision> {
    const base = { clientId, balance, currency: price.currency };
    const account = { clientId, currency: price.currency };
    const keyed = payload.idempotencyKey;
    // The key exists before the call, so the SDK's own retries and the client's retries reuse it (PROC-6).
    let idempotencyKey = keyed !== undefined ? stripeIdempotencyKey(clientId, keyed) : `stripe402:${clientId}:server-${randomUUID()}`;
    let predatesRecords = false;
    if (keyed !== undefined) {
      // PROC-12: one charge per (client id, idempotencyKey), even after Stripe's 24-hour idempotency window. The ledger
      // records the key before the Stripe call and the PaymentIntent after it, so a key used before is known without a
      // Stripe search (eventually consistent, and one more sequential call). Under the top-up lock, so one request at a time.
      const begun = await this.ledger.beginKeyedTopUp({ clientId, currency: price.currency, idempotencyKey: keyed, stripeIdempotencyKey: idempotencyKey, units: topUp });
      const { record } = begun;
      predatesRecords = begun.predatesRecords;
      let search = begun.created && begun.predatesRecords;
      if (!begun.created) {
        // Recorded for another amount or currency: the key named another top-up.
        if (record.currency !== price.currency || record.units !== topUp) return this.fail(match, { ...base, code: 'invalid_payment', message: MESSAGES.key_reused }, context);
        if (record.paymentIntentId !== null) return this.chargedBefore(match, price, record.paymentIntentId, clientId, topUp, balance, context);
        // Recorded, its PaymentIntent unknown (the call failed or its answer was lost): repeating the call with the same
        // Idempotency-Key replays it while Stripe keeps the key; past that window only a search can tell.
        idempotencyKey = record.stripeIdempotencyKey;
        search = Date.now() - record.recordedAt.getTime() >= this.idempotencyWindowMs;
      }
      if (search) {
        this.stripeBudget();
        const earlier = await this.gateway.findTopUp(clientId, keyed);
        if (!earlier.ok) this.unavailableIfUnknown(earlier, 'top-up lookup', match);
        else if (earlier.paymentIntent) {
          const pi = earlier.paymentIntent;
          // Found by this client id and key: another amount or currency means the key named another top-up.
          if (this.mismatch(pi, { clientId, units: topUp, currency: price.currency })) return this.fail(match, { ...base, code: 'invalid_payment', message: MESSAGES.key_reused }, context);
          await this.ledger.keyedTopUpCharged(account, keyed, pi.id);
          return this.settleIntent(match, price, pi, clientId, balance, context, 'charge');
        } else if (earlier.ignored) {
          this.report({ stage: 'stripe', route: match.route.key, clientId, detail: `top-up lookup: ${earlier.ignored}` });
        }
      }
    }

    // The card's own Customer, else the one the ledger recorded for this client id, else a new one (a card never seen).
    let customerId = attachedCustomer ?? (await this.ledger.customerOf(clientId));
    if (!customerId) {
      // A client id older than the ledger's records may have a Customer only Stripe knows: search first (two calls).
      this.stripeBudget(predatesRecords ? 2 : 1);
      const customer = predatesRecords ? await this.gateway.findOrCreateCustomer(clientId) : await this.gateway.createCustomer(clientId);
      if (!customer.ok) return this.fail(match, { ...base, ...this.chargeFailure(customer, 'customer', match) }, context);
      customerId = customer.customerId;
      await this.ledger.recordCustomer(clientId, customerId);
    }
    this.stripeBudget();
    const charged = await this.gateway.charge({
      amountMinor: unitsToMinor(topUp, price.currency),
      currency: price.currency,
      paymentMethodId: payload.paymentMethodId!,
      customerId,
      clientId,
      units: topUp,
      // Same parameters on every retry of one key, or Stripe refuses the replay: nothing here depends on the route or on earlier attempts.
      description: `stripe402 top-up: ${topUp} units`,
      savePaymentMethod: true,
      idempotencyKey,
      ...(payload.idempotencyKey ? { clientIdempotencyKey: payload.idempotencyKey } : {}),
      ...(this.returnUrl ? { returnUrl: this.returnUrl } : {}),
    });
    if (!charged.ok) {
      // A decline leaves a PaymentIntent: recorded, so a retry of this key finds it declined without a search.
      if (keyed !== undefined && charged.paymentIntentId) await this.ledger.keyedTopUpCharged(account, keyed, charged.paymentIntentId);
      return this.fail(match, { ...base, ...this.chargeFailure(charged, 'charge', match) }, context);
    }
    const pi = charged.paymentIntent;
    if (keyed !== undefined) await this.ledger.keyedTopUpCharged(account, keyed, pi.id);
    // Stripe replays a key only with the same parameters (other parameters are a conflict, above), so a PaymentIntent
    // other than the one asked for is the backend's fault, never the client's: say exactly what differs, credit nothing.
    const wrong = this.mismatch(pi, { clientId, units: topUp, currency: price.currency, customerId });
    if (wrong) {
      this.report({ stage: 'stripe', route: match.route.key, clientId, detail: `charge: the Stripe backend answered the top-up of ${topUp} units with PaymentIntent ${pi.id}, which is not the one asked for: ${wrong}` });
      return this.fail(match, { ...base, code: 'payment_failed', message: MESSAGES.payment_mismatch }, context);
    }
    return this.settleIntent(match, price, pi, clientId, balance, context, 'charge', true);
  }

  /**
   * A keyed top-up whose PaymentIntent the ledger recorded (PROC-12): that
   * PaymentIntent, retrieved by id (strongly consistent, unlike a search),
   * settles the request; nothing is charged again.
   */
  private async chargedBefore(match: RouteMatch, price: Price, paymentIntentId: string, clientId: string, topUp: number, balance: number, context: DecisionContext): Promise<Decision> {
    const base = { clientId, balance, currency: price.currency };
    this.stripeBudget();
    const found = await this.gateway.retrievePaymentIntent(paymentIntentId);
    if (!found.ok) {
      this.unavailableIfUnknown(found, 'retrieve', match);
      return this.fail(match, { ...base, code: 'payment_failed', message: MESSAGES.payment_failed }, context);
    }
    const wrong = this.mismatch(found.paymentIntent, { clientId, units: topUp, currency: price.currency });
    if (wrong) {
      this.report({ stage: 'stripe', route: match.route.key, clientId, detail: `retrieve: PaymentIntent ${paymentIntentId}, recorded for this top-up, is not it: ${wrong}` });
      return this.fail(match, { ...base, code: 'payment_failed', message: MESSAGES.payment_mismatch }, context);
    }
    return this.settleIntent(match, price, found.paymentIntent, clientId, balance, context, 'charge');
  }

  /**
   * Step 2 (AUTH-2, AUTH-3): the client comes back with the PaymentIntent it
   * authenticated. Honoured only for a top-up this deployment started for
   * that client, as its ledger records it; anything else is refused without
   * a Stripe call (SEC-9).
   */
  private async resume(match: RouteMatch, price: Price, payload: PaymentPayload, context: DecisionContext, limits: RequestLimits): Promise<Decision> {
    const paymentIntentId = payload.paymentIntentId!;
    const byCard = payload.paymentMethodId !== undefined;
    // A resume by client id alone is an unpaid client id until it pays (SEC-3); one by card is a charge attempt (SEC-7).
    if (byCard) this.startAttempt(limits);
    else this.allowUnpaid(limits);
    const started = await this.ledger.startedTopUp(paymentIntentId);
    const matches = (clientId: string) =>
      started !== null &&
      started.clientId === clientId &&
      started.currency === price.currency &&
      (payload.topUpAmount === undefined || started.units === payload.topUpAmount);
    let clientId: string;
    if (byCard) {
      if (started === null) {
        return this.fail(match, { code: 'invalid_payment', message: MESSAGES.unknown_payment_intent, clientId: payload.clientId ?? '', balance: 0, currency: price.currency }, context);
      }
      const identified = await this.identify(payload.paymentMethodId!);
      if (!identified.ok) {
        return this.fail(match, { code: 'invalid_payment', message: MESSAGES.unusable_payment_method, clientId: payload.clientId ?? '', balance: 0, currency: price.currency }, context);
      }
      clientId = identified.clientId;
      this.startCardAttempt(limits, clientId);
    } else {
      clientId = payload.clientId!;
    }
    context.clientId = clientId;
    const account = { clientId, currency: price.currency };
    const refuse = async () => {
      if (!byCard) this.limiter.unpaidSeen(limits.source);
      const balance = await this.ledger.balance(account);
      return this.fail(match, { code: 'invalid_payment', message: MESSAGES.unknown_payment_intent, clientId, balance, currency: price.currency }, context);
    };
    // Unknown here, another client's, or another top-up than the one this payload describes: invalid_payment, Stripe untouched.
    if (!matches(clientId)) return refuse();
    this.stripeBudget();
    const found = await this.gateway.retrievePaymentIntent(paymentIntentId);
    if (!found.ok) this.unavailableIfUnknown(found, 'retrieve', match);
    // Stripe's word is checked too: the ledger says who asked for the top-up, Stripe what it is.
    if (!found.ok || this.mismatch(found.paymentIntent, { clientId, units: payload.topUpAmount, currency: price.currency })) return refuse();
    return this.settleIntent(match, price, found.paymentIntent, clientId, await this.ledger.balance(account), context, 'resume');
  }

  /** Acts on a PaymentIntent's status (Table 8.3, AUTH-1, AUTH-3): credit and spend, ask for authentication, or fail. */
  private async settleIntent(
    match: RouteMatch,
    price: Price,
    pi: PaymentIntentView,
    clientId: string,
    balance: number,
    context: DecisionContext,
    via: 'charge' | 'resume',
    created = false,
  ): Promise<Decision> {
    const base = { clientId, balance, currency: price.currency };
    switch (pi.status) {
      case 'succeeded':
        return this.credit(match, price, pi, clientId, context, via, created);
      case 'requires_action':
        // The client learns this PaymentIntent's id only now, and resumes with it: record it first (SEC-9).
        if (via === 'charge') {
          await this.ledger.recordTopUp({ paymentIntentId: pi.id, clientId, currency: price.currency, units: Number(pi.metadata[METADATA_UNITS]) });
        }
        return this.fail(
          match,
          { ...base, code: 'authentication_required', message: MESSAGES.authentication_required, paymentIntentId: pi.id, ...(pi.nextActionUrl ? { nextActionUrl: pi.nextActionUrl } : {}) },
          context,
        );
      case 'processing':
        return this.fail(match, { ...base, code: 'payment_failed', message: MESSAGES.payment_intent_processing }, context);
      default:
        // A declined top-up found again under its idempotencyKey stays declined; a resumed one that failed is payment_failed (AUTH-3).
        if (via === 'charge' && pi.declined) return this.fail(match, { ...base, code: 'card_declined', message: MESSAGES.card_declined }, context);
        return this.fail(match, { ...base, code: 'payment_failed', message: via === 'resume' ? MESSAGES.payment_intent_failed : MESSAGES.payment_failed }, context);
    }
  }

  /**
   * Step 7 (PROC-8): credit the PaymentIntent's units keyed by its id and
   * spend, in one ledger transaction. A PaymentIntent credited before
   * (webhook, reconcile, an earlier attempt) is not credited again; the
   * request then spends like any other, and never leads to a new charge.
   */
  private async credit(match: RouteMatch, price: Price, pi: PaymentIntentView, clientId: string, context: DecisionContext, via: 'charge' | 'resume', created: boolean): Promise<Decision> {
    const { route } = match;
    const units = Number(pi.metadata[METADATA_UNITS]);
    let result;
    try {
      result = await this.ledger.creditTopUp({
        clientId,
        currency: price.currency,
        paymentIntentId: pi.id,
        units,
        chargedMinor: pi.amountReceived || pi.amount,
        spend: { amount: price.amount, route: route.key },
      });
    } catch (error) {
      // Charged but not recorded: the retry with the same idempotencyKey, the webhook or reconcile credits it once (LEDG-6).
      this.report({ stage: 'ledger', route: route.key, clientId, detail: `credit of ${pi.id} failed: ${describe(error)}`, error });
      context.fault = 'ledger';
      return this.unavailable(context);
    }
    // PROC-9: chargeId when this request created the PaymentIntent (a webhook may have credited it first), or made its first credit.
    if (result.spent) return this.serve(match, price, clientId, result.balance, pi, context);
    const spent = await this.ledger.spend({ clientId, currency: price.currency, amount: price.amount, route: route.key });
    if (spent.ok) return this.serve(match, price, clientId, spent.balance, created || result.credited ? pi : undefined, context);
    const message = via === 'charge' ? MESSAGES.insufficient_after_topup : MESSAGES.insufficient_credits;
    return this.fail(match, { code: 'insufficient_credits', message, clientId, balance: spent.balance, currency: price.currency }, context);
  }

  /**
   * What makes a PaymentIntent other than this client's stripe402 top-up in
   * this currency (of `units` and for `customerId`, when given), or undefined
   * when it is one (AUTH-2, PROC-12, Table 8.2). Every difference is named,
   * for the server log.
   */
  private mismatch(pi: PaymentIntentView, want: { clientId: string; currency: string; units?: number | undefined; customerId?: string }): string | undefined {
    const wrong: string[] = [];
    const metaClient = pi.metadata[METADATA_CLIENT_ID];
    const metaUnits = pi.metadata[METADATA_UNITS];
    const metaCurrency = pi.metadata[METADATA_CURRENCY];
    if (metaClient !== want.clientId) wrong.push(`metadata ${METADATA_CLIENT_ID} is ${show(metaClient)}, not ${want.clientId}`);
    const unitsValid = metaUnits !== undefined && /^[1-9][0-9]*$/.test(metaUnits) && Number.isSafeInteger(Number(metaUnits));
    if (!unitsValid) wrong.push(`metadata ${METADATA_UNITS} is ${show(metaUnits)}, not a number of units`);
    else if (want.units !== undefined && metaUnits !== String(want.units)) wrong.push(`metadata ${METADATA_UNITS} is ${show(metaUnits)}, not "${want.units}"`);
    if ((metaCurrency ?? pi.currency) !== want.currency) wrong.push(`metadata ${METADATA_CURRENCY} is ${show(metaCurrency)}, not "${want.currency}"`);
    if (pi.currency !== want.currency) wrong.push(`currency is ${show(pi.currency)}, not "${want.currency}"`);
    const units = want.units ?? (unitsValid ? Number(metaUnits) : undefined);
    if (units !== undefined && pi.currency === want.currency && pi.amount !== unitsToMinor(units, want.currency)) {
      wrong.push(`amount is ${pi.amount}, not ${unitsToMinor(units, want.currency)} (${units} units)`);
    }
    if (want.customerId !== undefined && pi.customer !== want.customerId) wrong.push(`customer is ${show(pi.customer)}, not ${want.customerId}`);
    return wrong.length > 0 ? wrong.join('; ') : undefined;
  }

  // ---- rate limits (SEC-3, SEC-7, SEC-8); each throws RateLimited before the work it guards ----

  private allowUnpaid(limits: RequestLimits): void {
    const limited = this.limiter.unpaidAllowed(limits.source);
    if (limited) throw new RateLimited(limited);
  }

  private startAttempt(limits: RequestLimits): void {
    if (limits.attempt) return;
    const limited = this.limiter.startAttempt(limits.source);
    if (limited) throw new RateLimited(limited);
    limits.attempt = true;
  }

  private startCardAttempt(limits: RequestLimits, card: string): void {
    if (limits.card !== undefined) return;
    const limited = this.limiter.startCardAttempt(card);
    if (limited) throw new RateLimited(limited);
    limits.card = card;
  }

  /** One (or `calls`) Stripe calls out of the global budget. */
  private stripeBudget(calls = 1): void {
    for (let i = 0; i < calls; i++) {
      const limited = this.limiter.stripeCall();
      if (limited) throw new RateLimited(limited);
    }
  }

  /** ERR-9: when Stripe could not be reached or the outcome is unknown, the request ends in 503. */
  private unavailableIfUnknown(failure: GatewayFailure, call: string, match?: RouteMatch): void {
    if (failure.kind === 'unavailable') throw new StripeUnavailable(`${call}: ${failure.detail}`);
    this.report({ stage: 'stripe', route: match?.route.key ?? '', detail: `${call}: ${failure.kind}: ${failure.detail}` });
  }

  /** Table 8.3 for a failed Stripe call while charging. */
  private chargeFailure(failure: GatewayFailure, call: string, match: RouteMatch): Pick<Failure, 'code' | 'message'> {
    this.unavailableIfUnknown(failure, call, match);
    if (failure.kind === 'declined') return { code: 'card_declined', message: MESSAGES.card_declined };
    if (failure.kind === 'conflict') return { code: 'invalid_payment', message: MESSAGES.key_reused };
    return { code: 'payment_failed', message: MESSAGES.payment_failed };
  }

  // ---- responses ----

  /** Grants the request; `charge` is the PaymentIntent this request charged or credited first, if any (PROC-9, PROC-17). */
  private serve(match: RouteMatch, price: Price, clientId: string, balance: number, charge: PaymentIntentView | undefined, context: DecisionContext): Decision {
    context.clientId = clientId;
    if (charge) context.chargeId = charge.id;
    const grant: Grant = charge
      ? { route: match.route, price, clientId, balance, chargeId: charge.id, chargeAmount: charge.amount, context }
      : { route: match.route, price, clientId, balance, context };
    return { kind: 'serve', grant, context };
  }

  /** An error 402 (ERR-1, ERR-2): the challenge with `error` set, and a payment-response naming the same code. */
  private fail(match: RouteMatch, failure: Failure, context: DecisionContext = {}): Decision {
    context.errorCode = failure.code;
    const challenge = this.challenge(match, failure.code);
    const response: PaymentResponse = {
      success: false,
      creditsRemaining: failure.balance,
      clientId: isClientId(failure.clientId) ? failure.clientId : '',
      error: failure.message,
      errorCode: failure.code,
    };
    if (failure.paymentIntentId) response.paymentIntentId = failure.paymentIntentId;
    if (failure.nextActionUrl) response.nextActionUrl = failure.nextActionUrl;
    if (failure.currency) response.currency = failure.currency;
    return { kind: 'respond', status: 402, headers: this.errorHeaders(challenge.header, encodeHeader(response)), body: challenge.body, context };
  }

  /**
   * A limited request (ERR-10): an error 402 with code rate_limited and a
   * Retry-After, which establishes no client id and tells no balance, so it
   * cannot be used to probe ids (SEC-3); nothing was spent or charged.
   */
  private limited(match: RouteMatch, limited: Limited, context: DecisionContext): Decision {
    context.limited = limited.kind;
    delete context.clientId;
    const decision = this.fail(match, { code: 'rate_limited', message: MESSAGES.rate_limited, clientId: '', balance: 0 }, context);
    if (decision.kind === 'respond') decision.headers['retry-after'] = String(limited.retryAfterSeconds);
    return decision;
  }

  /**
   * A server fault (ERR-5, ERR-9): 503 with Retry-After, no payment-required,
   * and no payment-response either (ENC-13 allows it; no error code means
   * "the server is in trouble").
   */
  private unavailable(context: DecisionContext): Decision {
    return {
      kind: 'respond',
      status: 503,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': this.retryAfter },
      body: JSON.stringify({ error: 'service_unavailable', message: MESSAGES.unavailable }),
      context,
    };
  }

  /** The PaymentRequiredResponse of a route, encoded once per route and error code (ENC-10). */
  private challenge(match: RouteMatch, error: ErrorCode | undefined): { header: string; body: string } {
    const { route } = match;
    const cacheKey = route.hasParams ? null : `${route.key}\u0000${error ?? ''}`;
    if (cacheKey) {
      const cached = this.challengeCache.get(cacheKey);
      if (cached) return cached;
    }
    const message: PaymentRequiredResponse = {
      stripe402Version: STRIPE402_VERSION as 1,
      resource: {
        url: match.resourcePath,
        ...(route.description === undefined ? {} : { description: route.description }),
        ...(route.mimeType === undefined ? {} : { mimeType: route.mimeType }),
      },
      accepts: route.prices.map((price) => this.requirements(route, price)) as PaymentRequiredResponse['accepts'],
      ...(error ? { error } : {}),
    };
    const body = JSON.stringify(message);
    const encoded = { header: encodeHeader(message), body };
    if (cacheKey) this.challengeCache.set(cacheKey, encoded);
    return encoded;
  }

  private requirements(route: PaidRoute, price: Price): PaymentRequirements {
    const description = price.description ?? route.description;
    return {
      scheme: 'stripe',
      currency: price.currency,
      amount: price.amount,
      minTopUp: price.minTopUp,
      ...(price.maxTopUp === undefined ? {} : { maxTopUp: price.maxTopUp }),
      publishableKey: this.publishableKey,
      ...(description === undefined ? {} : { description }),
    };
  }

  private errorHeaders(challengeHeader: string, paymentResponse: string | undefined): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      [HEADER_PAYMENT_REQUIRED]: challengeHeader,
      'access-control-expose-headers': EXPOSED_HEADERS,
    };
    if (paymentResponse !== undefined) headers[HEADER_PAYMENT_RESPONSE] = paymentResponse;
    return headers;
  }
}

/**
 * The Stripe Idempotency-Key of a client-keyed top-up, in the form the spec
 * recommends: a function of the client id and the payload's idempotencyKey
 * only, different for every pair (PROC-6). At most 203 characters, within
 * Stripe's 255.
 */
export function stripeIdempotencyKey(clientId: string, idempotencyKey: string): string {
  return `stripe402:${clientId}:${idempotencyKey}`;
}

/**
 * The same bytes as the core codec's `encodeHeader` (standard base64 with
 * padding of the UTF-8 JSON, ENC-2), through Node's native encoder: the
 * core stays free of Node APIs, and this runs once per paid request.
 */
function encodeHeaderNative(message: object): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
