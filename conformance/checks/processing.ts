/**
 * Section 8, server processing: the challenge, top-ups and spends in the
 * order the spec fixes (spend before charge, validate the top-up only when a
 * charge is needed), serialized and idempotent charging, replays, and the
 * restore of credit when the handler fails.
 */
import { encodeHeader } from '@stripe402/core';
import { expectedMinor, type RunContext, type Route } from '../context.ts';
import { describe, describeWithRequest, headerValue, isSuccess } from '../exchange.ts';
import { modelProperty } from '../properties/model.ts';
import {
  expectBalance,
  expectError,
  expectServed,
  goodCard,
  probeCard,
  refusesEveryVariant,
  show,
  stepUnits,
} from './helpers.ts';
import { CheckFailure, expect, NotApplicable, SkipCheck, type CheckDefinition } from './types.ts';

/** The number of this run's PaymentIntents for a client (by metadata or reported chargeId), or undefined without a backend. */
async function chargesCount(ctx: RunContext, clientId: string): Promise<number | undefined> {
  return (await ctx.chargedFor(clientId))?.size;
}

/** Fails when the backend shows a different number of new PaymentIntents for the client. */
async function expectNewCharges(ctx: RunContext, clientId: string, before: number | undefined, expected: number, what: string): Promise<void> {
  if (before === undefined) return;
  const after = (await chargesCount(ctx, clientId))!;
  expect(after - before === expected, `${expected} new PaymentIntent(s) in the backend ${what}`, `${after - before}`);
}

/** A client of the second card whose balance cannot pay one request. */
function topUpCard(ctx: RunContext): string {
  return goodCard(ctx, 1);
}

export const processingChecks: CheckDefinition[] = [
  {
    id: '8/unpaid-request-gets-challenge',
    title: 'a request without payment gets the challenge: 402, no error member, no payment-response',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-1',
    async run(ctx) {
      const response = await ctx.send();
      expect(response.status === 402, 'HTTP 402', describe(response));
      expect(response.paymentRequired !== undefined, 'a decodable payment-required header', response.paymentRequiredError ?? 'none');
      expect(response.paymentRequired.error === undefined, 'no error member on the first challenge', `error ${response.paymentRequired.error}`);
      expect(headerValue(response.headers, 'payment-response') === undefined, 'no payment-response header', 'a payment-response header');
    },
  },
  {
    id: '8/top-up-charges-and-serves',
    title: 'a card whose balance is short is charged topUpAmount, credited, and served',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-8',
    async run(ctx) {
      const card = topUpCard(ctx);
      const { clientId, remainder } = await ctx.uncovered(card);
      const before = await chargesCount(ctx, clientId);
      const { minTopUp, amount } = ctx.accept;
      const response = await ctx.payWithCard(card, minTopUp, undefined, { idempotencyKey: ctx.idempotencyKey() });
      const answer = expectServed(response, 'a top-up');
      expect(answer.chargeId !== undefined && /^pi_/.test(answer.chargeId), 'a chargeId naming the PaymentIntent', describe(response));
      expect(answer.clientId === clientId, `client id ${clientId}`, answer.clientId);
      expectBalance(response, remainder + minTopUp - amount, `(${remainder} + ${minTopUp} credited - ${amount} spent)`);
      await expectNewCharges(ctx, clientId, before, 1, 'for one top-up');
    },
  },
  {
    id: '8/charge-amount-reported',
    title: 'a served request that charged reports chargeAmount, the amount of its PaymentIntent in the smallest unit',
    level: 'extensions',
    severity: 'should',
    requirement: 'PROC-17',
    late: true,
    async run(ctx) {
      const charged = ctx.observed.filter((e) => isSuccess(e.status) && e.paymentResponse?.chargeId !== undefined);
      if (charged.length === 0) throw new SkipCheck('the run saw no charge');
      for (const exchange of charged) {
        const answer = exchange.paymentResponse!;
        expect(answer.chargeAmount !== undefined, `chargeAmount next to chargeId ${answer.chargeId}`, `${show(answer)} on ${describeWithRequest(exchange)}`);
        const observed = ctx.charges.get(answer.chargeId!);
        const intent = ctx.backend ? await ctx.backend.find(answer.chargeId!) : undefined;
        // The backend's amount when there is one; else the charge the units prescribe (UNIT-2).
        const expected = intent?.amount ?? (observed ? expectedMinor(observed.units, observed.currency) : undefined);
        if (expected === undefined) continue;
        expect(answer.chargeAmount === expected, `chargeAmount ${expected} for ${answer.chargeId}`, `chargeAmount ${answer.chargeAmount}`);
      }
    },
  },
  {
    id: '8/spend-deducts-amount',
    title: 'a spend with a client id deducts exactly the amount and reports no chargeId',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-3',
    async run(ctx) {
      const amount = ctx.accept.amount;
      const { clientId, balance } = await ctx.fund(probeCard(ctx), amount * 3);
      let expected = balance;
      for (let i = 0; i < 2; i++) {
        const response = await ctx.spend(clientId);
        const answer = expectServed(response, 'a spend');
        expected -= amount;
        expectBalance(response, expected, `after spend ${i + 1}`);
        expect(answer.chargeId === undefined, 'no chargeId on a spend', `chargeId ${answer.chargeId}`);
        expect(answer.clientId === clientId, `client id ${clientId}`, answer.clientId);
      }
    },
  },
  {
    id: '8/client-id-spend-never-charges',
    title: 'a payload with a covering clientId and a paymentMethodId spends and never charges',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-3',
    async run(ctx) {
      const card = probeCard(ctx);
      const { clientId, balance } = await ctx.fund(card, ctx.accept.amount);
      const before = await chargesCount(ctx, clientId);
      const response = await ctx.pay({ stripe402Version: 1, clientId, paymentMethodId: card, topUpAmount: ctx.accept.minTopUp });
      const answer = expectServed(response, 'a spend carrying a card too');
      expect(answer.chargeId === undefined, 'no chargeId', `chargeId ${answer.chargeId}`);
      expectBalance(response, balance - ctx.accept.amount, 'after one spend');
      await expectNewCharges(ctx, clientId, before, 0, 'for a covered request');
    },
  },
  {
    id: '8/insufficient-credits',
    title: 'a client id whose balance cannot pay is insufficient_credits, with its balance unchanged',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-3',
    async run(ctx) {
      const { clientId, remainder } = await ctx.uncovered(topUpCard(ctx));
      const response = await ctx.spend(clientId);
      // Which headers carry the refusal is judged by 3/payment-response-on-error and 10/error-402-carries-both-headers.
      expectError(response, 'insufficient_credits', 'a spend from a short balance');
      expectBalance(response, remainder, 'the balance unchanged');
    },
  },
  {
    id: '8/invalid-payload-charges-nothing',
    title: 'an invalid payload with a card is refused before any charge or spend, for a funded and for an unfunded client',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-2',
    async run(ctx) {
      // The card a lax server would charge: the unfunded pass pays with a card whose balance is short, so a
      // fractional top-up that is charged (and maybe never credited) shows as a PaymentIntent and a wrong answer.
      await refusesEveryVariant(ctx, (_clientId, card) => {
        const min = ctx.accept.minTopUp;
        const payloads: Array<[string, object, string]> = [
          ['topUpAmount minTopUp + 0.5', { stripe402Version: 1, paymentMethodId: card, topUpAmount: min + 0.5 }, 'invalid_payment'],
          ['topUpAmount as a string', { stripe402Version: 1, paymentMethodId: card, topUpAmount: String(min) }, 'invalid_payment'],
          ['topUpAmount -minTopUp', { stripe402Version: 1, paymentMethodId: card, topUpAmount: -min }, 'invalid_payment'],
          ['topUpAmount 2^53', { stripe402Version: 1, paymentMethodId: card, topUpAmount: 2 ** 53 }, 'invalid_payment'],
          ['stripe402Version 2', { stripe402Version: 2, paymentMethodId: card, topUpAmount: min }, 'unsupported_version'],
          ['stripe402Version "1"', { stripe402Version: '1', paymentMethodId: card, topUpAmount: min }, 'invalid_payment'],
        ];
        return payloads.map(([label, payload, code]) => ({ label: `a payload with ${label}`, payload, codes: code }));
      });
    },
  },
  {
    id: '8/covered-card-does-not-charge',
    title: 'paying with a card whose balance covers the request spends it without a charge',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-4',
    async run(ctx) {
      const card = probeCard(ctx);
      const { clientId, balance } = await ctx.fund(card, ctx.accept.amount);
      const before = await chargesCount(ctx, clientId);
      const response = await ctx.payWithCard(card, undefined, undefined, { idempotencyKey: ctx.idempotencyKey() });
      const answer = expectServed(response, 'a payment with a covered card');
      expect(answer.chargeId === undefined, 'no chargeId', `chargeId ${answer.chargeId}`);
      expect(answer.clientId === clientId, `the card's client id ${clientId}`, answer.clientId);
      expectBalance(response, balance - ctx.accept.amount, 'after one spend');
      await expectNewCharges(ctx, clientId, before, 0, 'for a covered card');
    },
  },
  {
    id: '8/rejects-top-up-below-minimum',
    title: 'a needed top-up below minTopUp is top_up_below_minimum, without a charge',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-5',
    async run(ctx) {
      const { minTopUp, amount } = ctx.accept;
      const card = topUpCard(ctx);
      const { clientId, remainder } = await ctx.uncovered(card);
      const before = await chargesCount(ctx, clientId);
      // One charge step below (UNIT-7), so that only the minimum is wrong with the amount.
      const step = stepUnits(ctx.accept.currency);
      if (minTopUp - step < 1) throw new NotApplicable('no valid top-up lies below minTopUp');
      const amounts = [...new Set([minTopUp - step, amount - step >= 1 ? amount - step : minTopUp - step])];
      for (const topUp of amounts) {
        const response = await ctx.payWithCard(card, topUp);
        expectError(response, 'top_up_below_minimum', `a top-up of ${topUp} units (minTopUp ${minTopUp})`);
        expect(response.answer.chargeId === undefined, 'no chargeId', describe(response));
      }
      expectBalance(await ctx.spend(clientId), remainder, 'the balance unchanged');
      await expectNewCharges(ctx, clientId, before, 0, 'for refused top-ups');
    },
  },
  {
    id: '8/rejects-top-up-above-maximum',
    title: 'a needed top-up above maxTopUp is top_up_above_maximum, without a charge',
    level: 'core',
    severity: 'must',
    requirement: 'PROC-5',
    async run(ctx) {
      const { maxTopUp } = ctx.accept;
      if (maxTopUp === undefined) throw new NotApplicable('the route advertises no maxTopUp');
      const card = topUpCard(ctx);
      const { clientId, remainder } = await ctx.uncovered(card);
      const before = await chargesCount(ctx, clientId);
      const topUp = maxTopUp + stepUnits(ctx.accept.currency);
      const response = await ctx.payWithCard(card, topUp);
      expectError(response, 'top_up_above_maximum', `a top-up of ${topUp} units (maxTopUp ${maxTopUp})`);
      expectBalance(await ctx.spend(clientId), remainder, 'the balance unchanged');
      await expectNewCharges(ctx, clientId, before, 0, 'for a refused top-up');
    },
  },
  {
    id: '8/card-errors-are-card-declined',
    title: 'a charge the card issuer refuses (insufficient funds, expired card, incorrect CVC) is card_declined and credits nothing',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-15',
    async run(ctx) {
      // Stripe's test PaymentMethods for each card error of Table 8.3 (the emulator knows them too).
      const cards = ['pm_card_chargeDeclinedInsufficientFunds', 'pm_card_chargeDeclinedExpiredCard', 'pm_card_chargeDeclinedIncorrectCvc'];
      for (const card of cards) {
        const response = await ctx.payWithCard(card, undefined, undefined, { idempotencyKey: ctx.idempotencyKey() });
        expectError(response, 'card_declined', `a top-up with ${card}`);
        expect(response.answer.chargeId === undefined, 'no chargeId', describe(response));
        const clientId = response.answer.clientId;
        if (!clientId) continue;
        const spend = await ctx.spend(clientId);
        expectError(spend, 'insufficient_credits', `a spend from the client id of ${card}`);
        expectBalance(spend, 0, `for the client id of ${card}: nothing credited`);
      }
    },
  },
  {
    id: '8/concurrent-top-ups-charge-once',
    title: 'concurrent top-ups for one card produce one charge, and the others spend its credit',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-7',
    async run(ctx) {
      const card = topUpCard(ctx);
      const { minTopUp, amount } = ctx.accept;
      const { clientId, remainder } = await ctx.uncovered(card);
      const before = await chargesCount(ctx, clientId);
      const count = Math.max(2, Math.min(ctx.options.concurrency, Math.floor((remainder + minTopUp) / amount)));
      if (Math.floor((remainder + minTopUp) / amount) < 2) throw new SkipCheck('one top-up pays for one request only');
      const responses = await ctx.burst(count, () => ctx.payWithCard(card, minTopUp), count);
      for (const response of responses) expectServed(response, `each of ${count} concurrent top-ups`);
      const charges = new Set(responses.map((r) => r.paymentResponse?.chargeId).filter(Boolean));
      expect(charges.size === 1, `one chargeId among ${count} concurrent top-ups`, `${charges.size}: ${[...charges].join(', ')}`);
      const balances = responses.map((r) => r.paymentResponse!.creditsRemaining);
      expect(new Set(balances).size === count, 'a different balance reported to each request', balances.join(', '));
      const lowest = Math.min(...balances);
      expect(lowest === remainder + minTopUp - count * amount, `a final balance of ${remainder + minTopUp - count * amount}`, `${lowest}`);
      await expectNewCharges(ctx, clientId, before, 1, `for ${count} concurrent top-ups`);
    },
  },
  {
    id: '8/idempotency-key-charges-once',
    title: 'a top-up repeated with its idempotencyKey never charges again',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-12',
    async run(ctx) {
      const card = topUpCard(ctx);
      const { minTopUp } = ctx.accept;
      const { clientId } = await ctx.uncovered(card);
      const before = await chargesCount(ctx, clientId);
      const payload = { stripe402Version: 1, paymentMethodId: card, topUpAmount: minTopUp, idempotencyKey: ctx.idempotencyKey() };
      const first = await ctx.pay(payload);
      const answer = expectServed(first, 'a top-up with an idempotencyKey');
      expect(answer.chargeId !== undefined, 'a chargeId', describe(first));
      const remainder = await ctx.drain(clientId);
      const repeat = await ctx.pay(payload);
      expectError(repeat, 'insufficient_credits', 'the same top-up repeated after its credit was spent');
      expect(repeat.answer.chargeId === undefined, 'no chargeId', describe(repeat));
      expectBalance(repeat, remainder, 'the balance unchanged');
      // Step 5 (PROC-5) comes before the charge and its key: another topUpAmount that the bounds refuse is refused for that.
      const other = minTopUp + stepUnits(ctx.accept.currency);
      const changed = await ctx.pay({ ...payload, topUpAmount: other });
      if (other > ctx.maxTopUp()) expectError(changed, 'top_up_above_maximum', `the same idempotencyKey with a topUpAmount of ${other}, above maxTopUp ${ctx.maxTopUp()}`);
      else expectError(changed, 'invalid_payment', 'the same idempotencyKey with another topUpAmount');
      await expectNewCharges(ctx, clientId, before, 1, 'for one idempotencyKey');
    },
  },
  {
    id: '8/replayed-spend-header-spends-once-per-request',
    title: 'a replayed spend header spends the amount once per request, never more',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-11',
    async run(ctx) {
      const amount = ctx.accept.amount;
      const { clientId, balance } = await ctx.fund(probeCard(ctx), amount * 4);
      const header = encodeHeader({ stripe402Version: 1, clientId });
      let expected = balance;
      for (let i = 1; i <= 3; i++) {
        const response = await ctx.send({ payment: header });
        expectServed(response, `replay ${i} of one spend header`);
        expected -= amount;
        expectBalance(response, expected, `after replay ${i}`);
      }
    },
  },
  {
    id: '8/replayed-top-up-header-charges-once',
    title: 'a replayed top-up header is not charged again while its credit covers the request',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-11',
    async run(ctx) {
      const card = topUpCard(ctx);
      const { minTopUp, amount } = ctx.accept;
      if (minTopUp < 2 * amount) throw new SkipCheck('one top-up pays for one request only');
      await ctx.uncovered(card);
      const header = encodeHeader({ stripe402Version: 1, paymentMethodId: card, topUpAmount: minTopUp });
      const first = await ctx.send({ payment: header });
      const answer = expectServed(first, 'the top-up');
      expect(answer.chargeId !== undefined, 'a chargeId on the first request', describe(first));
      const second = await ctx.send({ payment: header });
      const again = expectServed(second, 'the replay');
      expect(again.chargeId === undefined, 'no chargeId on the replay', `chargeId ${again.chargeId}`);
      expectBalance(second, answer.creditsRemaining - amount, 'after the replay spent the new credit');
    },
  },
  {
    id: '8/handler-failure-restores-credit',
    title: 'when the handler answers 5xx the deducted amount is restored and reported',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-10',
    async run(ctx) {
      const failing = ctx.options.failingRoute;
      if (!failing) throw new SkipCheck('needs a paid route that answers 5xx (--failing-route)');
      const [method, path] = failing.includes(' ') ? failing.split(' ', 2) as [string, string] : ['GET', failing];
      const unpaid = await ctx.send({ method, path }, { method, path });
      const challenge = unpaid.paymentRequired;
      if (unpaid.status !== 402 || !challenge) throw new CheckFailure(`a challenge for ${method} ${path}`, describe(unpaid));
      const home = ctx.route();
      const { currency, amount } = home.accept;
      // The balance is one per currency (UNIT-5): the failing route must spend the one the paid route tops up.
      const accept = challenge.accepts.find((a) => a.currency === currency);
      if (!accept) throw new SkipCheck(`${method} ${path} is not sold in ${currency}, the currency of the paid route`);
      const route: Route = { method, path, challenge, accept };
      const inCurrency = accept === challenge.accepts[0] ? {} : { currency };
      // Funded through the paid route: every payment on the failing route answers 5xx, so none of them can top up or identify the card.
      const { clientId } = await ctx.fund(probeCard(ctx), 2 * amount + accept.amount);
      const start = expectServed(await ctx.spend(clientId), 'a spend on the paid route').creditsRemaining;
      const failed = await ctx.spend(clientId, route, inCurrency);
      expect(failed.status >= 500 && failed.status < 600, `a 5xx from ${method} ${path}`, describe(failed));
      expect(failed.paymentResponse !== undefined, 'a payment-response on the 5xx', failed.paymentResponseError ?? 'none');
      expect(failed.paymentResponse.creditsRemaining === start, `the restored balance ${start} reported`, `creditsRemaining ${failed.paymentResponse.creditsRemaining}`);
      const next = await ctx.spend(clientId);
      expectServed(next, 'the next spend on the paid route');
      expectBalance(next, start - amount, 'after the restore and one more spend');
    },
  },
  modelProperty,
];
