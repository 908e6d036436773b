// The emulator's in-memory state: every object it has created, keyed by id
// in creation order, plus the facts Stripe keeps but does not return (the
// card number behind a PaymentMethod, whether a PaymentMethod has been
// consumed, the card awaiting authentication on a PaymentIntent). Objects
// are stored in their Stripe API shape and serialised as they are.
import type Stripe from 'stripe';
import { DISPLAY_BRAND, magicPaymentMethodNumber, testCard, type TestCard } from './cards.ts';
import { cardFingerprint, newId, nowSeconds, randomBase62 } from './ids.ts';

export interface PaymentMethodRecord {
  object: Stripe.PaymentMethod;
  card: TestCard;
  /** A magic test id (`pm_card_visa`): exists without being created and may be used any number of times. */
  magic: boolean;
  /** Used by a successful payment while not attached to a Customer: Stripe refuses to use it again. */
  consumed: boolean;
}

export interface PaymentIntentRecord {
  object: Stripe.PaymentIntent;
  /** The PaymentMethod of the attempt awaiting authentication (status requires_action). */
  pendingPaymentMethod?: PaymentMethodRecord;
  /** How the last authentication ended, so a repeated visit to the page is answered consistently. */
  authentication?: 'completed' | 'failed';
}

export interface DeliveryAttempt {
  attempt: number;
  /** Milliseconds since the epoch when the attempt started. */
  at: number;
  url: string;
  status?: number;
  error?: string;
  durationMs: number;
  /** Set for deliveries triggered through the resend admin endpoint. */
  resend?: boolean;
}

export interface EventRecord {
  id: string;
  type: string;
  created: number;
  /** The JSON text POSTed to the webhook endpoint, exactly as signed. */
  payload: string;
  deliveries: DeliveryAttempt[];
}

/** How many events the emulator keeps (Stripe keeps 30 days); older ones are forgotten. */
export const MAX_EVENTS = 10_000;

export class Store {
  readonly paymentMethods = new Map<string, PaymentMethodRecord>();
  readonly magicPaymentMethods = new Map<string, PaymentMethodRecord>();
  readonly customers = new Map<string, Stripe.Customer>();
  readonly paymentIntents = new Map<string, PaymentIntentRecord>();
  readonly charges = new Map<string, Stripe.Charge>();
  readonly refunds = new Map<string, Stripe.Refund>();
  readonly events = new Map<string, EventRecord>();

  /** The creation time given to magic PaymentMethods, which "always existed". */
  readonly epoch = nowSeconds();

  // Creation order of every object, for list cursors (starting_after) that
  // must work even when the cursor object does not pass the list's filters.
  private readonly sequence = new Map<string, number>();
  private nextSequence = 0;

  /** The position of an object in creation order, if the emulator created it. */
  sequenceOf(id: string): number | undefined {
    return this.sequence.get(id);
  }

  private track(id: string): void {
    this.sequence.set(id, this.nextSequence++);
  }

  addPaymentMethod(record: PaymentMethodRecord): void {
    this.paymentMethods.set(record.object.id, record);
    this.track(record.object.id);
  }

  addCustomer(customer: Stripe.Customer): void {
    this.customers.set(customer.id, customer);
    this.track(customer.id);
  }

  addPaymentIntent(record: PaymentIntentRecord): void {
    this.paymentIntents.set(record.object.id, record);
    this.track(record.object.id);
  }

  addCharge(charge: Stripe.Charge): void {
    this.charges.set(charge.id, charge);
    this.track(charge.id);
  }

  addRefund(refund: Stripe.Refund): void {
    this.refunds.set(refund.id, refund);
    this.track(refund.id);
  }

  clear(): void {
    this.sequence.clear();
    this.paymentMethods.clear();
    this.magicPaymentMethods.clear();
    this.customers.clear();
    this.paymentIntents.clear();
    this.charges.clear();
    this.refunds.clear();
    this.events.clear();
  }

  /** A created PaymentMethod or a magic test id, or undefined. */
  paymentMethod(id: string): PaymentMethodRecord | undefined {
    const created = this.paymentMethods.get(id);
    if (created) return created;
    const number = magicPaymentMethodNumber(id);
    if (number === undefined) return undefined;
    let magic = this.magicPaymentMethods.get(id);
    if (!magic) {
      const card = testCard(number)!;
      const now = new Date();
      magic = {
        object: buildPaymentMethod({
          id,
          card,
          expMonth: now.getUTCMonth() + 1,
          expYear: now.getUTCFullYear() + 1,
          cvcProvided: false,
          created: this.epoch,
        }),
        card,
        magic: true,
        consumed: false,
      };
      this.magicPaymentMethods.set(id, magic);
    }
    return magic;
  }

  addEvent(record: EventRecord): void {
    this.events.set(record.id, record);
    this.track(record.id);
    if (this.events.size > MAX_EVENTS) {
      const oldest = this.events.keys().next().value;
      if (oldest !== undefined) {
        this.events.delete(oldest);
        this.sequence.delete(oldest);
      }
    }
  }

  /** Resolves an id found in an object to the object, for `expand[]`. */
  resolve(id: string): object | undefined {
    if (id.startsWith('pm_')) return this.paymentMethod(id)?.object;
    if (id.startsWith('cus_')) return this.customers.get(id);
    if (id.startsWith('pi_')) return this.paymentIntents.get(id)?.object;
    if (id.startsWith('ch_')) return this.charges.get(id);
    if (id.startsWith('re_')) return this.refunds.get(id);
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Object builders: Stripe's shapes, typed against the official SDK's types so
// a field the SDK expects cannot go missing unnoticed.

export interface BillingDetailsInput {
  email?: string | null;
  name?: string | null;
  phone?: string | null;
  address?: Partial<Record<'city' | 'country' | 'line1' | 'line2' | 'postal_code' | 'state', string | null>> | null;
}

export function buildBillingDetails(input: BillingDetailsInput | undefined): Stripe.PaymentMethod.BillingDetails {
  const address = input?.address ?? {};
  return {
    address: {
      city: address.city ?? null,
      country: address.country ?? null,
      line1: address.line1 ?? null,
      line2: address.line2 ?? null,
      postal_code: address.postal_code ?? null,
      state: address.state ?? null,
    },
    email: input?.email ?? null,
    name: input?.name ?? null,
    phone: input?.phone ?? null,
    tax_id: null,
  };
}

export interface PaymentMethodInput {
  id?: string;
  card: TestCard;
  expMonth: number;
  expYear: number;
  cvcProvided: boolean;
  billingDetails?: BillingDetailsInput;
  metadata?: Record<string, string>;
  customer?: string | null;
  created?: number;
}

export function buildPaymentMethod(input: PaymentMethodInput): Stripe.PaymentMethod {
  const { card } = input;
  return {
    id: input.id ?? newId('pm'),
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: buildBillingDetails(input.billingDetails),
    card: {
      brand: card.brand,
      checks: {
        address_line1_check: null,
        address_postal_code_check: null,
        cvc_check: input.cvcProvided ? 'unchecked' : null,
      },
      country: 'US',
      display_brand: DISPLAY_BRAND[card.brand],
      exp_month: input.expMonth,
      exp_year: input.expYear,
      fingerprint: cardFingerprint(card.number),
      funding: card.funding,
      generated_from: null,
      last4: card.number.slice(-4),
      networks: { available: [card.brand], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: input.created ?? nowSeconds(),
    customer: input.customer ?? null,
    customer_account: null,
    livemode: false,
    metadata: input.metadata ?? {},
    type: 'card',
  };
}

export interface CustomerInput {
  email?: string | null;
  name?: string | null;
  phone?: string | null;
  description?: string | null;
  metadata?: Record<string, string>;
  defaultPaymentMethod?: string | null;
}

export function buildCustomer(input: CustomerInput): Stripe.Customer {
  return {
    id: newId('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: nowSeconds(),
    currency: null,
    customer_account: null,
    default_source: null,
    delinquent: false,
    description: input.description ?? null,
    discount: null,
    email: input.email ?? null,
    invoice_prefix: randomBase62(8).toUpperCase(),
    invoice_settings: {
      custom_fields: null,
      default_payment_method: input.defaultPaymentMethod ?? null,
      footer: null,
      rendering_options: null,
    },
    livemode: false,
    metadata: input.metadata ?? {},
    name: input.name ?? null,
    next_invoice_sequence: 1,
    phone: input.phone ?? null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

export interface PaymentIntentInput {
  amount: number;
  currency: string;
  customer: string | null;
  paymentMethod: string | null;
  description: string | null;
  metadata: Record<string, string>;
  receiptEmail: string | null;
  setupFutureUsage: 'off_session' | 'on_session' | null;
  statementDescriptor: string | null;
  statementDescriptorSuffix: string | null;
  automaticPaymentMethods: Stripe.PaymentIntent.AutomaticPaymentMethods | null;
  requestThreeDSecure: 'any' | 'automatic' | 'challenge';
}

export function buildPaymentIntent(input: PaymentIntentInput): Stripe.PaymentIntent {
  const id = newId('pi');
  return {
    id,
    object: 'payment_intent',
    allowed_payment_method_types: null,
    amount: input.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: input.automaticPaymentMethods,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: 'automatic_async',
    client_secret: `${id}_secret_${randomBase62(25)}`,
    confirmation_method: 'automatic',
    created: nowSeconds(),
    currency: input.currency,
    customer: input.customer,
    customer_account: null,
    description: input.description,
    excluded_payment_method_types: null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    managed_payments: null,
    metadata: input.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: input.paymentMethod,
    payment_method_configuration_details: input.automaticPaymentMethods?.enabled
      ? { id: 'pmc_emulator_default', parent: null }
      : null,
    payment_method_options: {
      card: {
        installments: null,
        mandate_options: null,
        network: null,
        request_three_d_secure: input.requestThreeDSecure,
      },
    },
    payment_method_types: ['card'],
    payment_record: null,
    processing: null,
    receipt_email: input.receiptEmail,
    review: null,
    setup_future_usage: input.setupFutureUsage,
    shipping: null,
    source: null,
    statement_descriptor: input.statementDescriptor,
    statement_descriptor_suffix: input.statementDescriptorSuffix,
    status: input.paymentMethod ? 'requires_confirmation' : 'requires_payment_method',
    transfer_data: null,
    transfer_group: null,
  };
}

export interface ChargeOutcome {
  succeeded: boolean;
  failureCode?: string;
  failureMessage?: string;
  declineCode?: string;
  blocked?: boolean;
}

export function buildCharge(intent: Stripe.PaymentIntent, method: PaymentMethodRecord, outcome: ChargeOutcome): Stripe.Charge {
  const { succeeded } = outcome;
  const card = method.object.card!;
  const paymentMethodDetails = {
    type: 'card',
    card: {
      amount_authorized: succeeded ? intent.amount : null,
      brand: card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: card.checks?.cvc_check === 'unchecked' ? 'pass' : null },
      country: card.country,
      exp_month: card.exp_month,
      exp_year: card.exp_year,
      fingerprint: card.fingerprint ?? null,
      funding: card.funding,
      installments: null,
      last4: card.last4,
      mandate: null,
      network: card.brand,
      network_token: { used: false },
      three_d_secure: null,
      wallet: null,
    },
  } as unknown as Stripe.Charge.PaymentMethodDetails;
  let chargeOutcome: Stripe.Charge.Outcome;
  if (succeeded) {
    chargeOutcome = outcomeOf('approved_by_network', null, 'normal', 'Payment complete.', 'authorized');
  } else if (outcome.blocked) {
    chargeOutcome = outcomeOf('not_sent_to_network', 'highest_risk_level', 'highest', 'Stripe blocked this payment as too risky.', 'blocked');
  } else {
    chargeOutcome = outcomeOf(
      'declined_by_network',
      outcome.declineCode ?? null,
      'normal',
      'The bank did not return any further details with this decline.',
      'issuer_declined',
    );
  }
  return {
    id: newId('ch'),
    object: 'charge',
    amount: intent.amount,
    amount_captured: succeeded ? intent.amount : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: succeeded ? newId('txn') : null,
    billing_details: method.object.billing_details as Stripe.Charge.BillingDetails,
    calculated_statement_descriptor: intent.statement_descriptor ?? 'STRIPE402 EMULATOR',
    captured: succeeded,
    created: nowSeconds(),
    currency: intent.currency,
    customer: typeof intent.customer === 'string' ? intent.customer : (intent.customer?.id ?? null),
    description: intent.description,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: outcome.failureCode ?? null,
    failure_message: outcome.failureMessage ?? null,
    fraud_details: {},
    livemode: false,
    metadata: { ...intent.metadata },
    on_behalf_of: null,
    outcome: chargeOutcome,
    paid: succeeded,
    payment_intent: intent.id,
    payment_method: method.object.id,
    payment_method_details: paymentMethodDetails,
    receipt_email: intent.receipt_email,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: intent.statement_descriptor,
    statement_descriptor_suffix: intent.statement_descriptor_suffix,
    status: succeeded ? 'succeeded' : 'failed',
    transfer_data: null,
    transfer_group: null,
  };
}

function outcomeOf(
  networkStatus: string,
  reason: string | null,
  riskLevel: string,
  sellerMessage: string,
  type: string,
): Stripe.Charge.Outcome {
  return {
    advice_code: null,
    network_advice_code: null,
    network_decline_code: null,
    network_status: networkStatus,
    reason,
    risk_level: riskLevel,
    risk_score: riskLevel === 'highest' ? 85 : 20,
    seller_message: sellerMessage,
    type,
  } as Stripe.Charge.Outcome;
}

export function buildRefund(charge: Stripe.Charge, amount: number, reason: Stripe.Refund.Reason | null, metadata: Record<string, string>): Stripe.Refund {
  return {
    id: newId('re'),
    object: 'refund',
    amount,
    balance_transaction: newId('txn'),
    charge: charge.id,
    created: nowSeconds(),
    currency: charge.currency,
    customer: charge.customer,
    customer_account: null,
    destination_details: { card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' }, type: 'card' },
    metadata,
    payment_intent: charge.payment_intent,
    payment_method: charge.payment_method,
    reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: 'succeeded',
    transfer_reversal: null,
  } as Stripe.Refund;
}
