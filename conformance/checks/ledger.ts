/**
 * Section 11, ledger guarantees, seen from outside: a burst of concurrent
 * spends never overdraws a balance, and at the end of the run the money the
 * backend collected for each client equals the credit the target granted.
 */
import { unitsToMinor } from '@stripe402/core';
import { describeWithRequest, isSuccess, type Exchange } from '../exchange.ts';
import { expectBalance, expectError, goodCard } from './helpers.ts';
import { CheckFailure, SkipCheck, expect, type CheckDefinition } from './types.ts';

export const ledgerChecks: CheckDefinition[] = [
  {
    id: '11/concurrent-spends-never-overdraw',
    title: 'concurrent spends beyond the balance serve exactly what it covers and never go below zero',
    level: 'ledger',
    severity: 'must',
    requirement: 'LEDG-1',
    async run(ctx) {
      const { amount, minTopUp } = ctx.accept;
      const burst = Math.max(4, ctx.options.concurrency);
      const covered = Math.floor(burst / 2);
      if (Math.floor(minTopUp / amount) < covered) throw new SkipCheck('one top-up pays for too few requests to race');
      const card = goodCard(ctx, 2);
      const { clientId } = await ctx.fund(card, covered * amount);
      // Spend down to exactly `covered` requests' worth, plus a remainder below one amount.
      const start = await ctx.spendDown(clientId, covered * amount);
      const remainder = start - covered * amount;
      const responses = await ctx.burst(burst, () => ctx.spend(clientId), burst);
      const served = responses.filter((r) => isSuccess(r.status));
      const refused = responses.filter((r) => !isSuccess(r.status));
      expect(served.length === covered, `exactly ${covered} of ${burst} concurrent spends served (balance ${start}, price ${amount})`, `${served.length} served`);
      for (const response of refused) expectError(response, 'insufficient_credits', 'a concurrent spend beyond the balance');
      const reported = served.map((r) => r.paymentResponse?.creditsRemaining ?? -1);
      expect(reported.every((b) => b >= 0), 'no negative balance reported', reported.join(', '));
      expect(new Set(reported).size === served.length, 'a distinct balance after each served spend', reported.join(', '));
      expect(Math.min(...reported) === remainder, `a final balance of ${remainder}`, `${Math.min(...reported)}`);
      expectBalance(await ctx.spend(clientId), remainder, 'after the burst');
    },
  },
  {
    id: '11/payment-intent-credited-once',
    title: 'no PaymentIntent is reported as credited (chargeId) by more than one answer',
    level: 'ledger',
    severity: 'must',
    requirement: 'LEDG-4',
    late: true,
    async run(ctx) {
      // PROC-9: chargeId is there exactly when the request credited the PaymentIntent, so a second answer naming it is a second credit.
      const seen = new Map<string, Exchange>();
      let charges = 0;
      for (const exchange of ctx.observed) {
        const chargeId = exchange.answer.chargeId;
        if (chargeId === undefined || !isSuccess(exchange.status)) continue;
        charges++;
        const first = seen.get(chargeId);
        if (first) {
          throw new CheckFailure(
            `PaymentIntent ${chargeId} credited once`,
            `credited by ${describeWithRequest(first)} and again by ${describeWithRequest(exchange)}`,
          );
        }
        seen.set(chargeId, exchange);
      }
      if (charges === 0) throw new SkipCheck('the run saw no charge');
    },
  },
  {
    id: '11/money-is-conserved',
    title: 'for every client of the run, the backend\'s succeeded charges equal the credit the target granted',
    level: 'ledger',
    severity: 'must',
    requirement: 'LEDG-5',
    late: true,
    async run(ctx) {
      const backend = ctx.requireBackend();
      const clients = new Set([...ctx.clientsUsed, ...[...ctx.charges.values()].map((c) => c.clientId)]);
      if (clients.size === 0) throw new SkipCheck('the run used no client');
      const intents = (await backend.recentPaymentIntents()).filter((i) => i.status === 'succeeded');
      for (const clientId of clients) {
        const credited = [...ctx.charges.values()].filter((c) => c.clientId === clientId);
        // A charge is the client's by its metadata (PROC-14) or because the target credited it to the client (its chargeId,
        // or a resume the suite completed): a target without metadata is judged for that by 5/top-up-metadata-names-client-and-units.
        const charged = intents.filter((i) => i.metadata?.stripe402_client_id === clientId);
        for (const charge of credited) {
          if (charged.some((i) => i.id === charge.paymentIntentId)) continue;
          const intent = intents.find((i) => i.id === charge.paymentIntentId) ?? (await backend.find(charge.paymentIntentId));
          if (intent?.status === 'succeeded') charged.push(intent);
        }
        const chargedIds = new Set(charged.map((i) => i.id));
        const creditedIds = new Set(credited.map((c) => c.paymentIntentId));
        const uncredited = [...chargedIds].filter((id) => !creditedIds.has(id));
        const unpaid = [...creditedIds].filter((id) => !chargedIds.has(id));
        const chargedMinor = charged.reduce((sum, i) => sum + i.amount, 0);
        const creditedMinor = credited.reduce((sum, c) => sum + unitsToMinor(c.units, c.currency), 0);
        if (uncredited.length || unpaid.length || chargedMinor !== creditedMinor) {
          throw new CheckFailure(
            `client ${clientId.slice(0, 12)}…: succeeded charges equal to the credited top-ups (${creditedMinor} over ${creditedIds.size} top-ups)`,
            `${chargedMinor} over ${chargedIds.size} succeeded PaymentIntents` +
              (uncredited.length ? `; charged but never credited: ${uncredited.join(', ')}` : '') +
              (unpaid.length ? `; credited without a succeeded charge: ${unpaid.join(', ')}` : ''),
          );
        }
      }
    },
  },
];
