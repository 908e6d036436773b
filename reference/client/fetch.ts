/**
 * The paying fetch: a drop-in `fetch` that answers a stripe402 challenge
 * (spec section 2) within a budget. On a 402 it decodes the challenge,
 * picks a payment option, asks its budget, pays with a PaymentMethod
 * (given, or tokenized from a card) and retries the same request; it then
 * remembers the client id per (origin, currency) and the price per route,
 * so a known route is paid with the client id on its first request, in one
 * round trip. Top-ups carry an idempotency key that is reused when a request
 * is retried after a network failure, so a server that supports the key
 * charges once. Every refusal is a typed error; the number of round trips
 * per call is bounded.
 */
import {
  decodeHeaderObject,
  decodePaymentRequiredHeader,
  checkMessage,
  encodeHeader,
  isClientId,
  isErrorCode,
  isUnits,
  base64Encode,
  HEADER_PAYMENT_REQUIRED,
  HEADER_PAYMENT_RESPONSE,
  STRIPE402_VERSION,
  type ErrorCode,
  type PaymentPayload,
  type PaymentRequiredResponse,
  type PaymentRequirements,
  type PaymentResponse,
} from '@stripe402/core';
import { BudgetPolicy, type BudgetOptions, type Reservation } from './budget.ts';
import { createCardPaymentMethod, DEFAULT_STRIPE_API_BASE, type CardDetails } from './card.ts';
import {
  AuthenticationRequiredError,
  InvalidChallengeError,
  PaymentMethodRequiredError,
  PaymentNetworkError,
  PaymentRefusedError,
  TooManyAttemptsError,
  type AuthenticationDetails,
  type ServerRefusal,
} from './errors.ts';
import { bufferRequest, toInit, DEFAULT_MAX_BODY_BYTES, type ReplayableRequest } from './request.ts';
import { MemoryClientIdStore, type ClientIdStore } from './store.ts';

/** Options of the paying fetch. */
export interface Stripe402FetchOptions {
  /** The PaymentMethod to charge for top-ups (`pm_...`). */
  paymentMethodId?: string;
  /**
   * Card data to tokenize with the server's publishable key when no
   * `paymentMethodId` is given (test cards, agents that hold a card). The
   * program then handles raw card numbers and is in PCI DSS scope.
   */
  card?: CardDetails;
  /** Where cards are tokenized. Default `https://api.stripe.com`. */
  stripeApiBase?: string;
  /** The budget: a shared `BudgetPolicy`, or options for a new one. Default: the safe defaults of `BudgetPolicy`. */
  budget?: BudgetPolicy | BudgetOptions;
  /** Where client ids are kept. Default: in memory. */
  store?: ClientIdStore;
  /** Currencies to prefer when a server offers several, in order of preference. */
  preferredCurrencies?: readonly string[];
  /**
   * Called when a top-up needs card authentication (3-D Secure). Resolve
   * `'completed'` once the card holder has authenticated (the request is
   * then retried with the PaymentIntent id) or `'abort'` to give up with an
   * `AuthenticationRequiredError`. Without this hook that error is thrown
   * at once, and its `resume()` retries later.
   */
  onAuthenticationRequired?: (details: AuthenticationDetails) => Promise<'completed' | 'abort'>;
  /** Called after every response to a request that carried a payment. */
  onPayment?: (event: PaymentEvent) => void;
  /** How many times a request carrying a top-up is re-sent after a network error. Default 2. */
  maxNetworkRetries?: number;
  /** The first delay between those re-sends, doubled each time, in milliseconds. Default 200. */
  retryDelayMs?: number;
  /** Most requests one call sends (redirect hops aside). Default 6. */
  maxAttempts?: number;
  /**
   * The longest Retry-After of a `rate_limited` answer to a spend that the
   * client waits for before repeating it (ERR-12), in milliseconds; a longer
   * one throws PaymentRefusedError at once. Default 10,000; 0 never waits.
   */
  maxRateLimitWaitMs?: number;
  /** Largest request body buffered for the paid retry, in bytes. Default 32 MiB. */
  maxBodyBytes?: number;
}

/** What one paid response reported. */
export interface PaymentEvent {
  /** The URL paid for. */
  url: string;
  /** The HTTP method. */
  method: string;
  /** The origin paid. */
  origin: string;
  /** The HTTP status of the response. */
  status: number;
  /** The currency paid in. */
  currency: string;
  /** The price of the request, in units. */
  price: number;
  /** The client id the server reported (a bearer credential: redact before logging). */
  clientId: string | undefined;
  /** The balance after the request, in units, when the server reported it. */
  creditsRemaining: number | undefined;
  /** The PaymentIntent id, when this request charged the card. */
  chargeId: string | undefined;
  /** The credit bought, in units, when this request charged the card. */
  topUpAmount: number | undefined;
  /**
   * The card charge in the currency's smallest unit, when this request
   * charged the card: as the server reported it (`chargeAmountConfirmed`), or
   * else as the budget counted it (the spec's charge, or its worst case for a
   * currency whose exponent is not 2, see `BudgetOptions.unconfirmedCharges`).
   */
  chargedMinor: number | undefined;
  /** Whether the server reported the charge in minor units (`chargeAmount`); stripe402 v1 servers never do. */
  chargeAmountConfirmed: boolean;
  /**
   * A top-up was sent whose response was lost, and this answer did not say
   * whether it charged: the budget counts it as charged.
   */
  chargeUnconfirmed: boolean;
  /** How many requests this call sent, counting this one. */
  requests: number;
}

/** How a request pays: spending a client id's balance, or buying a top-up. */
interface Attempt {
  kind: 'spend' | 'topup';
  requirements: PaymentRequirements;
  sendCurrency: boolean;
  payload: PaymentPayload;
  topUp?: PendingTopUp;
}

/** A top-up whose idempotency key is kept until its outcome is known. */
interface PendingTopUp {
  key: string;
  idempotencyKey: string;
  paymentMethodId: string;
  topUpAmount: number;
  reservation: Reservation;
  /** A send of this top-up failed at the network level: it may have charged. */
  uncertain?: boolean;
}

/** What a 402 said. */
interface Read402 {
  challenge: PaymentRequiredResponse | undefined;
  paymentResponse: PaymentResponse | undefined;
  code: ErrorCode | undefined;
  invalidDetail: string | undefined;
}

interface KnownRoute {
  requirements: PaymentRequirements;
  sendCurrency: boolean;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
const MAX_AUTHENTICATION_ROUNDS = 3;
/** How many rate_limited answers one call waits out before giving up. */
const MAX_RATE_LIMIT_WAITS = 2;

/**
 * A stripe402 client: its `fetch` pays within the budget and remembers
 * client ids and route prices across calls. Use `withStripe402` for just the
 * fetch function.
 */
export class Stripe402Client {
  /** The budget every payment of this client is checked against. */
  readonly budget: BudgetPolicy;
  /** Where client ids are kept. */
  readonly store: ClientIdStore;
  /** The paying fetch. */
  readonly fetch: typeof fetch;

  private readonly baseFetch: typeof fetch;
  private readonly options: Stripe402FetchOptions;
  private readonly routes = new Map<string, KnownRoute>();
  private readonly credits = new Map<string, number>();
  private readonly pending = new Map<string, PendingTopUp>();
  private readonly topUpLocks = new Map<string, Promise<void>>();
  private readonly topUpGeneration = new Map<string, number>();
  private readonly cardMethods = new Map<string, Promise<string>>();

  constructor(options: Stripe402FetchOptions & { fetch?: typeof fetch } = {}) {
    this.options = options;
    this.baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.budget = options.budget instanceof BudgetPolicy ? options.budget : new BudgetPolicy(options.budget ?? {});
    this.store = options.store ?? new MemoryClientIdStore();
    if (options.paymentMethodId !== undefined && !/^pm_[A-Za-z0-9_]+$/.test(options.paymentMethodId)) {
      throw new TypeError('paymentMethodId must be a Stripe PaymentMethod id (pm_...)');
    }
    this.fetch = (input: RequestInfo | URL, init?: RequestInit) => this.request(input, init);
  }

  /** The price this client remembers for a route, if it has paid or been challenged there. */
  knownPrice(url: string | URL, method = 'GET'): PaymentRequirements | undefined {
    const u = new URL(url);
    return this.routes.get(routeKey(u, method.toUpperCase()))?.requirements;
  }

  /** The balance the server last reported for an origin and currency, in units. */
  lastKnownCredits(origin: string, currency: string): number | undefined {
    return this.credits.get(`${origin} ${currency}`);
  }

  private async request(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    // A caller who sets its own payment header is paying by hand: stay out of the way.
    const callerHeaders = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (callerHeaders.has('payment')) return this.baseFetch(input, init);
    const request = await bufferRequest(input, init, this.options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    return this.run(request, undefined, 0);
  }

  /** Sends a request, paying as needed; `first` is a payment to start with (a resumed authentication). */
  private async run(request: ReplayableRequest, first: Attempt | undefined, hops: number): Promise<Response> {
    const maxAttempts = this.options.maxAttempts ?? 6;
    const url = request.url;
    const origin = url.origin;
    let requests = 0;
    let attempt = first ?? (await this.planKnownRoute(request));
    let toppedUp = attempt?.kind === 'topup';
    let triedSpend = attempt?.kind === 'spend';
    let authenticationRounds = 0;
    let rateLimitWaits = 0;
    let reChose = false;

    for (;;) {
      if (requests >= maxAttempts) {
        throw new TooManyAttemptsError(requests, `gave up after ${requests} requests to ${url.href} without being served`);
      }
      requests++;
      const sentAtGeneration = this.generation(origin);
      const response = await this.transmit(request, attempt);

      if (REDIRECT_STATUSES.has(response.status) && response.headers.has('location') && request.redirect !== 'manual') {
        await this.settle(request, attempt, response, undefined, requests);
        return this.followRedirect(request, response, hops);
      }

      if (response.status !== 402) {
        await this.settle(request, attempt, response, undefined, requests);
        return response;
      }

      const said = await read402(response);
      await this.settle(request, attempt, response, said, requests);
      if (said.challenge) this.rememberChallenge(request, said.challenge);

      if (!attempt) {
        // Not a stripe402 challenge: hand the 402 back untouched, as fetch would.
        if (!said.challenge) {
          if (said.invalidDetail) {
            await discard(response);
            throw new InvalidChallengeError(402, `${url.href} answered 402 with a challenge the client cannot use: ${said.invalidDetail}`);
          }
          return response;
        }
        await discard(response);
        attempt = await this.payFor(request, said.challenge, { allowSpend: true, sentAtGeneration });
        triedSpend = attempt.kind === 'spend';
        if (attempt.kind === 'topup') toppedUp = true;
        continue;
      }

      // No code at all reads as v1's plain challenge: payment is (still) required.
      const code: ErrorCode = said.code ?? 'payment_required';
      const refusal: ServerRefusal = {
        status: response.status,
        paymentResponse: said.paymentResponse,
        paymentRequired: said.challenge,
        serverMessage: said.paymentResponse?.error,
      };

      if ((code === 'insufficient_credits' || code === 'payment_required') && !toppedUp) {
        const challenge = said.challenge ?? this.challengeFrom(attempt);
        await discard(response);
        // A spend that fell short is followed by a top-up; a 402 to an unpaid-looking payment may still spend a known id.
        attempt = await this.payFor(request, challenge, { allowSpend: !triedSpend, sentAtGeneration });
        if (attempt.kind === 'spend') triedSpend = true;
        else toppedUp = true;
        continue;
      }

      if (code === 'currency_not_accepted' && said.challenge && !reChose) {
        // The remembered option went stale; choose again from the fresh challenge once.
        reChose = true;
        await discard(response);
        attempt = await this.payFor(request, said.challenge, { allowSpend: true, sentAtGeneration });
        if (attempt.kind === 'topup') toppedUp = true;
        continue;
      }

      if (code === 'rate_limited' && attempt.kind === 'spend' && rateLimitWaits < MAX_RATE_LIMIT_WAITS) {
        // ERR-12: nothing was spent; the same spend may be repeated once Retry-After has passed. A top-up is not
        // repeated here: its budget reservation is settled, and the caller decides whether to pay again.
        const seconds = retryAfterSeconds(response);
        if (seconds !== undefined && seconds * 1000 <= (this.options.maxRateLimitWaitMs ?? 10_000)) {
          rateLimitWaits++;
          await discard(response);
          await sleep(seconds * 1000);
          continue;
        }
      }

      if (code === 'authentication_required' && attempt.kind === 'topup' && attempt.topUp) {
        const paymentIntentId = said.paymentResponse?.paymentIntentId;
        if (paymentIntentId) {
          await discard(response);
          const resumed: Attempt = { ...attempt, payload: { ...attempt.payload, paymentIntentId } };
          const details: AuthenticationDetails = {
            paymentIntentId,
            nextActionUrl: said.paymentResponse?.nextActionUrl,
            url: url.href,
            origin,
            currency: attempt.requirements.currency,
            topUpAmount: attempt.topUp.topUpAmount,
          };
          const hook = this.options.onAuthenticationRequired;
          if (hook && authenticationRounds < MAX_AUTHENTICATION_ROUNDS) {
            authenticationRounds++;
            if ((await hook(details)) === 'completed') {
              attempt = resumed;
              continue;
            }
          }
          throw new AuthenticationRequiredError(details, refusal, () => this.run(request, resumed, hops));
        }
      }

      await discard(response);
      // A refusal without a fresh challenge may come from a stale remembered price: learn it again next time.
      if (!said.challenge) this.routes.delete(routeKey(url, request.method));
      if (code === 'payment_required' || code === 'insufficient_credits') {
        throw new TooManyAttemptsError(requests, `${url.href} still asks for payment (${code}) after a top-up`);
      }
      throw new PaymentRefusedError(code, refusal, `the server refused the payment: ${code} (${describeCode(code)})`);
    }
  }

  /** The payment for a known route's first request: its client id, or a top-up when the balance is known to be short. */
  private async planKnownRoute(request: ReplayableRequest): Promise<Attempt | undefined> {
    const known = this.routes.get(routeKey(request.url, request.method));
    if (!known) return undefined;
    const origin = request.url.origin;
    const { currency, amount } = known.requirements;
    this.budget.checkOrigin(request.url);
    this.budget.checkPrice(origin, currency, amount);
    const clientId = await this.store.get(origin, currency);
    const credits = this.credits.get(`${origin} ${currency}`);
    if (clientId && (credits === undefined || credits >= amount || !this.canPay())) {
      return spendAttempt(known.requirements, known.sendCurrency, clientId);
    }
    if (credits !== undefined && credits < amount && this.canPay()) {
      return this.topUpAttempt(request, known.requirements, known.sendCurrency);
    }
    return undefined;
  }

  /** Chooses an option of a challenge and how to pay it: spend a known client id, or top up. */
  private async payFor(
    request: ReplayableRequest,
    challenge: PaymentRequiredResponse,
    { allowSpend, sentAtGeneration }: { allowSpend: boolean; sentAtGeneration: number },
  ): Promise<Attempt> {
    const origin = request.url.origin;
    this.budget.checkOrigin(request.url);
    const { requirements, sendCurrency } = this.choose(origin, challenge);
    this.budget.checkPrice(origin, requirements.currency, requirements.amount);
    const credits = this.credits.get(`${origin} ${requirements.currency}`);
    const knownShort = credits !== undefined && credits < requirements.amount && this.canPay();
    if (allowSpend && challenge.error !== 'insufficient_credits' && !knownShort) {
      const clientId = await this.store.get(origin, requirements.currency);
      if (clientId) return spendAttempt(requirements, sendCurrency, clientId);
    }
    return this.topUpAttempt(request, requirements, sendCurrency, sentAtGeneration);
  }

  /**
   * Builds a top-up payment, reusing the idempotency key of an unfinished
   * identical top-up. When another call of this client topped up the same
   * origin since `sentAtGeneration`, it spends the new balance instead.
   */
  private async topUpAttempt(
    request: ReplayableRequest,
    requirements: PaymentRequirements,
    sendCurrency: boolean,
    sentAtGeneration?: number,
  ): Promise<Attempt> {
    const origin = request.url.origin;
    const { currency } = requirements;
    if (!this.canPay()) {
      throw new PaymentMethodRequiredError(
        requirements,
        `a top-up of at least ${requirements.minTopUp} units ${currency} is needed, but the client has no paymentMethodId or card`,
      );
    }
    // Let a top-up already in flight for this origin and currency finish first: it may make ours unnecessary.
    await this.topUpLocks.get(`${origin} ${currency}`);
    if (sentAtGeneration !== undefined && this.generation(origin) !== sentAtGeneration) {
      const clientId = await this.store.get(origin, currency);
      if (clientId) return spendAttempt(requirements, sendCurrency, clientId);
    }
    const topUpAmount = this.budget.planTopUp(origin, requirements);
    const key = `${origin} ${currency} ${this.options.paymentMethodId ?? 'card'} ${topUpAmount}`;
    let topUp = this.pending.get(key);
    if (!topUp) {
      const reservation = await this.budget.authorizeTopUp({
        origin,
        url: request.url.href,
        method: request.method,
        currency,
        price: requirements.amount,
        topUpAmount,
        chargeMinor: this.budget.chargeBound(origin, currency, topUpAmount),
        minTopUp: requirements.minTopUp,
        maxTopUp: requirements.maxTopUp,
        description: requirements.description,
      });
      let paymentMethodId: string;
      try {
        paymentMethodId = await this.paymentMethodFor(requirements);
      } catch (error) {
        reservation.release();
        throw error;
      }
      topUp = { key, idempotencyKey: newIdempotencyKey(), paymentMethodId, topUpAmount, reservation };
      this.pending.set(key, topUp);
    }
    const payload: PaymentPayload = {
      stripe402Version: STRIPE402_VERSION,
      paymentMethodId: topUp.paymentMethodId,
      topUpAmount,
      idempotencyKey: topUp.idempotencyKey,
    };
    if (sendCurrency) payload.currency = currency;
    return { kind: 'topup', requirements, sendCurrency, payload, topUp };
  }

  private generation(origin: string): number {
    return this.topUpGeneration.get(origin) ?? 0;
  }

  private canPay(): boolean {
    return this.options.paymentMethodId !== undefined || this.options.card !== undefined;
  }

  private async paymentMethodFor(requirements: PaymentRequirements): Promise<string> {
    if (this.options.paymentMethodId) return this.options.paymentMethodId;
    const card = this.options.card!;
    // A PaymentMethod belongs to the Stripe account whose key created it: one per publishable key.
    let method = this.cardMethods.get(requirements.publishableKey);
    if (!method) {
      method = createCardPaymentMethod(card, requirements.publishableKey, {
        stripeApiBase: this.options.stripeApiBase ?? DEFAULT_STRIPE_API_BASE,
        fetch: this.baseFetch,
      });
      this.cardMethods.set(requirements.publishableKey, method);
      method.catch(() => this.cardMethods.delete(requirements.publishableKey));
    }
    return method;
  }

  /** Picks the payment option: preferred currencies first, then the server's order; the first within the budget. */
  private choose(origin: string, challenge: PaymentRequiredResponse): KnownRoute {
    const preferred = this.options.preferredCurrencies ?? [];
    const rank = (r: PaymentRequirements) => {
      const i = preferred.indexOf(r.currency);
      return i < 0 ? preferred.length : i;
    };
    const options = challenge.accepts
      .map((requirements, index) => ({ requirements, index }))
      .filter((o) => o.requirements.scheme === 'stripe')
      .sort((a, b) => rank(a.requirements) - rank(b.requirements) || a.index - b.index);
    // Best: within both the price and the top-up limits; then within the price (a balance may already cover it).
    const priced = options.filter((o) => this.budget.priceAllowed(o.requirements.currency, o.requirements.amount));
    const chosen = priced.find((o) => this.budget.topUpAllowed(o.requirements)) ?? priced[0] ?? options[0];
    if (!chosen) throw new InvalidChallengeError(402, `${origin} offers no payment option with scheme "stripe"`);
    return { requirements: chosen.requirements, sendCurrency: chosen.index !== 0 };
  }

  private rememberChallenge(request: ReplayableRequest, challenge: PaymentRequiredResponse): void {
    const key = routeKey(request.url, request.method);
    try {
      const chosen = this.choose(request.url.origin, challenge);
      if (this.budget.priceAllowed(chosen.requirements.currency, chosen.requirements.amount)) {
        this.routes.set(key, chosen);
        return;
      }
    } catch {
      // Nothing payable: forget the route below.
    }
    this.routes.delete(key);
  }

  /** The challenge a payment was made against, for a v1 error 402 that carries none. */
  private challengeFrom(attempt: Attempt): PaymentRequiredResponse {
    return { stripe402Version: STRIPE402_VERSION, resource: { url: '' }, accepts: [attempt.requirements] };
  }

  /** Sends one attempt; a top-up is re-sent with the same idempotency key after a network error. */
  private async transmit(request: ReplayableRequest, attempt: Attempt | undefined): Promise<Response> {
    const header = attempt ? encodeHeader(attempt.payload) : undefined;
    const send = () => this.baseFetch(request.url, toInit(request, header, 'manual'));
    if (attempt?.kind !== 'topup' || !attempt.topUp) return send();
    const topUp = attempt.topUp;
    return this.withTopUpLock(request.url.origin, attempt.requirements.currency, async () => {
      const retries = this.options.maxNetworkRetries ?? 2;
      let delay = this.options.retryDelayMs ?? 200;
      for (let sent = 1; ; sent++) {
        try {
          return await send();
        } catch (error) {
          topUp.uncertain = true;
          if (request.signal?.aborted || sent > retries) {
            if (request.signal?.aborted) throw error;
            throw new PaymentNetworkError(
              topUp.idempotencyKey,
              sent,
              `a request carrying a top-up to ${request.url.origin} failed ${sent} times at the network level; the charge may have happened, and retrying the call reuses the same idempotency key`,
              { cause: error },
            );
          }
          await sleep(delay);
          delay *= 2;
        }
      }
    });
  }

  /** Top-ups per (origin, currency) go one at a time, so that concurrent calls charge once and then spend. */
  private async withTopUpLock<T>(origin: string, currency: string, work: () => Promise<T>): Promise<T> {
    const key = `${origin} ${currency}`;
    const previous = this.topUpLocks.get(key) ?? Promise.resolve();
    let unlock!: () => void;
    const mine = new Promise<void>((resolve) => (unlock = resolve));
    const chained = previous.then(() => mine);
    this.topUpLocks.set(key, chained);
    await previous;
    try {
      return await work();
    } finally {
      unlock();
      if (this.topUpLocks.get(key) === chained) this.topUpLocks.delete(key);
    }
  }

  /** Records what a response said about a payment: the client id, the balance, and whether money was charged. */
  private async settle(
    request: ReplayableRequest,
    attempt: Attempt | undefined,
    response: Response,
    said: Read402 | undefined,
    requests: number,
  ): Promise<void> {
    if (!attempt) return;
    const origin = request.url.origin;
    const header = response.headers.get(HEADER_PAYMENT_RESPONSE);
    const paymentResponse = said?.paymentResponse ?? (header !== null ? lenientPaymentResponse(header) : undefined);
    const currency = paymentResponse?.currency ?? attempt.requirements.currency;
    if (paymentResponse) {
      // Only a served request proves the id can spend; error answers may name an id with nothing on it.
      if (paymentResponse.success && isClientId(paymentResponse.clientId)) await this.store.set(origin, currency, paymentResponse.clientId);
      if (paymentResponse.success || paymentResponse.clientId) this.credits.set(`${origin} ${currency}`, paymentResponse.creditsRemaining);
    }
    const chargeId = paymentResponse?.chargeId;
    const topUp = attempt.topUp;
    let charged = false;
    const confirmedMinor = chargeId ? paymentResponse?.chargeAmount : undefined;
    if (attempt.kind === 'topup' && topUp) {
      if (chargeId) {
        if (confirmedMinor !== undefined) this.budget.noteConfirmedCharge(origin, currency);
        topUp.reservation.commit(chargeId, confirmedMinor);
        charged = true;
        this.forgetPending(topUp);
        this.topUpGeneration.set(origin, this.generation(origin) + 1);
      } else if (response.status >= 500 || paymentResponse?.errorCode === 'authentication_required') {
        // Unknown outcome, or a PaymentIntent that may still succeed: keep it counted and keep the key for the retry.
      } else if (topUp.uncertain) {
        // An earlier send of this top-up was lost: it may have charged, and this answer may spend what it bought.
        topUp.reservation.commit();
        this.forgetPending(topUp);
        this.topUpGeneration.set(origin, this.generation(origin) + 1);
      } else if (paymentResponse || (response.status === 402 && said?.challenge)) {
        // The server answered this payment without charging (served from the balance, or refused).
        topUp.reservation.release();
        this.forgetPending(topUp);
      } else {
        // Answered with no payment-response at all: the charge is unknown, so it stays counted.
        topUp.reservation.commit();
        this.forgetPending(topUp);
      }
    }
    if (response.status !== 402 && this.options.onPayment) {
      this.options.onPayment({
        url: request.url.href,
        method: request.method,
        origin,
        status: response.status,
        currency,
        price: attempt.requirements.amount,
        clientId: isClientId(paymentResponse?.clientId) ? paymentResponse.clientId : undefined,
        creditsRemaining: paymentResponse?.creditsRemaining,
        chargeId,
        topUpAmount: charged ? topUp?.topUpAmount : undefined,
        chargedMinor: charged && topUp ? topUp.reservation.record.minor : undefined,
        chargeAmountConfirmed: charged && confirmedMinor !== undefined,
        chargeUnconfirmed: !charged && attempt.kind === 'topup' && topUp?.uncertain === true,
        requests,
      });
    }
  }

  private forgetPending(topUp: PendingTopUp): void {
    if (this.pending.get(topUp.key) === topUp) this.pending.delete(topUp.key);
  }

  /** Follows a redirect hop by hop, so each origin only ever sees its own client id. */
  private async followRedirect(request: ReplayableRequest, response: Response, hops: number): Promise<Response> {
    if (request.redirect === 'error') {
      await discard(response);
      throw new TypeError(`fetch failed: ${request.url.href} redirected and the redirect mode is "error"`);
    }
    if (hops >= MAX_REDIRECTS) {
      await discard(response);
      throw new TypeError('fetch failed: redirect count exceeded');
    }
    const location = new URL(response.headers.get('location')!, request.url);
    await discard(response);
    const headers = new Headers(request.headers);
    let method = request.method;
    let body = request.body;
    if (response.status === 303 ? method !== 'HEAD' : (response.status === 301 || response.status === 302) && method === 'POST') {
      method = 'GET';
      body = null;
      for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(name);
    }
    if (location.origin !== request.url.origin) {
      for (const name of ['authorization', 'cookie', 'proxy-authorization']) headers.delete(name);
    }
    return this.run({ ...request, url: location, method, body, headers }, undefined, hops + 1);
  }
}

/**
 * Wraps a fetch so that it pays stripe402 challenges within a budget.
 * `withStripe402(fetch, { paymentMethodId: 'pm_...' })` returns a function
 * with fetch's signature; keep it, since it remembers client ids and prices.
 */
export function withStripe402(baseFetch: typeof fetch, options: Stripe402FetchOptions = {}): typeof fetch {
  return new Stripe402Client({ ...options, fetch: baseFetch }).fetch;
}

/** A fresh idempotency key: 32 characters of [A-Za-z0-9_-] (192 random bits). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return base64Encode(bytes).replace(/\+/g, '-').replace(/\//g, '_');
}

function spendAttempt(requirements: PaymentRequirements, sendCurrency: boolean, clientId: string): Attempt {
  const payload: PaymentPayload = { stripe402Version: STRIPE402_VERSION, clientId };
  if (sendCurrency) payload.currency = requirements.currency;
  return { kind: 'spend', requirements, sendCurrency, payload };
}

function routeKey(url: URL, method: string): string {
  return `${url.origin} ${method} ${url.pathname}`;
}

/**
 * Reads a 402: the challenge from `payment-required` (or the JSON body), and
 * the `payment-response` from its header (or, as stripe402 v1 sends error
 * 402s, from the JSON body). Reads a clone, so the caller can still read a
 * 402 handed back untouched.
 */
async function read402(response: Response): Promise<Read402> {
  let challenge: PaymentRequiredResponse | undefined;
  let invalidDetail: string | undefined;
  const header = response.headers.get(HEADER_PAYMENT_REQUIRED);
  if (header !== null) {
    const decoded = decodePaymentRequiredHeader(header);
    if (decoded.ok) challenge = decoded.value;
    else invalidDetail = `payment-required: ${decoded.error.detail}`;
  }
  const prHeader = response.headers.get(HEADER_PAYMENT_RESPONSE);
  let paymentResponse = prHeader !== null ? lenientPaymentResponse(prHeader) : undefined;
  if (!challenge || !paymentResponse) {
    const body = await readJsonBody(response);
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      if (!challenge && 'accepts' in body) {
        const checked = checkMessage<PaymentRequiredResponse>(body, 'payment-required-response');
        if (checked.ok) {
          challenge = checked.value;
          invalidDetail = undefined;
        } else invalidDetail ??= `the 402 body: ${checked.error.detail}`;
      } else if (!paymentResponse && ('errorCode' in body || 'success' in body)) {
        paymentResponse = pickPaymentResponse(body as Record<string, unknown>);
      }
    }
  }
  const code = paymentResponse?.errorCode ?? challenge?.error;
  return { challenge, paymentResponse, code, invalidDetail };
}

async function readJsonBody(response: Response): Promise<unknown> {
  try {
    const text = await response.clone().text();
    return text.length > 0 && text.length < 1_000_000 ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A `payment-response` read leniently (fields of the wrong type are
 * dropped, not fatal), since the client only learns from it: a server that
 * sends a slightly odd one must not cost the caller its resource.
 */
function lenientPaymentResponse(header: string): PaymentResponse | undefined {
  const decoded = decodeHeaderObject(header);
  return decoded.ok ? pickPaymentResponse(decoded.value) : undefined;
}

function pickPaymentResponse(o: Record<string, unknown>): PaymentResponse {
  const out: PaymentResponse = {
    success: o.success === true,
    creditsRemaining: typeof o.creditsRemaining === 'number' && Number.isSafeInteger(o.creditsRemaining) && o.creditsRemaining >= 0 ? o.creditsRemaining : 0,
    clientId: isClientId(o.clientId) ? o.clientId : '',
  };
  if (typeof o.chargeId === 'string' && /^pi_[A-Za-z0-9_]+$/.test(o.chargeId)) out.chargeId = o.chargeId;
  if (typeof o.error === 'string') out.error = o.error.slice(0, 500);
  if (isErrorCode(o.errorCode)) out.errorCode = o.errorCode;
  if (typeof o.paymentIntentId === 'string' && /^pi_[A-Za-z0-9_]+$/.test(o.paymentIntentId)) out.paymentIntentId = o.paymentIntentId;
  if (typeof o.nextActionUrl === 'string' && /^https?:\/\//.test(o.nextActionUrl)) out.nextActionUrl = o.nextActionUrl;
  if (typeof o.currency === 'string' && /^[a-z]{3}$/.test(o.currency)) out.currency = o.currency;
  if (typeof o.chargeAmount === 'number' && Number.isSafeInteger(o.chargeAmount) && o.chargeAmount >= 1) out.chargeAmount = o.chargeAmount;
  if (!isUnits(out.creditsRemaining) && out.creditsRemaining !== 0) out.creditsRemaining = 0;
  return out;
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Already read or cancelled.
  }
}

/** A Retry-After in delta-seconds (RFC 9110, 10.2.3); an HTTP date or junk is undefined. */
function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  return value !== undefined && /^\d{1,6}$/.test(value) ? Number(value) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const CODE_TEXT: Record<ErrorCode, string> = {
  insufficient_credits: 'the balance does not cover the request',
  invalid_payment: 'the server could not use the payment header',
  unsupported_version: 'the server speaks another stripe402 version',
  top_up_below_minimum: 'the top-up is below the server minimum',
  top_up_above_maximum: 'the top-up is above the server maximum',
  currency_not_accepted: 'the server does not accept that currency',
  card_declined: 'the card was declined',
  authentication_required: 'the card needs authentication',
  payment_failed: 'the payment did not succeed',
  rate_limited: 'the server limits requests like this one for now; try again after its Retry-After delay',
  payment_required: 'the server asks for payment',
};

/** A short human explanation of a wire error code. */
export function describeCode(code: ErrorCode): string {
  return CODE_TEXT[code];
}
