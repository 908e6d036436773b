/**
 * Assertions the checks share. Each turns one observable rule into an
 * Expected/Actual pair, so every failure reads the same way whichever check
 * found it.
 */
import type { RunContext, Route } from '../context.ts';
import { describe, errorCodeOf, isSuccess, type Exchange } from '../exchange.ts';
import { CheckFailure, Prerequisite } from './types.ts';

/** A 402 with the given error code in payment-response (or in payment-required when the response has none). */
export function expectError(exchange: Exchange, codes: string | readonly string[], what: string): void {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  const code = errorCodeOf(exchange);
  if (exchange.status !== 402 || !code || !allowed.includes(code)) {
    throw new CheckFailure(`HTTP 402 ${allowed.join(' or ')} for ${what}`, describe(exchange));
  }
}

/** A served request: 2xx and payment-response success true. */
export function expectServed(exchange: Exchange, what: string): NonNullable<Exchange['paymentResponse']> {
  const answer = exchange.paymentResponse;
  if (!isSuccess(exchange.status) || !answer || !answer.success) {
    throw new CheckFailure(`${what} to be served (2xx, payment-response success true)`, describe(exchange));
  }
  return answer;
}

/** Reports `creditsRemaining` as expected. */
export function expectBalance(exchange: Exchange, expected: number, what: string): void {
  const actual = exchange.paymentResponse?.creditsRemaining;
  if (actual !== expected) {
    throw new CheckFailure(`creditsRemaining ${expected} ${what}`, actual === undefined ? describe(exchange) : `creditsRemaining ${actual}`);
  }
}

/** Not a 2xx: the request was not served. */
export function expectNotServed(exchange: Exchange, what: string): void {
  if (isSuccess(exchange.status)) {
    throw new CheckFailure(`${what} not to be served without payment (402, 404, 405 or a redirect)`, describe(exchange));
  }
}

/**
 * Runs `body` between two spends of a funded client and fails unless the
 * second spend reports exactly one `amount` less than the first: whatever the
 * body sent did not change the balance.
 */
export async function withBalanceUnchanged(
  ctx: RunContext,
  card: string,
  body: (clientId: string) => Promise<void>,
  route: Route = ctx.route(),
): Promise<void> {
  let clientId: string;
  try {
    clientId = (await ctx.fund(card, route.accept.amount * 2, route)).clientId;
  } catch (error) {
    if (!(error instanceof Prerequisite)) throw error;
    // Without a funded client (a stateless backend such as stripe-mock), the error codes alone
    // still tell a strict server from a lax one: a repaired header would answer insufficient_credits.
    await body(ctx.randomClientId());
    return;
  }
  const before = await ctx.spend(clientId, route);
  const start = spentBalance(before, 'a spend from a funded client');
  await body(clientId);
  const after = await ctx.spend(clientId, route);
  const end = spentBalance(after, 'a spend from a funded client');
  if (end !== start - route.accept.amount) {
    throw new CheckFailure(
      `the balance unchanged by the rejected requests (creditsRemaining ${start - route.accept.amount} after the next spend)`,
      `creditsRemaining ${end}: the rejected requests changed the balance by ${end - (start - route.accept.amount)} units`,
    );
  }
}

function spentBalance(exchange: Exchange, what: string): number {
  const answer = exchange.paymentResponse;
  if (!isSuccess(exchange.status) || !answer) throw new Prerequisite(`${what} was not served (${describe(exchange)})`);
  return answer.creditsRemaining;
}

/** The probe card: the first good card. */
export function probeCard(ctx: RunContext): string {
  return ctx.options.cards.good[0]!;
}

/** The n-th good card, or a skip when fewer were given. */
export function goodCard(ctx: RunContext, index: number): string {
  const card = ctx.options.cards.good[index];
  if (!card) throw new Prerequisite(`needs ${index + 1} distinct cards (--card)`);
  return card;
}

/** The units whose charge is one step of the currency (UNIT-7), so a top-up of minTopUp plus this stays valid. */
export function stepUnits(currency: string): number {
  if (['bhd', 'jod', 'kwd', 'omr', 'tnd'].includes(currency)) return 100;
  if (currency === 'isk') return 10_000;
  return 1;
}

/** A short JSON rendering for messages. */
export function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 160 ? text.slice(0, 157) + '...' : text;
}
