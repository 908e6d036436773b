/**
 * Sections 13 and 15: what a black box can say about transport security, and
 * that the payload shapes deployed stripe402 v1 clients send are served.
 */
import { describe } from '../exchange.ts';
import { expectBalance, expectServed, goodCard, probeCard } from './helpers.ts';
import { expect, type CheckDefinition } from './types.ts';

const LOOPBACK = /^(localhost|127(?:\.\d+){3}|\[::1\]|::1)$/i;

export const securityChecks: CheckDefinition[] = [
  {
    id: '13/https-outside-loopback',
    title: 'the target is reached over HTTPS, or on loopback',
    level: 'core',
    severity: 'info',
    requirement: 'SEC-1',
    async run(ctx) {
      const url = ctx.target.url;
      if (url.protocol === 'https:') return 'the target uses HTTPS';
      if (LOOPBACK.test(url.hostname)) return 'plain HTTP on loopback, allowed for testing';
      return `plain HTTP to ${url.hostname}: client ids and payments travel in clear text`;
    },
  },
];

export const compatibilityChecks: CheckDefinition[] = [
  {
    id: '15/v1-payload-shapes-served',
    title: 'the payload shapes stripe402 v1 clients send are served',
    level: 'core',
    severity: 'must',
    requirement: 'COMPAT-1',
    async run(ctx) {
      const card = probeCard(ctx);
      const { amount, minTopUp } = ctx.accept;
      const { clientId, balance } = await ctx.fund(card, amount * 5);
      const shapes = [
        { label: 'paymentMethodId with topUpAmount', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: minTopUp } },
        { label: 'paymentMethodId alone', payload: { stripe402Version: 1, paymentMethodId: card } },
        { label: 'clientId alone', payload: { stripe402Version: 1, clientId } },
        { label: 'paymentMethodId, clientId and topUpAmount', payload: { stripe402Version: 1, paymentMethodId: card, clientId, topUpAmount: minTopUp } },
      ];
      let expected = balance;
      for (const shape of shapes) {
        const response = await ctx.pay(shape.payload);
        const answer = expectServed(response, `a v1 payload with ${shape.label}`);
        expect(answer.clientId === clientId, `client id ${clientId}`, answer.clientId);
        expected -= amount;
        expectBalance(response, expected, `after a v1 payload with ${shape.label}`);
      }
    },
  },
  {
    id: '15/no-extension-member-required',
    title: 'a top-up that needs a charge is charged and served with only the members stripe402 v1 defines',
    level: 'core',
    severity: 'must',
    requirement: 'COMPAT-3',
    async run(ctx) {
      // No idempotencyKey, currency or paymentIntentId: a server may not require a member v1 does not define.
      const card = goodCard(ctx, 1);
      const { minTopUp, amount } = ctx.accept;
      // The card is identified (and its balance spent down) with the members this project adds, so that only the top-up below lacks them.
      if (!ctx.cardClients.has(card)) await ctx.payWithCard(card, undefined, undefined, { idempotencyKey: ctx.idempotencyKey() });
      const { clientId, remainder } = await ctx.uncovered(card);
      const response = await ctx.pay({ stripe402Version: 1, paymentMethodId: card, topUpAmount: minTopUp });
      const answer = expectServed(response, 'a v1 top-up without idempotencyKey');
      expect(answer.chargeId !== undefined, 'a charge (chargeId) for a card whose balance is short', describe(response));
      expect(answer.clientId === clientId, `client id ${clientId}`, answer.clientId);
      expectBalance(response, remainder + minTopUp - amount, `(${remainder} + ${minTopUp} credited - ${amount} spent)`);
    },
  },
];
