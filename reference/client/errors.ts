/**
 * The errors a paying fetch throws instead of spending money it should not.
 * One base class, `Stripe402ClientError`, with a closed `code`: either a wire
 * error code the server answered with (spec section 10), or one of the
 * client-side codes below (a budget refusal, a malformed challenge, a
 * missing payment method, too many attempts). Callers branch on `code` or on
 * the class; messages are for humans.
 */
import type { ErrorCode, PaymentRequiredResponse, PaymentRequirements, PaymentResponse } from '@stripe402/core';

/** Client-side error codes: things that went wrong before or instead of a server answer. */
export const CLIENT_ERROR_CODES = Object.freeze([
  'budget_exceeded',
  'payment_method_required',
  'invalid_challenge',
  'too_many_attempts',
  'network_error',
  'request_body_too_large',
  'card_tokenization_failed',
] as const);

/** A client-side error code. */
export type LocalErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** Every code a `Stripe402ClientError` can carry: a wire code or a client-side one. */
export type ClientErrorCode = ErrorCode | LocalErrorCode;

/** The base of every error the client throws on purpose. */
export class Stripe402ClientError extends Error {
  /** A wire error code (what the server said) or a client-side code. */
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Which budget rule refused a payment. */
export type BudgetRule =
  | 'origin_denied'
  | 'origin_not_allowed'
  | 'insecure_origin'
  | 'max_price_per_request'
  | 'max_top_up'
  | 'origin_hourly_cap'
  | 'origin_daily_cap'
  | 'origin_overall_cap'
  | 'total_hourly_cap'
  | 'total_daily_cap'
  | 'total_overall_cap'
  | 'approval_denied';

/** What a refused payment would have been. */
export interface BudgetRefusal {
  /** The rule that refused. */
  rule: BudgetRule;
  /** The origin of the request, e.g. `https://api.example.com`. */
  origin: string;
  /** The currency of the price or top-up. */
  currency?: string;
  /** What was asked, in the unit of `limit` (units for prices and top-ups, minor units for charge caps). */
  requested?: number;
  /** The limit that would have been crossed, in the same unit as `requested`. */
  limit?: number;
  /** The unit of `requested` and `limit`. */
  measure?: 'units' | 'minor';
}

/**
 * The budget refused to pay: nothing was charged and no credit was spent.
 * `rule` names the rule that refused, `refusal` carries the numbers.
 */
export class BudgetExceededError extends Stripe402ClientError {
  /** The rule that refused. */
  readonly rule: BudgetRule;
  /** The details of the refusal. */
  readonly refusal: BudgetRefusal;
  constructor(refusal: BudgetRefusal, message: string) {
    super('budget_exceeded', message);
    this.rule = refusal.rule;
    this.refusal = refusal;
  }
}

/** The resource needs a top-up but the client was given neither a PaymentMethod id nor a card. */
export class PaymentMethodRequiredError extends Stripe402ClientError {
  /** The payment options the server offered. */
  readonly requirements: PaymentRequirements;
  constructor(requirements: PaymentRequirements, message: string) {
    super('payment_method_required', message);
    this.requirements = requirements;
  }
}

/** A 402 the client cannot act on: no decodable challenge, or nothing it can pay with. */
export class InvalidChallengeError extends Stripe402ClientError {
  /** The HTTP status of the response. */
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super('invalid_challenge', message, options);
    this.status = status;
  }
}

/** The client gave up after its bounded number of payment round trips. */
export class TooManyAttemptsError extends Stripe402ClientError {
  /** How many requests this call sent. */
  readonly attempts: number;
  constructor(attempts: number, message: string) {
    super('too_many_attempts', message);
    this.attempts = attempts;
  }
}

/**
 * A request that carried a top-up failed at the network level on every
 * retry: the charge may or may not have happened. Retrying the same call
 * reuses `idempotencyKey`, so a server that supports it charges at most once.
 */
export class PaymentNetworkError extends Stripe402ClientError {
  /** The idempotency key of the top-up whose outcome is unknown. */
  readonly idempotencyKey: string;
  /** How many times the request was sent. */
  readonly attempts: number;
  constructor(idempotencyKey: string, attempts: number, message: string, options?: { cause?: unknown }) {
    super('network_error', message, options);
    this.idempotencyKey = idempotencyKey;
    this.attempts = attempts;
  }
}

/** The request body is larger than the client is willing to buffer for a paid retry. */
export class RequestBodyTooLargeError extends Stripe402ClientError {
  /** The cap, in bytes. */
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super('request_body_too_large', `the request body is larger than ${maxBytes} bytes, the most the client buffers to re-send it with a payment`);
    this.maxBytes = maxBytes;
  }
}

/** Stripe did not turn the card details into a PaymentMethod. */
export class CardTokenizationError extends Stripe402ClientError {
  /** The HTTP status Stripe answered with, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super('card_tokenization_failed', message, options);
    this.status = status;
  }
}

/** What the server said when it refused a payment. */
export interface ServerRefusal {
  /** The HTTP status (402 for every payment error). */
  status: number;
  /** The decoded `payment-response`, or the v1 error body. */
  paymentResponse?: PaymentResponse | undefined;
  /** The decoded `payment-required` challenge, when the server sent one. */
  paymentRequired?: PaymentRequiredResponse | undefined;
  /** The server's message for humans, if any. */
  serverMessage?: string | undefined;
}

/**
 * The server refused the payment with a wire error code (card_declined,
 * payment_failed, invalid_payment, ...). `code` is the wire code.
 */
export class PaymentRefusedError extends Stripe402ClientError {
  /** The wire error code. */
  declare readonly code: ErrorCode;
  /** The HTTP status (402 for every payment error). */
  readonly status: number;
  /** The decoded `payment-response`, or the v1 error body. */
  readonly paymentResponse: PaymentResponse | undefined;
  /** The decoded challenge, when the server sent one. */
  readonly paymentRequired: PaymentRequiredResponse | undefined;
  /** The server's own message for humans, if any. */
  readonly serverMessage: string | undefined;
  constructor(code: ErrorCode, refusal: ServerRefusal, message: string) {
    super(code, message);
    this.status = refusal.status;
    this.paymentResponse = refusal.paymentResponse;
    this.paymentRequired = refusal.paymentRequired;
    this.serverMessage = refusal.serverMessage;
  }
}

/** What the card holder must do to complete a top-up held for authentication (spec section 9). */
export interface AuthenticationDetails {
  /** The PaymentIntent waiting for authentication. */
  paymentIntentId: string;
  /** Where the card holder completes authentication (3-D Secure), when the server gave one. */
  nextActionUrl: string | undefined;
  /** The URL of the resource being paid for. */
  url: string;
  /** The origin of the resource. */
  origin: string;
  /** The currency of the top-up. */
  currency: string;
  /** The top-up, in units. */
  topUpAmount: number;
}

/**
 * The card needs authentication (3-D Secure) before the top-up can
 * succeed. Send the card holder to `nextActionUrl`; when they are done,
 * `resume()` retries the original request with `paymentIntentId`, and the
 * server credits the authenticated charge once.
 */
export class AuthenticationRequiredError extends PaymentRefusedError {
  declare readonly code: 'authentication_required';
  /** The PaymentIntent waiting for authentication. */
  readonly paymentIntentId: string;
  /** Where the card holder completes authentication, when the server gave one. */
  readonly nextActionUrl: string | undefined;
  /** The full details, as passed to `onAuthenticationRequired`. */
  readonly details: AuthenticationDetails;
  /** Retries the original request once authentication is complete. */
  readonly resume: () => Promise<Response>;
  constructor(details: AuthenticationDetails, refusal: ServerRefusal, resume: () => Promise<Response>) {
    super(
      'authentication_required',
      refusal,
      `the card needs authentication before the top-up can succeed${details.nextActionUrl ? `: ${details.nextActionUrl}` : ''}; call resume() when it is done`,
    );
    this.paymentIntentId = details.paymentIntentId;
    this.nextActionUrl = details.nextActionUrl;
    this.details = details;
    this.resume = resume;
  }
}
