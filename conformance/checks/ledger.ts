/**
 * Section 11, ledger guarantees, seen from outside: a burst of concurrent
 * spends never overdraws a balance, and at the end of the run the money the
 * backend collected for each client equals the credit the target granted.
 */
import { unitsToMinor } from '@stripe402/core';
import { isSuccess } from '../exchange.ts';
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
        const charged = intents.filter((i) => i.metadata?.stripe402_client_id === clientId);
        const credited = [...ctx.charges.values()].filter((c) => c.clientId === clientId);
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
