/**
 * The Stripe gateway: everything the payment engine asks of Stripe, on the
 * official `stripe` SDK, so the server reaches real Stripe, stripe-mock and
 * the project's emulator the same way (host, port, protocol). SDK errors
 * become typed outcomes here; their text goes to the server log (`detail`)
 * and never to a client (ERR-4).
 */
import Stripe from 'stripe';

/** The PaymentIntent metadata keys fixed by the spec (PROC-6). */
export const METADATA_CLIENT_ID = 'stripe402_client_id';
export const METADATA_UNITS = 'stripe402_units';
export const METADATA_CURRENCY = 'stripe402_currency';
/** Optional metadata (Table 8.2): the payload's idempotencyKey, so a top-up can be found after Stripe's 24-hour window (PROC-12). */
export const METADATA_IDEMPOTENCY_KEY = 'stripe402_idempotency_key';
/** The deployment that created a PaymentIntent (LEDG-9), so that several deployments can share one Stripe account. */
export const METADATA_DEPLOYMENT = 'stripe402_deployment';

/** Why a Stripe call did not give what was asked. `detail` is for logs only. */
export type GatewayFailureKind =
  /** The card was declined (a card error). */
  | 'declined'
  /** The object does not exist (unknown PaymentMethod or PaymentIntent id). */
  | 'not_found'
  /** Stripe could not be reached, timed out, answered 5xx / 429, or refused the server's key: the outcome is unknown or the server is misconfigured (ERR-9). */
  | 'unavailable'
  /** The Idempotency-Key was used before with other parameters (PROC-12). */
  | 'conflict'
  /** Anything else: a rejected request, bad credentials, an idempotency conflict. */
  | 'failed';

export interface GatewayFailure {
  ok: false;
  kind: GatewayFailureKind;
  detail: string;
  /** The PaymentIntent a decline left behind, when Stripe names it. */
  paymentIntentId?: string;
}

/** The parts of a PaymentIntent stripe402 reads. */
export interface PaymentIntentView {
  id: string;
  status: string;
  /** Smallest currency unit. */
  amount: number;
  amountReceived: number;
  currency: string;
  metadata: Readonly<Record<string, string>>;
  /** The Customer the PaymentIntent was created for, when it has one. */
  customer?: string;
  created: number;
  /** Where the card holder completes authentication, for `requires_action` (AUTH-1). */
  nextActionUrl?: string;
  /** The last attempt failed with a card error (a decline). */
  declined: boolean;
}

export interface PaymentMethodView {
  id: string;
  /** The card fingerprint; null for a PaymentMethod that is not a card. */
  fingerprint: string | null;
  /** The Customer the PaymentMethod is attached to, if any. */
  customer: string | null;
}

export interface ChargeRequest {
  /** Smallest currency unit, an integer (UNIT-2). */
  amountMinor: number;
  currency: string;
  paymentMethodId: string;
  customerId: string;
  clientId: string;
  units: number;
  description?: string;
  /**
   * Save the card on the Customer once the payment succeeds, so the same
   * PaymentMethod can pay the next top-up (Stripe refuses to reuse one that
   * paid without a Customer attachment).
   */
  savePaymentMethod?: boolean;
  /** Stripe Idempotency-Key: the same key returns the same PaymentIntent (PROC-6). */
  idempotencyKey: string;
  /** The payload's idempotencyKey, kept in metadata (Table 8.2). */
  clientIdempotencyKey?: string;
  /** Where Stripe sends the card holder after authentication, so it offers a next-action URL (AUTH-1). */
  returnUrl?: string;
}

export type Outcome<T> = ({ ok: true } & T) | GatewayFailure;

/** What the engine, the webhook and reconcile need from Stripe. */
export interface StripeGateway {
  /** The public deployment id this gateway writes into every PaymentIntent it creates (LEDG-9); recovery credits only PaymentIntents that carry it. */
  readonly deploymentId?: string;
  paymentMethod(paymentMethodId: string): Promise<Outcome<{ paymentMethod: PaymentMethodView }>>;
  /** The Customer of a client id, searched for first, then created once even under concurrency (for a ledger that has none recorded from before). */
  findOrCreateCustomer(clientId: string): Promise<Outcome<{ customerId: string }>>;
  /** Creates the Customer of a client id, idempotently (the same Customer for 24 hours), without searching: the ledger records it. */
  createCustomer(clientId: string): Promise<Outcome<{ customerId: string }>>;
  /** Creates and confirms one PaymentIntent (confirm now, no redirects). */
  charge(request: ChargeRequest): Promise<Outcome<{ paymentIntent: PaymentIntentView }>>;
  retrievePaymentIntent(paymentIntentId: string): Promise<Outcome<{ paymentIntent: PaymentIntentView }>>;
  /**
   * The PaymentIntent of an earlier top-up under this client id and payload
   * idempotencyKey, if Stripe knows one (PROC-12). A search answer whose
   * metadata does not match the query is not that top-up: it is left out and
   * described in `ignored`, for the server log.
   */
  findTopUp(clientId: string, idempotencyKey: string): Promise<Outcome<{ paymentIntent: PaymentIntentView | null; ignored?: string }>>;
  /** Succeeded PaymentIntents created at or after `since` that carry stripe402 metadata (for reconcile). */
  succeededPaymentIntents(since: Date): AsyncIterable<PaymentIntentView>;
  /** Verifies a webhook signature and parses the event; throws on a bad signature. */
  verifyWebhook(payload: string, signatureHeader: string, secret: string): Stripe.Event;
}

export interface StripeClientOptions {
  /** Base URL of a Stripe-compatible API (the emulator, stripe-mock); real Stripe when absent. */
  apiUrl?: string;
  /** Per-request timeout; the SDK retries network failures with the same idempotency key. */
  timeoutMs?: number;
  maxNetworkRetries?: number;
}

/** An SDK client, pointed at `apiUrl` when given. */
export function createStripeClient(secretKey: string, options: StripeClientOptions = {}): Stripe {
  const config: ConstructorParameters<typeof Stripe>[1] = {
    maxNetworkRetries: options.maxNetworkRetries ?? 2,
    timeout: options.timeoutMs ?? 30_000,
    telemetry: false,
    appInfo: { name: 'stripe402-reference-server' },
  };
  if (options.apiUrl) {
    const url = new URL(options.apiUrl);
    config.host = url.hostname;
    config.protocol = url.protocol === 'http:' ? 'http' : 'https';
    config.port = url.port || (url.protocol === 'http:' ? 80 : 443);
  }
  return new Stripe(secretKey, config);
}

/** The gateway over the official SDK. */
export class StripeSdkGateway implements StripeGateway {
  readonly deploymentId?: string;

  /** `deploymentId`: see `deploymentIdOf` (recovery.ts); without it, PaymentIntents name no deployment and no webhook can credit them. */
  constructor(
    readonly stripe: Stripe,
    options: { deploymentId?: string } = {},
  ) {
    if (options.deploymentId !== undefined) this.deploymentId = options.deploymentId;
  }

  async paymentMethod(paymentMethodId: string): Promise<Outcome<{ paymentMethod: PaymentMethodView }>> {
    try {
      const pm = await this.stripe.paymentMethods.retrieve(paymentMethodId);
      const customer = typeof pm.customer === 'string' ? pm.customer : (pm.customer?.id ?? null);
      return { ok: true, paymentMethod: { id: pm.id, fingerprint: pm.card?.fingerprint ?? null, customer } };
    } catch (error) {
      return failure(error);
    }
  }

  async findOrCreateCustomer(clientId: string): Promise<Outcome<{ customerId: string }>> {
    try {
      // Search is eventually consistent; the idempotent create below covers its lag.
      const found = await this.searchCustomer(clientId);
      if (found) return { ok: true, customerId: found };
    } catch (error) {
      return failure(error);
    }
    return this.createCustomer(clientId);
  }

  async createCustomer(clientId: string): Promise<Outcome<{ customerId: string }>> {
    try {
      const customer = await this.stripe.customers.create(
        { description: 'stripe402 client', metadata: { [METADATA_CLIENT_ID]: clientId } },
        { idempotencyKey: `stripe402-customer-${clientId}` },
      );
      return { ok: true, customerId: customer.id };
    } catch (error) {
      return failure(error);
    }
  }

  private async searchCustomer(clientId: string): Promise<string | null> {
    try {
      const result = await this.stripe.customers.search({ query: `metadata['${METADATA_CLIENT_ID}']:'${clientId}'`, limit: 1 });
      const found = result.data[0];
      // stripe-mock answers every search with its one fixture: only a Customer of this client id is this client's.
      return found && found.metadata?.[METADATA_CLIENT_ID] === clientId ? found.id : null;
    } catch (error) {
      // A backend without the search API (404) still gets one customer per client from the idempotent create.
      if (error instanceof Stripe.errors.StripeInvalidRequestError || (error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  async charge(request: ChargeRequest): Promise<Outcome<{ paymentIntent: PaymentIntentView }>> {
    const params: Stripe.PaymentIntentCreateParams = {
      amount: request.amountMinor,
      currency: request.currency,
      payment_method: request.paymentMethodId,
      customer: request.customerId,
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      metadata: {
        [METADATA_CLIENT_ID]: request.clientId,
        [METADATA_UNITS]: String(request.units),
        [METADATA_CURRENCY]: request.currency,
      },
    };
    if (request.description) params.description = request.description;
    if (request.savePaymentMethod) params.setup_future_usage = 'on_session';
    if (request.clientIdempotencyKey) params.metadata![METADATA_IDEMPOTENCY_KEY] = request.clientIdempotencyKey;
    if (this.deploymentId) params.metadata![METADATA_DEPLOYMENT] = this.deploymentId;
    if (request.returnUrl) params.return_url = request.returnUrl;
    try {
      const pi = await this.stripe.paymentIntents.create(params, { idempotencyKey: request.idempotencyKey });
      return { ok: true, paymentIntent: view(pi) };
    } catch (error) {
      return failure(error);
    }
  }

  async retrievePaymentIntent(paymentIntentId: string): Promise<Outcome<{ paymentIntent: PaymentIntentView }>> {
    try {
      return { ok: true, paymentIntent: view(await this.stripe.paymentIntents.retrieve(paymentIntentId)) };
    } catch (error) {
      return failure(error);
    }
  }

  async findTopUp(clientId: string, idempotencyKey: string): Promise<Outcome<{ paymentIntent: PaymentIntentView | null; ignored?: string }>> {
    try {
      const result = await this.stripe.paymentIntents.search({
        query: `metadata['${METADATA_CLIENT_ID}']:'${clientId}' AND metadata['${METADATA_IDEMPOTENCY_KEY}']:'${idempotencyKey}'`,
        limit: 1,
      });
      const found = result.data[0];
      if (!found) return { ok: true, paymentIntent: null };
      // A backend that answers every search with one fixture (stripe-mock) names a PaymentIntent the query did not ask for.
      const metadata = found.metadata ?? {};
      if (metadata[METADATA_CLIENT_ID] !== clientId || metadata[METADATA_IDEMPOTENCY_KEY] !== idempotencyKey) {
        const ignored =
          `the search for the top-up of this client id and idempotencyKey answered PaymentIntent ${found.id}, ` +
          `whose metadata ${METADATA_CLIENT_ID} is ${show(metadata[METADATA_CLIENT_ID])} and ${METADATA_IDEMPOTENCY_KEY} is ${show(metadata[METADATA_IDEMPOTENCY_KEY])}: ` +
          `not a match, so treated as no earlier top-up (a stateless mock such as stripe-mock answers every search with its fixture)`;
        return { ok: true, paymentIntent: null, ignored };
      }
      return { ok: true, paymentIntent: view(found) };
    } catch (error) {
      const failed = failure(error);
      // A backend without the search API (404, or a refused query) still has Stripe's own 24-hour idempotency window.
      if (failed.kind === 'not_found' || failed.kind === 'failed') return { ok: true, paymentIntent: null };
      return failed;
    }
  }

  async *succeededPaymentIntents(since: Date): AsyncIterable<PaymentIntentView> {
    // list by creation time rather than search: list is strongly consistent, search lags by up to a minute.
    const gte = Math.floor(since.getTime() / 1000);
    for await (const pi of this.stripe.paymentIntents.list({ created: { gte }, limit: 100 })) {
      if (pi.created < gte) continue;
      if (pi.status !== 'succeeded' || !pi.metadata?.[METADATA_CLIENT_ID]) continue;
      yield view(pi);
    }
  }

  verifyWebhook(payload: string, signatureHeader: string, secret: string): Stripe.Event {
    return this.stripe.webhooks.constructEvent(payload, signatureHeader, secret);
  }
}

/** The parts of an SDK PaymentIntent that stripe402 reads. */
export function view(pi: Stripe.PaymentIntent): PaymentIntentView {
  const result: PaymentIntentView = {
    id: pi.id,
    status: pi.status,
    amount: pi.amount,
    amountReceived: pi.amount_received ?? 0,
    currency: pi.currency,
    metadata: pi.metadata ?? {},
    created: pi.created,
    declined: pi.last_payment_error?.type === 'card_error',
  };
  const customer = typeof pi.customer === 'string' ? pi.customer : pi.customer?.id;
  if (customer) result.customer = customer;
  const url = pi.next_action?.redirect_to_url?.url;
  if (url) result.nextActionUrl = url;
  return result;
}

/** A metadata value for a log line: quoted, or `absent`. */
export function show(value: string | undefined): string {
  return value === undefined ? 'absent' : JSON.stringify(value);
}

/** Maps an SDK error to a typed failure; the SDK text stays in `detail`, for logs. */
export function failure(error: unknown): GatewayFailure {
  const errors = Stripe.errors;
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (error instanceof errors.StripeCardError) {
    const pi = error.payment_intent?.id;
    return { ok: false, kind: 'declined', detail, ...(pi ? { paymentIntentId: pi } : {}) };
  }
  // Unreachable, overloaded, or refusing this server's key: the server cannot use Stripe now (ERR-9), whatever the request.
  if (
    error instanceof errors.StripeConnectionError ||
    error instanceof errors.StripeAPIError ||
    error instanceof errors.StripeRateLimitError ||
    error instanceof errors.StripeAuthenticationError ||
    error instanceof errors.StripePermissionError
  ) {
    return { ok: false, kind: 'unavailable', detail };
  }
  if (error instanceof errors.StripeIdempotencyError) return { ok: false, kind: 'conflict', detail };
  if (error instanceof errors.StripeError) {
    if (error.code === 'resource_missing' || error.statusCode === 404) return { ok: false, kind: 'not_found', detail };
    if ((error.statusCode ?? 0) >= 500) return { ok: false, kind: 'unavailable', detail };
    return { ok: false, kind: 'failed', detail };
  }
  return { ok: false, kind: 'failed', detail };
}
