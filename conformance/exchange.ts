/**
 * One request and its response, with the stripe402 headers decoded by the
 * shared reference/core codec. Decoding here is the client's view: what a
 * check compares against the spec, never what the server meant.
 */
import {
  decodeHeaderObject,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  HEADER_PAYMENT_REQUIRED,
  HEADER_PAYMENT_RESPONSE,
  type PaymentRequiredResponse,
  type PaymentResponse,
} from '@stripe402/core';
import type { RawRequest, RawResponse } from './http.ts';

/** A completed request/response pair. */
export interface Exchange {
  request: RawRequest;
  /** The payload object the suite encoded into the payment header, when it built one. */
  payload?: unknown;
  status: number;
  headers: RawResponse['headers'];
  body: string;
  /** The raw `payment-required` value, when present. */
  paymentRequiredRaw?: string;
  paymentRequired?: PaymentRequiredResponse;
  paymentRequiredError?: string;
  /** The raw `payment-response` value, when present. */
  paymentResponseRaw?: string;
  paymentResponse?: PaymentResponse;
  paymentResponseError?: string;
  /** `clientId|currency` of the balance this answer reported, when the suite could tell. */
  balanceKey?: string;
}

/** Builds an Exchange, decoding whichever stripe402 headers came back. */
export function toExchange(request: RawRequest, response: RawResponse, payload?: unknown): Exchange {
  const exchange: Exchange = {
    request,
    payload,
    status: response.status,
    headers: response.headers,
    body: response.body,
  };
  const required = headerValue(response.headers, HEADER_PAYMENT_REQUIRED);
  if (required !== undefined) {
    exchange.paymentRequiredRaw = required;
    const decoded = decodePaymentRequiredHeader(required);
    if (decoded.ok) exchange.paymentRequired = decoded.value;
    else exchange.paymentRequiredError = decoded.error.detail;
  }
  const answered = headerValue(response.headers, HEADER_PAYMENT_RESPONSE);
  if (answered !== undefined) {
    exchange.paymentResponseRaw = answered;
    const decoded = decodePaymentResponseHeader(answered);
    if (decoded.ok) exchange.paymentResponse = decoded.value;
    else {
      // Keep a lenient view too, so a message can say what the server sent.
      const loose = decodeHeaderObject(answered);
      exchange.paymentResponseError = decoded.error.detail + (loose.ok ? ` in ${JSON.stringify(loose.value)}` : '');
    }
  }
  return exchange;
}

/** A response header as one string (node joins repeated unknown fields with ", "). */
export function headerValue(headers: RawResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Whether a status is 2xx. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** The error code a response carries, preferring payment-response over payment-required. */
export function errorCodeOf(exchange: Exchange): string | undefined {
  return exchange.paymentResponse?.errorCode ?? exchange.paymentRequired?.error;
}

/** A one-line description of a response for `Actual:` lines. */
export function describe(exchange: Exchange): string {
  const parts = [`HTTP ${exchange.status}`];
  if (exchange.paymentResponse) {
    const pr = exchange.paymentResponse;
    const fields = [`success ${pr.success}`];
    if (pr.errorCode) fields.push(`errorCode ${pr.errorCode}`);
    fields.push(`creditsRemaining ${pr.creditsRemaining}`);
    if (pr.chargeId) fields.push(`chargeId ${pr.chargeId}`);
    parts.push(`payment-response {${fields.join(', ')}}`);
  } else if (exchange.paymentResponseError) {
    parts.push(`undecodable payment-response (${exchange.paymentResponseError})`);
  } else if (exchange.request.headers?.payment !== undefined) {
    parts.push('no payment-response');
  }
  if (exchange.paymentRequired?.error && !exchange.paymentResponse?.errorCode) {
    parts.push(`payment-required error ${exchange.paymentRequired.error}`);
  } else if (exchange.paymentRequiredError) {
    parts.push(`undecodable payment-required (${exchange.paymentRequiredError})`);
  }
  return parts.join(', ');
}

/** describe() plus the request it answered, for checks that judge the whole run. */
export function describeWithRequest(exchange: Exchange): string {
  const payload = exchange.payload === undefined ? '' : ` with ${JSON.stringify(exchange.payload).slice(0, 120)}`;
  return `${describe(exchange)} (to ${exchange.request.method} ${exchange.request.path}${payload})`;
}

/**
 * The payment value(s) as the server's HTTP layer delivers them: a field
 * value never keeps leading or trailing SP/HTAB (RFC 9110 section 5.5), so
 * the suite judges what the server saw, not what it typed.
 */
export function delivered(sent: string | string[]): string | string[] {
  const trim = (line: string) => line.replace(/^[ \t]+|[ \t]+$/g, '');
  return Array.isArray(sent) ? sent.map(trim) : trim(sent);
}
