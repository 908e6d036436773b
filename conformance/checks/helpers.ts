/**
 * Assertions the checks share. Each turns one observable rule into an
 * Expected/Actual pair, so every failure reads the same way whichever check
 * found it.
 */
import type { RunContext, Route } from '../context.ts';
import { isClientId } from '@stripe402/core';
import { balanceOf, describe, errorCodeOf, isSuccess, type Exchange } from '../exchange.ts';
import { CheckFailure, Prerequisite, SkipCheck } from './types.ts';

/**
 * A 402 with the given error code, wherever the answer carries it (readAnswer:
 * payment-response, a v1 error body, or the challenge). Whether the
 * payment-response is there is judged by 3/payment-response-on-error alone.
 */
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

/**
 * Reports `creditsRemaining` as expected. A refusal that carries no
 * payment-response at all reports no balance (v1 sends none with
 * insufficient_credits): there is nothing to compare, and the missing header
 * is 3/payment-response-on-error's to judge. A served request, or a
 * payment-response that is there but undecodable, must report it.
 */
export function expectBalance(exchange: Exchange, expected: number, what: string): void {
  const actual = balanceOf(exchange);
  if (actual === undefined && !isSuccess(exchange.status) && exchange.paymentResponseRaw === undefined) return;
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
  const amount = route.accept.amount;
  let funded: { clientId: string; balance: number };
  let spendFirst = true;
  try {
    try {
      funded = await ctx.fund(card, amount * 2, route);
    } catch (error) {
      // A maxTopUp that cannot buy two requests: the balance the target last reported stands in for the first spend.
      if (!(error instanceof SkipCheck) || error instanceof Prerequisite) throw error;
      funded = await ctx.fund(card, amount, route);
      spendFirst = false;
    }
  } catch (error) {
    if (!(error instanceof Prerequisite)) throw error;
    // Without a funded client (a stateless backend such as stripe-mock), the error codes alone
    // still tell a strict server from a lax one: a repaired header would answer insufficient_credits.
    await body(ctx.randomClientId());
    return;
  }
  const clientId = funded.clientId;
  const start = spendFirst ? spentBalance(await ctx.spend(clientId, route), 'a spend from a funded client') : funded.balance;
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

/** One invalid request of a junk-input check and the codes a conforming target may refuse it with. */
export interface Variant {
  label: string;
  /** A raw payment value (or field lines); else `payload` is encoded. */
  payment?: string | string[];
  payload?: object;
  codes: string | readonly string[];
}

/**
 * Sends every variant twice, around a funded client (whose balance must not
 * move) and around an unfunded one (a random client id and, when the suite
 * has one, a card whose balance cannot pay, which must not be charged), and
 * reports every variant that was not refused with its code, not only the
 * first: a target that fails one variant must still be seen failing the
 * others (a 5xx on `null` behind a 200 on an array).
 */
export async function refusesEveryVariant(ctx: RunContext, build: (clientId: string, card: string) => Variant[]): Promise<void> {
  const failures: string[] = [];
  let total = 0;
  const sendAll = async (clientId: string, card: string, who: string) => {
    for (const variant of build(clientId, card)) {
      total++;
      const response = variant.payment !== undefined ? await ctx.send({ payment: variant.payment }) : await ctx.pay(variant.payload ?? {});
      const codes = typeof variant.codes === 'string' ? [variant.codes] : variant.codes;
      const code = errorCodeOf(response);
      if (response.status !== 402 || code === undefined || !codes.includes(code)) {
        failures.push(`${variant.label} (${who}): ${describe(response)}`);
      }
    }
  };
  let moved: CheckFailure | undefined;
  const probe = probeCard(ctx);
  try {
    await withBalanceUnchanged(ctx, probe, (clientId) => sendAll(clientId, probe, 'funded client'));
  } catch (error) {
    if (!(error instanceof CheckFailure)) throw error;
    moved = error;
  }
  const unfunded = await unfundedCard(ctx);
  const before = unfunded && ctx.backend ? (await ctx.backend.paymentIntentsFor(unfunded.clientId)).length : undefined;
  await sendAll(ctx.randomClientId(), unfunded?.card ?? probe, unfunded ? `unfunded client, card ${unfunded.card}` : 'unfunded client');
  if (unfunded) {
    if (before !== undefined) {
      const after = (await ctx.backend!.paymentIntentsFor(unfunded.clientId)).length;
      if (after !== before) failures.push(`${after - before} PaymentIntent(s) created for the unfunded card ${unfunded.card} by requests that were all invalid`);
    }
    const check = await ctx.spend(unfunded.clientId);
    const balance = balanceOf(check);
    if (isSuccess(check.status) || (balance !== undefined && balance !== unfunded.remainder)) {
      failures.push(`the unfunded client's balance moved from ${unfunded.remainder} units (${describe(check)})`);
    }
  }
  if (moved) failures.push(`${moved.expected}: ${moved.actual}`);
  if (failures.length > 0) {
    throw new CheckFailure(
      `every one of ${total} invalid requests refused with its error code (402), changing no balance and charging nothing`,
      `${failures.length} problem(s): ${failures.join("; ")}`,
    );
  }
}

/**
 * A card whose client's balance cannot pay one request, or undefined when the
 * suite cannot have one. Any card but the probe whose known balance is short
 * already will do; else the one with the least to spend down.
 */
async function unfundedCard(ctx: RunContext): Promise<{ card: string; clientId: string; remainder: number } | undefined> {
  const cards = ctx.options.cards.good.slice(1);
  if (cards.length === 0) return undefined;
  const amount = ctx.accept.amount;
  const known = cards.map((card) => {
    const clientId = ctx.cardClients.get(card);
    return { card, clientId, balance: clientId === undefined ? undefined : ctx.knownBalance(clientId) };
  });
  const ready = known.find((k) => k.clientId !== undefined && k.balance !== undefined && k.balance < amount);
  if (ready) return { card: ready.card, clientId: ready.clientId!, remainder: ready.balance! };
  const card = [...known].sort((a, b) => (a.balance ?? Infinity) - (b.balance ?? Infinity))[0]!.card;
  // A top-up below the minimum is refused at step 5, after step 4 named the card's client (PROC-4, PROC-5): a
  // target whose refusal reports that client and a short balance gives one without a charge and a spend-down.
  const step = stepUnits(ctx.accept.currency);
  if (ctx.accept.minTopUp - step >= 1) {
    const probe = await ctx.payWithCard(card, ctx.accept.minTopUp - step);
    const { clientId, creditsRemaining } = probe.answer;
    // Not recorded as the card's client: other checks take a known card for one the backend has charged.
    if (errorCodeOf(probe) === 'top_up_below_minimum' && isClientId(clientId) && creditsRemaining !== undefined && creditsRemaining < amount) {
      return { card, clientId, remainder: creditsRemaining };
    }
  }
  try {
    const { clientId, remainder } = await ctx.uncovered(card);
    return { card, clientId, remainder };
  } catch (error) {
    // Without one (a stateless backend, a spend-down another check reports as wrong) the random id remains.
    if (error instanceof SkipCheck || error instanceof CheckFailure) return undefined;
    throw error;
  }
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
