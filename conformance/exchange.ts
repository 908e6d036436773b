/**
 * One request and its response, with the stripe402 headers decoded by the
 * shared reference/core codec, and the one place that reads what the target
 * answered (readAnswer): the payment-response when there is one, else the
 * PaymentResponse body of a stripe402 v1 error (COMPAT-4), else the error of
 * the challenge. Every check and helper reads answers through it, so a rule
 * about one header (ENC-13, ERR-2) is judged by its own check and never
 * turns into a false failure of another. Decoding here is the client's view:
 * what a check compares against the spec, never what the server meant.
 */
import {
  decodeHeaderObject,
  isClientId,
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
  /** What the target answered, read by readAnswer. */
  answer: Answer;
}

/**
 * What a target's answer says, wherever it said it. `creditsRemaining` is
 * set only when the answer reported a balance: an error without
 * payment-response (as v1 sends insufficient_credits) reports none, and a v1
 * error body reports `clientId: ""` with a placeholder 0.
 */
export interface Answer {
  /** Where the answer was read: the payment-response header, a v1 PaymentResponse body, the challenge's error, or nothing. */
  source: 'payment-response' | 'v1-body' | 'challenge' | 'none';
  success?: boolean;
  errorCode?: string;
  /** The error message for humans. */
  message?: string;
  clientId?: string;
  creditsRemaining?: number;
  chargeId?: string;
  paymentIntentId?: string;
  nextActionUrl?: string;
}

/** Builds an Exchange, decoding whichever stripe402 headers came back. */
export function toExchange(request: RawRequest, response: RawResponse, payload?: unknown): Exchange {
  const exchange: Exchange = {
    request,
    payload,
    status: response.status,
    headers: response.headers,
    body: response.body,
    answer: { source: 'none' },
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
  exchange.answer = readAnswer(exchange);
  return exchange;
}

/**
 * Reads a target's answer in the order a client does (COMPAT-4): the
 * payment-response when it decodes; else, for a refusal without one, a body
 * that is a PaymentResponse with `success: false` (a v1 error 402); else the
 * `error` of the challenge. A payment-response that is present but does not
 * decode is not replaced by the body: 4/payment-responses-are-valid judges it.
 */
export function readAnswer(exchange: Omit<Exchange, 'answer'>): Answer {
  const header = exchange.paymentResponse;
  if (header) {
    return {
      source: 'payment-response',
      success: header.success,
      errorCode: header.errorCode,
      message: header.error,
      clientId: header.clientId,
      creditsRemaining: header.creditsRemaining,
      chargeId: header.chargeId,
      paymentIntentId: header.paymentIntentId,
      nextActionUrl: header.nextActionUrl,
    };
  }
  const challengeError = exchange.paymentRequired?.error;
  if (exchange.paymentResponseRaw === undefined && !isSuccess(exchange.status)) {
    const body = v1ErrorBody(exchange.body);
    if (body) {
      const answer: Answer = { source: 'v1-body', success: false };
      if (typeof body.errorCode === 'string') answer.errorCode = body.errorCode;
      else if (challengeError !== undefined) answer.errorCode = challengeError;
      if (typeof body.error === 'string') answer.message = body.error;
      if (typeof body.clientId === 'string') answer.clientId = body.clientId;
      // v1 reports clientId "" and creditsRemaining 0 on its error bodies: no balance of anyone.
      if (isClientId(body.clientId) && Number.isSafeInteger(body.creditsRemaining) && (body.creditsRemaining as number) >= 0) {
        answer.creditsRemaining = body.creditsRemaining as number;
      }
      if (typeof body.paymentIntentId === 'string') answer.paymentIntentId = body.paymentIntentId;
      if (typeof body.nextActionUrl === 'string') answer.nextActionUrl = body.nextActionUrl;
      return answer;
    }
  }
  if (challengeError !== undefined) return { source: 'challenge', success: false, errorCode: challengeError };
  return { source: 'none' };
}

/** A response body that is a v1 PaymentResponse of a refusal (`success: false`), or undefined. */
function v1ErrorBody(body: string): Record<string, unknown> | undefined {
  if (!body.trimStart().startsWith('{')) return undefined;
  try {
    const json: unknown = JSON.parse(body);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
    const object = json as Record<string, unknown>;
    return object.success === false ? object : undefined;
  } catch {
    return undefined;
  }
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

/** The error code a response carries, as readAnswer found it. */
export function errorCodeOf(exchange: Exchange): string | undefined {
  return exchange.answer.errorCode;
}

/** The balance a response reported, as readAnswer found it (undefined when it reported none). */
export function balanceOf(exchange: Exchange): number | undefined {
  return exchange.answer.creditsRemaining;
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
  if (exchange.answer.source === 'v1-body') {
    const a = exchange.answer;
    const fields = [`errorCode ${a.errorCode ?? '(none)'}`];
    if (a.message !== undefined) fields.push(`error ${JSON.stringify(a.message.slice(0, 80))}`);
    parts.push(`v1 error body {${fields.join(', ')}}`);
  }
  if (exchange.status >= 500 && exchange.answer.source === 'none' && exchange.body) {
    parts.push(`body ${JSON.stringify(exchange.body.slice(0, 100))}`);
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
