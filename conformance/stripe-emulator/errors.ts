// Stripe-shaped API errors. Every failure the emulator reports travels as a
// StripeApiError so the HTTP layer can render Stripe's body
// `{error: {type, code, decline_code?, message, param?, ...}}` with Stripe's
// status, and the idempotency layer can tell whether the result is saved
// (Stripe saves results only once an endpoint started executing).

export type StripeErrorType =
  | 'api_error'
  | 'card_error'
  | 'idempotency_error'
  | 'invalid_request_error';

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  decline_code?: string;
  param?: string;
  doc_url?: string;
  charge?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
  request_log_url?: string;
}

export interface StripeApiErrorOptions {
  code?: string;
  param?: string;
  /** True when the failure happened while executing, so an idempotent replay returns it. */
  saved?: boolean;
  headers?: Record<string, string>;
}

export class StripeApiError extends Error {
  override readonly name = 'StripeApiError';
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly saved: boolean;
  readonly headers: Record<string, string>;

  constructor(status: number, body: StripeErrorBody, saved: boolean, headers: Record<string, string> = {}) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.saved = saved;
    this.headers = headers;
  }
}

function withCode(body: StripeErrorBody, code: string | undefined): StripeErrorBody {
  if (code !== undefined) {
    body.code = code;
    body.doc_url = `https://stripe.com/docs/error-codes/${code.replaceAll('_', '-')}`;
  }
  return body;
}

/** A 400 `invalid_request_error`; by default a validation failure (not saved for replay). */
export function invalidRequest(message: string, options: StripeApiErrorOptions & { status?: number } = {}): StripeApiError {
  const body: StripeErrorBody = { type: 'invalid_request_error', message };
  withCode(body, options.code);
  if (options.param !== undefined) body.param = options.param;
  return new StripeApiError(options.status ?? 400, body, options.saved ?? false, options.headers);
}

export function unknownParameter(param: string): StripeApiError {
  return invalidRequest(`Received unknown parameter: ${param}`, { code: 'parameter_unknown', param });
}

export function missingParameter(param: string): StripeApiError {
  return invalidRequest(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

/** `No such payment_intent: 'pi_x'`: 404 for an id in the path, 400 for an id in a parameter. */
export function resourceMissing(label: string, id: string, param: string, status: 400 | 404): StripeApiError {
  return invalidRequest(`No such ${label}: '${id}'`, { code: 'resource_missing', param, status, saved: true });
}

export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return invalidRequest(
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    { status: 404 },
  );
}

export function unexpectedState(message: string, param?: string): StripeApiError {
  return invalidRequest(message, { code: 'payment_intent_unexpected_state', saved: true, ...(param ? { param } : {}) });
}

export interface CardErrorDetails {
  code: string;
  message: string;
  declineCode?: string;
  param?: string;
  charge?: string;
  paymentIntent?: unknown;
  paymentMethod?: unknown;
}

/** A 402 `card_error` (the SDK raises StripeCardError); always saved for replay. */
export function cardError(details: CardErrorDetails): StripeApiError {
  const body: StripeErrorBody = { type: 'card_error', message: details.message };
  withCode(body, details.code);
  if (details.declineCode !== undefined) body.decline_code = details.declineCode;
  if (details.param !== undefined) body.param = details.param;
  if (details.charge !== undefined) body.charge = details.charge;
  if (details.paymentIntent !== undefined) body.payment_intent = details.paymentIntent;
  if (details.paymentMethod !== undefined) body.payment_method = details.paymentMethod;
  return new StripeApiError(402, body, true);
}

export function authenticationError(message: string): StripeApiError {
  return new StripeApiError(401, { type: 'invalid_request_error', message }, false, {
    'WWW-Authenticate': 'Basic realm="Stripe"',
  });
}

export function apiError(status: number, message: string): StripeApiError {
  return new StripeApiError(status, { type: 'api_error', message }, false);
}
