// The payment state machine: confirming a PaymentIntent against a test card
// (succeed, decline, require authentication), completing or failing the
// authentication, cancelling, refunding, and the events each transition
// raises. HTTP, parameters and idempotency live elsewhere; this module
// mutates the Store and throws Stripe-shaped errors.
import Stripe from 'stripe';
import type { CardBehaviour } from './cards.ts';
import { cardError, invalidRequest, unexpectedState } from './errors.ts';
import { newId, nowSeconds } from './ids.ts';
import {
  buildCharge,
  buildRefund,
  type EventRecord,
  type PaymentIntentRecord,
  type PaymentMethodRecord,
  type Store,
} from './store.ts';

/** The API request that caused a change, recorded on the events it raises. */
export interface RequestInfo {
  requestId: string | null;
  idempotencyKey: string | null;
  /** Base URL the client used to reach the emulator, for links it hands out. */
  baseUrl: string;
}

export interface ConfirmOptions {
  offSession: boolean;
  errorOnRequiresAction: boolean;
  returnUrl: string | null;
}

const CONFIRMABLE = new Set(['requires_payment_method', 'requires_confirmation', 'requires_action']);
const CANCELABLE = new Set(['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing']);

const AUTHENTICATION_FAILURE_MESSAGE =
  'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.';

export type EventListener = (record: EventRecord) => void;

export class PaymentEngine {
  constructor(
    private readonly store: Store,
    private readonly onEvent: EventListener,
    private readonly pendingWebhooks: () => number,
  ) {}

  /**
   * Checks that a PaymentMethod may be used for a payment by `customer`, as
   * Stripe does: a PaymentMethod attached to a Customer only with that
   * Customer, and a PaymentMethod already used by a successful payment
   * without a Customer never again.
   */
  checkUsable(method: PaymentMethodRecord, customer: string | null): void {
    if (method.magic) return;
    const owner = method.object.customer as string | null;
    if (owner !== null && customer === null) {
      throw invalidRequest(
        `The provided PaymentMethod ${method.object.id} is attached to a Customer. Pass that Customer (${owner}) in the \`customer\` parameter to use it.`,
        { param: 'payment_method', saved: true },
      );
    }
    if (owner !== null && owner !== customer) {
      throw invalidRequest(
        `The customer does not have a payment method with the ID ${method.object.id}. The payment method must be attached to the customer.`,
        { param: 'payment_method', saved: true },
      );
    }
    if (method.consumed) {
      throw invalidRequest(
        'The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.',
        { param: 'payment_method', saved: true },
      );
    }
  }

  /** Checks that a PaymentIntent may be confirmed now, before anything changes. */
  checkConfirmable(intent: Stripe.PaymentIntent, returnUrl: string | null): void {
    if (!CONFIRMABLE.has(intent.status)) {
      throw unexpectedState(
        `You cannot confirm this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.`,
      );
    }
    const apm = intent.automatic_payment_methods;
    // Only cards are allowed here (the emulator accepts no other type), and cards never redirect.
    const onlyCards = (intent.allowed_payment_method_types?.length ?? 0) > 0;
    if (apm?.enabled && apm.allow_redirects !== 'never' && returnUrl === null && !onlyCards) {
      throw invalidRequest(
        'This PaymentIntent is configured to accept payment methods enabled in your Dashboard, some of which may require a full page redirect to succeed. If you do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents. If you do want to accept redirect-based payment methods, set `return_url` when confirming a PaymentIntent.',
        { param: 'return_url' },
      );
    }
  }

  /**
   * Attempts the payment. Returns the PaymentIntent when it succeeded or
   * needs authentication; throws a 402 card error (carrying the
   * PaymentIntent) when the card is declined.
   */
  confirm(record: PaymentIntentRecord, method: PaymentMethodRecord, options: ConfirmOptions, request: RequestInfo): Stripe.PaymentIntent {
    const intent = record.object;
    intent.payment_method = method.object.id;
    intent.last_payment_error = null;
    intent.next_action = null;
    const behaviour = this.behaviourFor(intent, method.card.behaviour);
    if (behaviour.kind === 'decline') {
      this.decline(record, method, behaviour, request);
    }
    if (behaviour.kind === 'authenticate') {
      if (options.offSession || options.errorOnRequiresAction) {
        this.decline(
          record,
          method,
          {
            kind: 'decline',
            code: 'authentication_required',
            declineCode: 'authentication_required',
            message: 'Your card was declined. This transaction requires authentication.',
            failsOnAttach: false,
          },
          request,
        );
      }
      intent.status = 'requires_action';
      intent.next_action = {
        type: 'redirect_to_url',
        redirect_to_url: {
          url: `${request.baseUrl}/_emulator/authenticate/${intent.id}`,
          return_url: options.returnUrl,
        },
      };
      record.pendingPaymentMethod = method;
      delete record.authentication;
      this.emit('payment_intent.requires_action', intent, request);
      return intent;
    }
    this.succeed(record, method, request);
    return intent;
  }

  private behaviourFor(intent: Stripe.PaymentIntent, cardBehaviour: CardBehaviour): CardBehaviour {
    const requested = intent.payment_method_options?.card?.request_three_d_secure;
    // Asking for 3-D Secure makes any otherwise successful test card authenticate.
    if (cardBehaviour.kind === 'succeed' && (requested === 'any' || requested === 'challenge')) {
      return { kind: 'authenticate', always: true };
    }
    return cardBehaviour;
  }

  private succeed(record: PaymentIntentRecord, method: PaymentMethodRecord, request: RequestInfo): void {
    const intent = record.object;
    const charge = buildCharge(intent, method, { succeeded: true });
    this.store.addCharge(charge);
    intent.status = 'succeeded';
    intent.amount_received = intent.amount;
    intent.latest_charge = charge.id;
    intent.last_payment_error = null;
    intent.next_action = null;
    intent.payment_method = method.object.id;
    delete record.pendingPaymentMethod;
    if (!method.magic && method.object.customer === null) {
      const customer = intent.customer as string | null;
      if (intent.setup_future_usage && customer !== null) {
        method.object.customer = customer;
      } else {
        method.consumed = true;
      }
    }
    this.emit('payment_intent.succeeded', intent, request);
  }

  private decline(
    record: PaymentIntentRecord,
    method: PaymentMethodRecord,
    behaviour: Extract<CardBehaviour, { kind: 'decline' }>,
    request: RequestInfo,
  ): never {
    const intent = record.object;
    const charge = buildCharge(intent, method, {
      succeeded: false,
      failureCode: behaviour.code,
      failureMessage: behaviour.message,
      declineCode: behaviour.declineCode,
      ...(behaviour.blocked ? { blocked: true } : {}),
    });
    this.store.addCharge(charge);
    const lastPaymentError: Stripe.PaymentIntent.LastPaymentError = {
      charge: charge.id,
      code: behaviour.code as Stripe.PaymentIntent.LastPaymentError.Code,
      decline_code: behaviour.declineCode,
      doc_url: `https://stripe.com/docs/error-codes/${behaviour.code.replaceAll('_', '-')}`,
      message: behaviour.message,
      payment_method: method.object,
      type: 'card_error',
    };
    intent.status = 'requires_payment_method';
    intent.last_payment_error = lastPaymentError;
    intent.latest_charge = charge.id;
    intent.payment_method = null;
    intent.next_action = null;
    delete record.pendingPaymentMethod;
    this.emit('payment_intent.payment_failed', intent, request);
    throw cardError({
      code: behaviour.code,
      declineCode: behaviour.declineCode,
      message: behaviour.message,
      charge: charge.id,
      paymentIntent: snapshot(intent),
      paymentMethod: method.object,
    });
  }

  /** Ends a pending authentication the way the card holder chose. */
  authenticate(record: PaymentIntentRecord, action: 'complete' | 'fail', request: RequestInfo): Stripe.PaymentIntent {
    const intent = record.object;
    const method = record.pendingPaymentMethod;
    if (intent.status !== 'requires_action' || !method) {
      throw invalidRequest(`PaymentIntent ${intent.id} is not awaiting authentication (status ${intent.status}).`, { status: 409 });
    }
    if (action === 'complete') {
      this.succeed(record, method, request);
      record.authentication = 'completed';
      return intent;
    }
    intent.status = 'requires_payment_method';
    intent.next_action = null;
    intent.payment_method = null;
    intent.last_payment_error = {
      code: 'payment_intent_authentication_failure',
      doc_url: 'https://stripe.com/docs/error-codes/payment-intent-authentication-failure',
      message: AUTHENTICATION_FAILURE_MESSAGE,
      payment_method: method.object,
      type: 'invalid_request_error',
    };
    delete record.pendingPaymentMethod;
    record.authentication = 'failed';
    this.emit('payment_intent.payment_failed', intent, request);
    return intent;
  }

  cancel(record: PaymentIntentRecord, reason: Stripe.PaymentIntent.CancellationReason | null, request: RequestInfo): Stripe.PaymentIntent {
    const intent = record.object;
    if (!CANCELABLE.has(intent.status)) {
      throw unexpectedState(
        `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.`,
      );
    }
    intent.status = 'canceled';
    intent.canceled_at = nowSeconds();
    intent.cancellation_reason = reason;
    intent.next_action = null;
    delete record.pendingPaymentMethod;
    this.emit('payment_intent.canceled', intent, request);
    return intent;
  }

  refund(
    charge: Stripe.Charge,
    amount: number | undefined,
    reason: Stripe.Refund.Reason | null,
    metadata: Record<string, string>,
    request: RequestInfo,
  ): Stripe.Refund {
    if (charge.status !== 'succeeded') {
      throw invalidRequest(`Charge ${charge.id} has not succeeded, so it cannot be refunded.`, { param: 'charge', saved: true });
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { code: 'charge_already_refunded', saved: true });
    }
    const refundAmount = amount ?? remaining;
    if (refundAmount > remaining) {
      throw invalidRequest(
        `Refund amount (${refundAmount} ${charge.currency}) is greater than unrefunded amount on charge (${remaining} ${charge.currency})`,
        { param: 'amount', saved: true },
      );
    }
    const refund = buildRefund(charge, refundAmount, reason, metadata);
    this.store.addRefund(refund);
    charge.amount_refunded += refundAmount;
    charge.refunded = charge.amount_refunded === charge.amount;
    this.emit('charge.refunded', charge, request);
    return refund;
  }

  // The JSON of the object the last event carried. A handler that returns that
  // same object, unchanged, answers with this text instead of serialising the
  // object a second time (the hot path of a confirmed PaymentIntent).
  private lastSerialized: { object: object; json: string } | undefined;

  /** Forgets the cached serialisation; called before every request. */
  beginRequest(): void {
    this.lastSerialized = undefined;
  }

  /** The JSON of `object` if the last event of this request serialised it. */
  serializedFor(object: unknown): string | undefined {
    return this.lastSerialized !== undefined && this.lastSerialized.object === object ? this.lastSerialized.json : undefined;
  }

  private emit(type: string, object: object, request: RequestInfo): void {
    const id = newId('evt');
    const created = nowSeconds();
    // Serialised now: the event carries the object as it was at this moment.
    const json = JSON.stringify(object);
    this.lastSerialized = { object, json };
    const payload =
      `{"id":"${id}","object":"event","api_version":${JSON.stringify(Stripe.API_VERSION)},"created":${created},` +
      `"data":{"object":${json}},"livemode":false,"pending_webhooks":${this.pendingWebhooks()},` +
      `"request":{"id":${JSON.stringify(request.requestId)},"idempotency_key":${JSON.stringify(request.idempotencyKey)}},` +
      `"type":${JSON.stringify(type)}}`;
    const record: EventRecord = { id, type, created, payload, deliveries: [] };
    this.store.addEvent(record);
    this.onEvent(record);
  }
}

/** A deep copy of an object as it is now, for error bodies that must not change later. */
export function snapshot<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
