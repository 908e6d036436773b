/**
 * The client side of the scale suites and benchmarks: test PaymentMethods
 * from distinct card numbers (distinct fingerprints, so distinct client
 * ids), one paid request through the wire format, and a top-up that
 * recovers from faults the way the protocol says a client should: retry
 * with the same idempotencyKey after a network error, a timeout or a 503.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import { deriveClientId } from '@stripe402/core';
import type { PaymentResponse } from '@stripe402/core';
import { SUCCEEDING_CARD_NUMBERS } from './services.ts';

export interface Card {
  number: string;
  paymentMethodId: string;
  fingerprint: string;
  clientId: string;
}

/** One PaymentMethod per succeeding test card (at most 15), with the client id `serverSecret` derives from it. */
export async function createCards(stripe: Stripe, serverSecret: string, count: number): Promise<Card[]> {
  if (count > SUCCEEDING_CARD_NUMBERS.length) throw new RangeError(`the emulator has ${SUCCEEDING_CARD_NUMBERS.length} succeeding test cards`);
  const year = new Date().getUTCFullYear() + 2;
  const cards: Card[] = [];
  for (const number of SUCCEEDING_CARD_NUMBERS.slice(0, count)) {
    const pm = await stripe.paymentMethods.create({ type: 'card', card: { number, exp_month: 12, exp_year: year, cvc: '123' } });
    const fingerprint = pm.card!.fingerprint!;
    cards.push({ number, paymentMethodId: pm.id, fingerprint, clientId: await deriveClientId(serverSecret, fingerprint) });
  }
  if (new Set(cards.map((c) => c.clientId)).size !== cards.length) throw new Error('two test cards share a fingerprint');
  return cards;
}

export function newIdempotencyKey(): string {
  return `scale-${randomBytes(12).toString('hex')}`;
}

export interface Outcome {
  /** HTTP status, or 0 when the request got no answer (connection refused or reset, timeout). */
  status: number;
  payment?: PaymentResponse;
  networkError?: string;
}

/** One request with a `payment` header; never throws for HTTP or network failures. */
export async function paidRequest(baseUrl: string, path: string, payload: Record<string, unknown> | null, timeoutMs = 10_000): Promise<Outcome> {
  try {
    const response = await fetch(baseUrl + path, {
      headers: payload === null ? {} : { payment: encodeHeader(payload) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
    const outcome: Outcome = { status: response.status };
    const header = response.headers.get('payment-response');
    if (header !== null) {
      const decoded = decodePaymentResponseHeader(header);
      if (!decoded.ok) throw new Error(`the server sent an undecodable payment-response: ${decoded.error.detail}`);
      outcome.payment = decoded.value;
    }
    return outcome;
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('the server sent')) throw error;
    return { status: 0, networkError: error instanceof Error ? `${error.name}: ${(error as { cause?: Error }).cause?.message ?? error.message}` : String(error) };
  }
}

export interface TopUpOutcome {
  final: Outcome;
  attempts: number;
  /** The statuses of every attempt, 0 for no answer. */
  statuses: number[];
}

/**
 * A top-up as a careful client makes it: one idempotencyKey for the whole
 * operation, repeated after a missing answer or a 503 (LEDG-6, ERR-5), until
 * a definite answer or `maxAttempts`.
 */
export async function topUp(
  baseUrl: string,
  path: string,
  card: Card,
  topUpAmount: number,
  options: { idempotencyKey?: string; maxAttempts?: number; timeoutMs?: number; retryDelayMs?: number } = {},
): Promise<TopUpOutcome> {
  const idempotencyKey = options.idempotencyKey ?? newIdempotencyKey();
  const payload = { stripe402Version: 1, paymentMethodId: card.paymentMethodId, topUpAmount, idempotencyKey };
  const statuses: number[] = [];
  const maxAttempts = options.maxAttempts ?? 20;
  let final: Outcome = { status: 0 };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    final = await paidRequest(baseUrl, path, payload, options.timeoutMs ?? 15_000);
    statuses.push(final.status);
    if (final.status !== 0 && final.status !== 503) return { final, attempts: attempt, statuses };
    await new Promise((resolve) => setTimeout(resolve, (options.retryDelayMs ?? 100) * Math.min(attempt, 5)));
  }
  return { final, attempts: maxAttempts, statuses };
}
