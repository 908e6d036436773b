/**
 * Model-based property: random sequences of protocol commands (unpaid
 * requests, card top-ups, spends with known, unknown and exhausted client
 * ids, malformed headers, concurrent bursts) run against the target while a
 * model tracks each card's balance. The model starts empty in every run and
 * learns a balance from the first answer it sees for a card
 * (creditsRemaining), so the property holds against a server that already
 * has state, and on repeated runs.
 */
import fc from 'fast-check';
import { isClientId } from '@stripe402/core';
import { expectBalance, expectError, expectServed } from '../checks/helpers.ts';
import { SkipCheck, expect, type CheckDefinition } from '../checks/types.ts';
import type { RunContext } from '../context.ts';
import { describe, isSuccess } from '../exchange.ts';
import { builtInInputs, stillInvalidOverHttp } from './invalid-input.ts';
import { MAX_SHRINKS, checkProperty } from './run.ts';

/** What the model knows of one card: its client id and balance, once learned. */
interface Known {
  clientId: string;
  balance: number;
}

interface Model {
  cards: Map<number, Known>;
}

type Command = fc.AsyncCommand<Model, RunContext>;

/** The most spends one "exhaust the balance" command may send. */
const MAX_EXHAUST = 2_000;

function cardName(ctx: RunContext, index: number): string {
  return ctx.options.cards.good[index]!;
}

class UnpaidRequest implements Command {
  check = () => true;
  async run(_model: Model, ctx: RunContext) {
    const response = await ctx.send();
    expect(response.status === 402 && response.paymentRequired && response.paymentRequired.error === undefined, 'the challenge (402, no error)', describe(response));
  }
  toString = () => 'UnpaidRequest';
}

class TopUpWithCard implements Command {
  constructor(readonly card: number) {}
  check = () => true;
  async run(model: Model, ctx: RunContext) {
    const { amount, minTopUp } = ctx.accept;
    let known = model.cards.get(this.card);
    const response = await ctx.payWithCard(cardName(ctx, this.card), minTopUp);
    const answer = expectServed(response, `a payment with ${cardName(ctx, this.card)}`);
    expect(isClientId(answer.clientId), 'a client id', describe(response));
    // Cards with one fingerprint are one client with one balance (stripe-mock gives every card the same): share what is known of it.
    known ??= [...model.cards.values()].find((k) => k.clientId === answer.clientId);
    if (known) {
      expect(answer.clientId === known.clientId, `the card's client id ${known.clientId}`, answer.clientId);
      if (known.balance >= amount) {
        expect(answer.chargeId === undefined, `no charge: the balance ${known.balance} covers the request`, `chargeId ${answer.chargeId}`);
        expectBalance(response, known.balance - amount, `(${known.balance} - ${amount})`);
      } else {
        expect(answer.chargeId !== undefined, `a charge: the balance ${known.balance} is short`, describe(response));
        expectBalance(response, known.balance + minTopUp - amount, `(${known.balance} + ${minTopUp} - ${amount})`);
      }
    } else if (answer.chargeId !== undefined) {
      // A card is charged only when its balance cannot pay (PROC-4), so before the top-up it held 0 to amount - 1 units:
      // the first answer already pins the balance to one window, and a report off by a spend falls outside it.
      const low = minTopUp - amount;
      const high = minTopUp - 1;
      expect(
        answer.creditsRemaining >= low && answer.creditsRemaining <= high,
        `a balance of ${low} to ${high} after a charged top-up (a balance below ${amount}, + ${minTopUp} credited, - ${amount} spent)`,
        `creditsRemaining ${answer.creditsRemaining}`,
      );
    }
    const entry = known ?? { clientId: answer.clientId, balance: 0 };
    entry.balance = answer.creditsRemaining;
    model.cards.set(this.card, entry);
  }
  toString = () => `TopUpWithCard(${this.card})`;
}

class SpendWithClientId implements Command {
  constructor(readonly card: number) {}
  check = (model: Readonly<Model>) => model.cards.has(this.card);
  async run(model: Model, ctx: RunContext) {
    const known = model.cards.get(this.card)!;
    const amount = ctx.accept.amount;
    const response = await ctx.spend(known.clientId);
    if (known.balance >= amount) {
      const answer = expectServed(response, `a spend from a balance of ${known.balance}`);
      expect(answer.chargeId === undefined, 'no chargeId on a spend', `chargeId ${answer.chargeId}`);
      expectBalance(response, known.balance - amount, `(${known.balance} - ${amount})`);
      known.balance -= amount;
    } else {
      expectError(response, 'insufficient_credits', `a spend from a balance of ${known.balance}`);
      expectBalance(response, known.balance, 'unchanged');
    }
  }
  toString = () => `SpendWithClientId(${this.card})`;
}

class SpendWithUnknownId implements Command {
  constructor(readonly clientId: string) {}
  check = () => true;
  async run(_model: Model, ctx: RunContext) {
    const response = await ctx.spend(this.clientId);
    expectError(response, 'insufficient_credits', 'an unknown client id');
    expectBalance(response, 0, 'for an unknown client id');
  }
  toString = () => `SpendWithUnknownId(${this.clientId.slice(0, 8)}…)`;
}

class SpendWithStaleId implements Command {
  constructor(readonly card: number) {}
  check = (model: Readonly<Model>) => model.cards.has(this.card);
  async run(model: Model, ctx: RunContext) {
    const known = model.cards.get(this.card)!;
    const amount = ctx.accept.amount;
    if (Math.floor(known.balance / amount) > MAX_EXHAUST) throw new SkipCheck(`the balance of card ${this.card} is too large to exhaust`);
    // Exhaust the balance (every spend must be served; bulk spends may go through a dearer route in the same currency)...
    known.balance = await ctx.spendDown(known.clientId, 0);
    expect(known.balance >= 0 && known.balance < amount, `a balance below ${amount} once spent down`, `${known.balance}`);
    // ...then the now stale id is refused, with the remainder.
    const stale = await ctx.spend(known.clientId);
    expectError(stale, 'insufficient_credits', 'a spend after the balance was exhausted');
    expectBalance(stale, known.balance, 'the remainder');
  }
  toString = () => `SpendWithStaleId(${this.card})`;
}

/**
 * An invalid header built around a card's client id (a random one before the
 * model knows the card). Whether it is refused with the right code is the
 * business of 10/invalid-input-never-served and the section 3 and 4 checks;
 * here it only must not move a balance other than the answer says: a lax
 * target that served it spent from the client, and the model learns that
 * from the answer instead of stopping, so the run goes on to judge balances.
 */
class MalformedHeader implements Command {
  constructor(
    readonly card: number,
    readonly pick: number,
  ) {}
  check = () => true;
  async run(model: Model, ctx: RunContext) {
    const known = model.cards.get(this.card);
    const clientId = known?.clientId ?? ctx.randomClientId();
    const inputs = builtInInputs(cardName(ctx, this.card), clientId, ctx.accept.minTopUp).filter(stillInvalidOverHttp);
    const input = inputs[this.pick % inputs.length]!;
    const response = await ctx.send({ payment: input.value });
    const answer = response.answer;
    if (!known || answer.clientId !== known.clientId || answer.creditsRemaining === undefined) return;
    if (answer.chargeId !== undefined) {
      // A lax target charged the card for it: the model takes the balance the answer reports.
    } else if (isSuccess(response.status)) {
      // Served although invalid: it must have spent exactly one amount, as any served request does (PROC-9).
      expectBalance(response, known.balance - ctx.accept.amount, `after ${input.source} was served (${known.balance} - ${ctx.accept.amount})`);
    } else {
      expectBalance(response, known.balance, `unchanged by ${input.source}`);
    }
    known.balance = answer.creditsRemaining;
  }
  toString = () => `MalformedHeader(${this.card}, ${this.pick})`;
}

class ConcurrentBurst implements Command {
  constructor(
    readonly card: number,
    readonly size: number,
  ) {}
  check = (model: Readonly<Model>) => model.cards.has(this.card);
  async run(model: Model, ctx: RunContext) {
    const known = model.cards.get(this.card)!;
    const amount = ctx.accept.amount;
    const responses = await ctx.burst(this.size, () => ctx.spend(known.clientId), this.size);
    const served = responses.filter((r) => isSuccess(r.status));
    const expected = Math.min(this.size, Math.floor(known.balance / amount));
    expect(served.length === expected, `${expected} of ${this.size} concurrent spends served from a balance of ${known.balance}`, `${served.length}`);
    for (const r of responses) if (!isSuccess(r.status)) expectError(r, 'insufficient_credits', 'a concurrent spend beyond the balance');
    const balances = served.map((r) => r.paymentResponse?.creditsRemaining ?? -1);
    known.balance -= expected * amount;
    if (served.length > 0) {
      expect(new Set(balances).size === served.length && Math.min(...balances) === known.balance, `distinct balances ending at ${known.balance}`, balances.join(', '));
    }
  }
  toString = () => `ConcurrentBurst(${this.card}, ${this.size})`;
}

export const modelProperty: CheckDefinition = {
  id: '8/model-balances',
  title: 'property: random sequences of top-ups, spends, bursts and bad headers keep every balance as the model predicts',
  level: 'core',
  severity: 'must',
  requirement: 'PROC-9',
  property: true,
  async run(ctx) {
    // Where no card can pay (a backend on which no PaymentIntent succeeds) there is no balance to model: a prerequisite, not a balance error.
    await ctx.identify(ctx.options.cards.good[0]!);
    const cards = ctx.options.cards.good.length;
    const card = fc.nat({ max: cards - 1 });
    const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
    const commands = fc.commands(
      [
        fc.constant(new UnpaidRequest()),
        card.map((c) => new TopUpWithCard(c)),
        card.map((c) => new SpendWithClientId(c)),
        card.map((c) => new SpendWithClientId(c)),
        hex.map((id) => new SpendWithUnknownId(id)),
        card.map((c) => new SpendWithStaleId(c)),
        fc.tuple(card, fc.nat({ max: 1000 })).map(([c, pick]) => new MalformedHeader(c, pick)),
        fc.tuple(card, fc.integer({ min: 2, max: Math.max(2, ctx.options.concurrency) })).map(([c, k]) => new ConcurrentBurst(c, k)),
      ],
      { maxCommands: 10, ...(ctx.options.commands ? { replayPath: ctx.options.commands } : {}) },
    );
    const property = fc.asyncProperty(fc.limitShrink(commands, MAX_SHRINKS), async (sequence) => {
      await fc.asyncModelRun(() => ({ model: { cards: new Map() }, real: ctx }), sequence);
    });
    await checkProperty(ctx, property);
  },
};
