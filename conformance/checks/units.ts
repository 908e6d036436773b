/**
 * Section 5, units and currencies: the credit a top-up grants, the charge the
 * backend records for it (rounded up, never down), the currency steps and
 * minimums a server advertises, and balances that never cross currencies.
 */
import { currencyExponent, unitsToMinor } from '@stripe402/core';
import { METADATA_CLIENT_ID, METADATA_UNITS } from '../backend.ts';
import type { Route } from '../context.ts';
import { describe, errorCodeOf, isSuccess } from '../exchange.ts';
import { expectBalance, expectServed, goodCard, probeCard, stepUnits } from './helpers.ts';
import { CheckFailure, expect, NotApplicable, SkipCheck, type CheckDefinition } from './types.ts';

/**
 * Stripe's minimum charge per currency, in the smallest unit, for the
 * currencies Stripe documents ("Minimum and maximum charge amounts").
 */
const STRIPE_MINIMUM_CHARGE: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30,
  hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200,
  sek: 300, sgd: 50, thb: 1000,
};

/** The charge step of Table 5.5, in the smallest unit. */
function chargeStep(currency: string): number {
  if (['bhd', 'jod', 'kwd', 'omr', 'tnd'].includes(currency)) return 10;
  if (currency === 'isk') return 100;
  return 1;
}

export const unitChecks: CheckDefinition[] = [
  {
    id: '5/credit-is-exactly-top-up',
    title: 'a top-up credits exactly topUpAmount units, whatever the rounding of its charge',
    level: 'core',
    severity: 'must',
    requirement: 'UNIT-4',
    async run(ctx) {
      const accept = ctx.accept;
      const card = goodCard(ctx, 1);
      // minTopUp plus one step: a charge that needs rounding in every currency with e < 4.
      const topUp = accept.minTopUp + stepUnits(accept.currency);
      if (topUp > ctx.maxTopUp()) throw new SkipCheck('the route allows no top-up above minTopUp');
      const { remainder } = await ctx.uncovered(card);
      const response = await ctx.payWithCard(card, topUp, undefined, { idempotencyKey: ctx.idempotencyKey() });
      if (!isSuccess(response.status) && (await ctx.backend?.stateless())) {
        // stripe-mock answers every top-up with its one fixture PaymentIntent (Table 8.2 metadata of one size): a server that checks it must refuse this one.
        throw new SkipCheck(`the Stripe backend keeps no state (stripe-mock): its one PaymentIntent is a top-up of one size, so a top-up of ${topUp} units cannot succeed there (${describe(response)})`);
      }
      const answer = expectServed(response, `a top-up of ${topUp} units`);
      expect(answer.chargeId !== undefined, 'a charge (chargeId)', describe(response));
      expectBalance(response, remainder + topUp - accept.amount, `(${remainder} + ${topUp} credited - ${accept.amount} spent)`);
    },
  },
  {
    id: '5/every-offered-currency-charged',
    title: 'a top-up in each currency the route offers is charged with that currency\'s exponent and credited',
    level: 'ledger',
    severity: 'must',
    requirement: 'UNIT-3',
    async run(ctx) {
      const backend = ctx.requireBackend();
      const card = goodCard(ctx, 1);
      // Every accepts entry, not only the first: another currency's exponent and step must be seen charged end to end.
      for (const route of ctx.routesByCurrency()) {
        const { currency, minTopUp, amount } = route.accept;
        const stepped = minTopUp + stepUnits(currency);
        const topUp = stepped <= ctx.maxTopUp(route) ? stepped : minTopUp;
        const { remainder } = await ctx.uncovered(card, route);
        const response = await ctx.payWithCard(card, topUp, route, { idempotencyKey: ctx.idempotencyKey() });
        const answer = expectServed(response, `a top-up of ${topUp} units in ${currency}`);
        expect(answer.chargeId !== undefined, `a charge (chargeId) for a top-up in ${currency}`, describe(response));
        expectBalance(response, remainder + topUp - amount, `in ${currency} (${remainder} + ${topUp} credited - ${amount} spent)`);
        const intent = await backend.find(answer.chargeId);
        if (!intent) throw new CheckFailure(`PaymentIntent ${answer.chargeId} (the chargeId of a top-up in ${currency}) in the backend`, 'the backend has no such PaymentIntent');
        const expected = unitsToMinor(topUp, currency);
        expect(intent.currency === currency, `PaymentIntent ${intent.id} in ${currency}`, `currency ${intent.currency}`);
        expect(
          intent.amount === expected,
          `PaymentIntent ${intent.id} for ${topUp} units of ${currency} to be ${expected} (e = ${currencyExponent(currency)}, Table 5.2)`,
          `amount ${intent.amount}`,
        );
      }
    },
  },
  {
    id: '5/charge-rounds-up',
    title: 'every PaymentIntent amount is ceil(units * 10^e / 10^4) in the currency of the route',
    level: 'ledger',
    severity: 'must',
    requirement: 'UNIT-2',
    late: true,
    async run(ctx) {
      const backend = ctx.requireBackend();
      if (ctx.charges.size === 0) throw new SkipCheck('the run observed no charge');
      for (const charge of ctx.charges.values()) {
        const intent = await backend.find(charge.paymentIntentId);
        if (!intent) throw new CheckFailure(`PaymentIntent ${charge.paymentIntentId} (a chargeId the target reported) in the backend`, 'the backend has no such PaymentIntent');
        const expected = unitsToMinor(charge.units, charge.currency);
        expect(intent.currency === charge.currency, `PaymentIntent ${intent.id} in ${charge.currency}`, `currency ${intent.currency}`);
        expect(
          intent.amount === expected,
          `PaymentIntent ${intent.id} for ${charge.units} units to be ${expected} (e = ${currencyExponent(charge.currency)})`,
          `amount ${intent.amount}`,
        );
      }
    },
  },
  {
    id: '5/top-up-metadata-names-client-and-units',
    title: 'every PaymentIntent carries stripe402_client_id and stripe402_units of its top-up',
    level: 'ledger',
    severity: 'must',
    requirement: 'PROC-14',
    late: true,
    async run(ctx) {
      const backend = ctx.requireBackend();
      if (ctx.charges.size === 0) throw new SkipCheck('the run observed no charge');
      for (const charge of ctx.charges.values()) {
        const intent = await backend.find(charge.paymentIntentId);
        if (!intent) throw new CheckFailure(`PaymentIntent ${charge.paymentIntentId} (a chargeId the target reported) in the backend`, 'the backend has no such PaymentIntent');
        const metadata = intent.metadata ?? {};
        expect(metadata[METADATA_CLIENT_ID] === charge.clientId, `metadata ${METADATA_CLIENT_ID} ${charge.clientId} on ${intent.id}`, `${metadata[METADATA_CLIENT_ID] ?? '(none)'}`);
        expect(metadata[METADATA_UNITS] === String(charge.units), `metadata ${METADATA_UNITS} "${charge.units}" on ${intent.id}`, `${JSON.stringify(metadata[METADATA_UNITS] ?? null)}`);
      }
    },
  },
  {
    id: '5/advertised-top-ups-respect-charge-step',
    title: 'minTopUp and maxTopUp charge a multiple of the currency\'s step',
    level: 'ledger',
    severity: 'must',
    requirement: 'UNIT-7',
    async run(ctx) {
      for (const entry of ctx.route().challenge.accepts) {
        const step = chargeStep(entry.currency);
        for (const [name, units] of [['minTopUp', entry.minTopUp], ['maxTopUp', entry.maxTopUp]] as const) {
          if (units === undefined) continue;
          const charge = unitsToMinor(units, entry.currency);
          expect(charge % step === 0, `${name} charging a multiple of ${step} ${entry.currency} smallest units`, `${units} units charge ${charge}`);
        }
      }
    },
  },
  {
    id: '5/min-top-up-meets-stripe-minimum',
    title: 'minTopUp charges at least Stripe\'s minimum charge for the currency',
    level: 'core',
    severity: 'should',
    requirement: 'UNIT-6',
    async run(ctx) {
      const known = ctx.route().challenge.accepts.filter((a) => STRIPE_MINIMUM_CHARGE[a.currency] !== undefined);
      if (known.length === 0) throw new NotApplicable('the suite does not know Stripe\'s minimum for the route\'s currencies');
      for (const entry of known) {
        const minimum = STRIPE_MINIMUM_CHARGE[entry.currency]!;
        const charge = unitsToMinor(entry.minTopUp, entry.currency);
        expect(charge >= minimum, `a minTopUp charging at least ${minimum} (${entry.currency})`, `minTopUp ${entry.minTopUp} charges ${charge}`);
      }
    },
  },
  {
    id: '5/advertises-max-top-up',
    title: 'the route advertises a maxTopUp',
    level: 'core',
    severity: 'should',
    requirement: 'UNIT-8',
    async run(ctx) {
      const missing = ctx.route().challenge.accepts.filter((a) => a.maxTopUp === undefined);
      expect(missing.length === 0, 'maxTopUp in every accepts entry', `none for ${missing.map((a) => a.currency).join(', ')}`);
    },
  },
  {
    id: '5/balance-belongs-to-one-currency',
    title: 'a balance in one currency never pays for a request priced in another',
    level: 'extensions',
    severity: 'must',
    requirement: 'UNIT-5',
    async run(ctx) {
      const home = ctx.route();
      const other = otherCurrencyRoute(ctx.route(), ctx.target.discovery.document?.routes ?? [], ctx.options.failingRoute);
      if (!other) throw new NotApplicable('the target offers one currency (no second accepts entry or discovery route)');
      const foreign = await resolveForeign(ctx, other);
      const { clientId, balance } = await ctx.fund(probeCard(ctx), home.accept.amount * 2);
      // Spend the foreign balance, if any, down: with the home balance untouched throughout.
      let spends = 0;
      for (;;) {
        const response = await ctx.spend(clientId, foreign, foreign.payloadExtra);
        if (!isSuccess(response.status)) {
          expect(errorCodeOf(response) === 'insufficient_credits', `insufficient_credits in ${foreign.accept.currency}`, describe(response));
          break;
        }
        if (++spends > 1000) throw new SkipCheck(`the client holds too large a ${foreign.accept.currency} balance to spend down`);
      }
      const after = await ctx.spend(clientId, home);
      expectServed(after, `a spend in ${home.accept.currency}`);
      expectBalance(after, balance - home.accept.amount, `in ${home.accept.currency}: the ${foreign.accept.currency} requests must not touch it`);
    },
  },
];

/** A route (or accepts entry) priced in a currency other than the home route's. */
function otherCurrencyRoute(
  home: Route,
  routes: Array<{ method: string; path: string; currency: string }>,
  failingRoute: string | undefined,
): { method: string; path: string; currency: string; viaPayload: boolean } | undefined {
  const entry = home.challenge.accepts.find((a) => a.currency !== home.accept.currency);
  if (entry) return { method: home.method, path: home.path, currency: entry.currency, viaPayload: true };
  const route = routes.find((r) => r.currency !== home.accept.currency && !r.path.includes(':') && r.path !== failingRoute);
  return route ? { ...route, viaPayload: false } : undefined;
}

async function resolveForeign(
  ctx: Parameters<CheckDefinition['run']>[0],
  other: { method: string; path: string; currency: string; viaPayload: boolean },
): Promise<Route & { payloadExtra: object }> {
  const unpaid = await ctx.send({ method: other.method, path: other.path }, { method: other.method, path: other.path });
  const challenge = unpaid.paymentRequired;
  const accept = challenge?.accepts.find((a) => a.currency === other.currency);
  if (unpaid.status !== 402 || !challenge || !accept) {
    throw new CheckFailure(`a challenge in ${other.currency} for ${other.method} ${other.path}`, describe(unpaid));
  }
  return { method: other.method, path: other.path, challenge, accept, payloadExtra: other.viaPayload ? { currency: other.currency } : {} };
}
