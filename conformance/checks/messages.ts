/**
 * Section 4, messages: the challenge and every payment-response against
 * their schemas, and the payload rules a server must enforce before anything
 * reaches Stripe or the ledger (version, integer amounts, member formats,
 * unknown members ignored).
 */
import { validatePaymentRequired, validatePaymentResponse } from '@stripe402/core';
import { describe, describeWithRequest, isSuccess } from '../exchange.ts';
import {
  expectBalance,
  expectServed,
  probeCard,
  refusesEveryVariant,
  show,
} from './helpers.ts';
import { NotApplicable, SkipCheck, expect, type CheckDefinition } from './types.ts';
import type { RunContext } from '../context.ts';

/** Sends each payload, around a funded and an unfunded client, and expects every one refused with the given code. */
function rejectsAll(
  ctx: RunContext,
  build: (clientId: string, card: string) => Array<{ label: string; payload: object }>,
  code: string,
): Promise<void> {
  return refusesEveryVariant(ctx, (clientId, card) =>
    build(clientId, card).map(({ label, payload }) => ({ label: `a payload with ${label} ${show(payload)}`, payload, codes: code })),
  );
}

/** A client id whose balance pays one request, or a random one when the suite cannot fund one (a stateless backend). */
async function spendableClient(ctx: RunContext): Promise<string> {
  try {
    return (await ctx.fund(probeCard(ctx), ctx.accept.amount)).clientId;
  } catch (error) {
    if (error instanceof SkipCheck) return ctx.randomClientId();
    throw error;
  }
}

export const messageChecks: CheckDefinition[] = [
  {
    id: '4/challenge-is-payment-required-response',
    title: 'the challenge validates as a PaymentRequiredResponse',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-4',
    async run(ctx) {
      const first = ctx.target.firstExchange;
      expect(first.paymentRequiredRaw !== undefined, 'a payment-required header', 'none');
      let body: unknown;
      try {
        body = JSON.parse(first.body);
      } catch {
        body = undefined;
      }
      expect(first.paymentRequired !== undefined, 'a header that decodes to a valid PaymentRequiredResponse', first.paymentRequiredError ?? '');
      const checked = validatePaymentRequired(body);
      expect(checked.ok, 'a body that validates as a PaymentRequiredResponse', checked.ok ? '' : checked.detail);
    },
  },
  {
    id: '4/requirements-one-per-currency',
    title: 'accepts entries are scheme "stripe" and never share a currency',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-6',
    async run(ctx) {
      const accepts = ctx.route().challenge.accepts;
      const currencies = accepts.map((a) => a.currency);
      expect(new Set(currencies).size === currencies.length, 'one entry per currency', `currencies ${currencies.join(', ')}`);
      expect(accepts.every((a) => a.scheme === 'stripe'), 'scheme "stripe"', show(accepts.map((a) => a.scheme)));
    },
  },
  {
    id: '4/min-top-up-covers-amount',
    title: 'every accepts entry advertises minTopUp >= amount and maxTopUp >= minTopUp',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-7',
    async run(ctx) {
      const routes = [ctx.route().challenge.accepts, ...(ctx.target.discovery.document?.routes.map((r) => [r]) ?? [])];
      for (const entries of routes) {
        for (const entry of entries) {
          expect(entry.minTopUp >= entry.amount, `minTopUp >= amount`, `amount ${entry.amount}, minTopUp ${entry.minTopUp}`);
          if (entry.maxTopUp !== undefined) {
            expect(entry.maxTopUp >= entry.minTopUp, 'maxTopUp >= minTopUp', `minTopUp ${entry.minTopUp}, maxTopUp ${entry.maxTopUp}`);
          }
        }
      }
    },
  },
  {
    id: '4/rejects-other-version',
    title: 'a payload with stripe402Version 2 is unsupported_version, whatever its other members',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-1',
    run: (ctx) =>
      rejectsAll(ctx, (clientId) => [
        { label: 'version 2', payload: { stripe402Version: 2, clientId } },
        { label: 'version 2 and members of another shape', payload: { stripe402Version: 2, clientId: 42, topUpAmount: 'all' } },
        { label: 'version 0', payload: { stripe402Version: 0, clientId } },
      ], 'unsupported_version'),
  },
  {
    id: '4/rejects-version-not-integer',
    title: 'a payload whose stripe402Version is missing or not an integer is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-1',
    run: (ctx) =>
      rejectsAll(ctx, (clientId) => [
        { label: 'version "1"', payload: { stripe402Version: '1', clientId } },
        { label: 'version 1.5', payload: { stripe402Version: 1.5, clientId } },
        { label: 'version null', payload: { stripe402Version: null, clientId } },
        { label: 'version true', payload: { stripe402Version: true, clientId } },
        { label: 'no version', payload: { clientId } },
      ], 'invalid_payment'),
  },
  {
    id: '4/rejects-fractional-top-up',
    title: 'a topUpAmount with a fractional part is invalid_payment, even when the balance covers the request',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-3',
    run: (ctx) =>
      rejectsAll(ctx, (clientId, card) => [
        { label: 'topUpAmount minTopUp + 0.5', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: ctx.accept.minTopUp + 0.5 } },
        { label: 'topUpAmount 0.5 with a covering client id', payload: { stripe402Version: 1, clientId, topUpAmount: 0.5 } },
      ], 'invalid_payment'),
  },
  {
    id: '4/rejects-top-up-of-wrong-type',
    title: 'a topUpAmount that is a string, boolean, null, array or object is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-3',
    run: (ctx) =>
      rejectsAll(ctx, (clientId, card) => {
        const min = ctx.accept.minTopUp;
        return [String(min), true, null, [min], { units: min }].flatMap((value) => [
          { label: `topUpAmount ${JSON.stringify(value)}`, payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: value } },
          { label: `topUpAmount ${JSON.stringify(value)} with a covering client id`, payload: { stripe402Version: 1, clientId, topUpAmount: value } },
        ]);
      }, 'invalid_payment'),
  },
  {
    id: '4/rejects-top-up-out-of-range',
    title: 'a topUpAmount of zero, below zero or above 2^53-1 is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-3',
    run: (ctx) =>
      rejectsAll(ctx, (_clientId, card) =>
        [0, -1, -ctx.accept.minTopUp, 2 ** 53, 1e300].map((value) => ({
          label: `topUpAmount ${value}`,
          payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: value },
        })), 'invalid_payment'),
  },
  {
    id: '4/rejects-payload-without-ids',
    title: 'a payload with neither paymentMethodId nor clientId is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-8',
    run: (ctx) =>
      rejectsAll(ctx, () => [
        { label: 'only a version', payload: { stripe402Version: 1 } },
        { label: 'only a top-up amount', payload: { stripe402Version: 1, topUpAmount: ctx.accept.minTopUp } },
      ], 'invalid_payment'),
  },
  {
    id: '4/rejects-malformed-members',
    title: 'a payload member of the wrong type or format (null included) is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-15',
    run: (ctx) =>
      rejectsAll(ctx, (clientId, card) => [
        { label: 'paymentMethodId without pm_', payload: { stripe402Version: 1, paymentMethodId: card.replace(/^pm_/, 'card_') } },
        { label: 'paymentMethodId of 256 characters', payload: { stripe402Version: 1, paymentMethodId: 'pm_' + 'a'.repeat(253) } },
        { label: 'paymentMethodId null next to a client id', payload: { stripe402Version: 1, clientId, paymentMethodId: null } },
        { label: 'idempotencyKey of 15 characters', payload: { stripe402Version: 1, clientId, idempotencyKey: 'a'.repeat(15) } },
        { label: 'idempotencyKey with a space', payload: { stripe402Version: 1, clientId, idempotencyKey: 'conformance key 0001' } },
        { label: 'paymentIntentId without pi_', payload: { stripe402Version: 1, clientId, paymentIntentId: 'pm_123' } },
        { label: 'currency in upper case', payload: { stripe402Version: 1, clientId, currency: ctx.accept.currency.toUpperCase() } },
        { label: 'currency null', payload: { stripe402Version: 1, clientId, currency: null } },
      ], 'invalid_payment'),
  },
  {
    id: '4/rejects-malformed-idempotency-key',
    title: 'an idempotencyKey that is not 16 to 128 characters of A-Z, a-z, 0-9, _ and - is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-10',
    run: (ctx) =>
      rejectsAll(ctx, (clientId, card) =>
        [
          ['15 characters', 'a'.repeat(15)],
          ['129 characters', 'a'.repeat(129)],
          ['a space', 'conformance key 0001'],
          ['a dot', 'conformance.key.0001'],
          ['a non-ASCII letter', 'conformance-clé-0001'],
          ['the empty string', ''],
        ].flatMap(([label, key]) => [
          { label: `idempotencyKey with ${label}`, payload: { stripe402Version: 1, clientId, idempotencyKey: key } },
          { label: `idempotencyKey with ${label} on a top-up`, payload: { stripe402Version: 1, paymentMethodId: card, idempotencyKey: key } },
        ]),
      'invalid_payment'),
  },
  {
    id: '4/resource-url-names-resource',
    title: 'the challenge\'s resource.url is the path of the request (without its query) or an absolute URL of it',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-5',
    async run(ctx) {
      const route = ctx.route();
      const url = route.challenge.resource.url;
      const path = route.path.replace(/[?#].*$/s, '');
      // An absolute URL may name the target through a proxy or another host name: its path is what must match,
      // and a mount prefix the proxy adds is allowed before it.
      const absolute = URL.canParse(url) ? new URL(url) : undefined;
      const names = url === path || (absolute !== undefined && /^https?:$/.test(absolute.protocol) && absolute.pathname.endsWith(path));
      expect(names, `resource.url ${path}, or an absolute URL whose path ends with it`, `resource.url ${JSON.stringify(url)}`);
    },
  },
  {
    id: '4/ignores-unknown-members',
    title: 'unknown members in a payload are ignored',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-2',
    async run(ctx) {
      const amount = ctx.accept.amount;
      const { clientId } = await ctx.fund(probeCard(ctx), amount * 2);
      const plain = await ctx.spend(clientId);
      const before = expectServed(plain, 'a plain spend').creditsRemaining;
      const extended = await ctx.pay({
        stripe402Version: 1,
        clientId,
        conformanceNote: 'ignore me',
        nested: { list: [1, 'two', null], flag: true },
        stripe402Future: { version: 3 },
      });
      expectServed(extended, 'the same spend with unknown members');
      expectBalance(extended, before - amount, 'after a spend with unknown members (one amount less)');
    },
  },
  {
    id: '4/top-up-defaults-to-min-top-up',
    title: 'a top-up without topUpAmount credits minTopUp',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-9',
    async run(ctx) {
      const card = ctx.options.cards.good[1] ?? probeCard(ctx);
      const { remainder } = await ctx.uncovered(card);
      const response = await ctx.pay({ stripe402Version: 1, paymentMethodId: card, idempotencyKey: ctx.idempotencyKey() });
      const answer = expectServed(response, 'a top-up without topUpAmount');
      expect(answer.chargeId !== undefined, 'a charge (chargeId) for a card whose balance is short', describe(response));
      expectBalance(response, remainder + ctx.accept.minTopUp - ctx.accept.amount, 'after a top-up of minTopUp');
    },
  },
  {
    id: '4/rejects-currency-not-offered',
    title: 'a payload naming a currency the route does not offer is currency_not_accepted',
    level: 'extensions',
    severity: 'must',
    requirement: 'MSG-11',
    async run(ctx) {
      const offered = new Set(ctx.route().challenge.accepts.map((a) => a.currency));
      const other = ['zzz', 'xts', 'usd', 'eur'].find((c) => !offered.has(c))!;
      if (offered.size === 1) {
        // The currency member is an extension (CONF-5): a target that offers one currency and serves the payload
        // as if the member were absent does not implement it. One that offers several must.
        const probe = await ctx.spend(await spendableClient(ctx), undefined, { currency: other });
        if (isSuccess(probe.status)) {
          throw new NotApplicable(`the target offers one currency and served a payload naming ${other} as if it carried no currency: it does not implement the currency member (an extension, CONF-5)`);
        }
      }
      await rejectsAll(ctx, (clientId) => [
        { label: `currency "${other}"`, payload: { stripe402Version: 1, clientId, currency: other } },
      ], 'currency_not_accepted');
    },
  },
  {
    id: '4/payment-responses-are-valid',
    title: 'every payment-response validates, with errorCode exactly when success is false',
    level: 'core',
    severity: 'must',
    requirement: 'MSG-12',
    late: true,
    async run(ctx) {
      const answers = ctx.observed.filter((e) => e.paymentResponseRaw !== undefined);
      if (answers.length === 0) throw new SkipCheck('the run saw no payment-response');
      for (const exchange of answers) {
        expect(exchange.paymentResponse !== undefined, 'a payment-response that decodes and validates', `${exchange.paymentResponseError} on ${describeWithRequest(exchange)}`);
        const answer = exchange.paymentResponse;
        const checked = validatePaymentResponse(answer);
        expect(checked.ok, 'a valid PaymentResponse', checked.ok ? '' : `${checked.detail} on ${describeWithRequest(exchange)}`);
        expect(answer.success === (answer.errorCode === undefined), 'errorCode present exactly when success is false', show(answer) + ' on ' + describeWithRequest(exchange));
        expect(!answer.success || exchange.status !== 402, 'success true only on a request that was not refused', describeWithRequest(exchange));
      }
    },
  },
];
