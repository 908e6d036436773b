/**
 * Section 6, client identity: the form of the client id, its stability per
 * card, its derivation from the card fingerprint (when the suite knows the
 * server secret), and that an unknown id cannot be told from an empty one.
 */
import { isDeepStrictEqual } from 'node:util';
import { decodeHeaderObject, deriveClientId, isClientId } from '@stripe402/core';
import { describe, isSuccess, type Exchange } from '../exchange.ts';
import { expectError, goodCard, probeCard, refusesEveryVariant, withBalanceUnchanged } from './helpers.ts';
import { CheckFailure, NotApplicable, Prerequisite, SkipCheck, expect, type CheckDefinition } from './types.ts';

/** Response header fields that legitimately differ between two identical answers. */
const VOLATILE_HEADERS = new Set(['date', 'connection', 'keep-alive', 'x-request-id', 'x-response-time', 'request-id', 'age', 'server-timing']);

function comparableView(exchange: Exchange): unknown {
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(exchange.headers)) {
    if (VOLATILE_HEADERS.has(name) || name === 'payment-response' || name === 'content-length') continue;
    headers[name] = value;
  }
  const { clientId: _ignored, ...answer } = exchange.paymentResponse ?? {};
  let body: unknown = exchange.body;
  try {
    body = JSON.parse(exchange.body);
  } catch {
    // Compare the text as it is.
  }
  return { status: exchange.status, headers, paymentResponse: answer, paymentRequired: exchange.paymentRequired, body };
}

export const identityChecks: CheckDefinition[] = [
  {
    id: '6/client-id-is-64-hex',
    title: 'the client id a card gets is 64 lower-case hex characters',
    level: 'ledger',
    severity: 'must',
    requirement: 'CID-1',
    async run(ctx) {
      // Not through ctx.identify() nor the decoded PaymentResponse: both already refuse a malformed
      // id (the schema's pattern), which would turn the very failure this check exists for into a skip.
      const card = probeCard(ctx);
      const response = await ctx.payWithCard(card);
      if (!isSuccess(response.status)) {
        throw new Prerequisite(`paying with ${card} was not served (${describe(response)}); see 8/top-up-charges-and-serves`);
      }
      if (response.paymentResponseRaw === undefined) {
        throw new Prerequisite(`the served payment with ${card} carried no payment-response; see 3/payment-response-on-success`);
      }
      const raw = decodeHeaderObject(response.paymentResponseRaw);
      if (!raw.ok) throw new Prerequisite(`the payment-response does not decode to a JSON object (${raw.error.detail}); see 4/payment-responses-are-valid`);
      const clientId = raw.value.clientId;
      expect(typeof clientId === 'string' && isClientId(clientId), `a clientId of 64 characters of 0-9a-f for ${card}`, `clientId ${JSON.stringify(clientId)}`);
    },
  },
  {
    id: '6/same-card-same-client-id',
    title: 'the same card always gets the same client id',
    level: 'ledger',
    severity: 'must',
    requirement: 'CID-1',
    async run(ctx) {
      const card = probeCard(ctx);
      await ctx.fund(card, ctx.accept.amount * 2);
      const ids = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const response = await ctx.payWithCard(card);
        expect(isSuccess(response.status) && response.paymentResponse, 'a served payment with the card', describe(response));
        ids.add(response.paymentResponse.clientId);
      }
      expect(ids.size === 1, 'one client id for two payments with the same card', [...ids].join(' and '));
    },
  },
  {
    id: '6/different-cards-different-client-ids',
    title: 'cards with different fingerprints get different client ids',
    level: 'ledger',
    severity: 'must',
    requirement: 'CID-1',
    async run(ctx) {
      const cards = ctx.options.cards.good.slice(0, 3);
      if (cards.length < 2) throw new SkipCheck('needs at least two good cards (--card)');
      const seen = new Map<string, string>();
      const fingerprints = new Map<string, string | undefined>();
      for (const card of cards) {
        const { clientId } = await ctx.identify(card);
        if (ctx.backend) fingerprints.set(card, await ctx.backend.fingerprint(card));
        for (const [otherId, otherCard] of seen) {
          const sameCard = ctx.backend && fingerprints.get(card) !== undefined && fingerprints.get(card) === fingerprints.get(otherCard);
          if (sameCard) {
            expect(otherId === clientId, `${card} and ${otherCard} (same fingerprint) to share a client id`, `${clientId} and ${otherId}`);
          } else {
            expect(otherId !== clientId, `different client ids for ${card} and ${otherCard}`, `both ${clientId}`);
          }
        }
        seen.set(clientId, card);
      }
    },
  },
  {
    id: '6/client-id-is-hmac-of-fingerprint',
    title: 'the client id is HMAC-SHA256(server secret, card fingerprint) in lower-case hex',
    level: 'ledger',
    severity: 'must',
    requirement: 'CID-1',
    async run(ctx) {
      const secret = ctx.options.serverSecret;
      if (!secret) throw new NotApplicable('needs the server secret (--server-secret)');
      if (!ctx.backend) throw new NotApplicable('needs the Stripe backend to read card fingerprints (--stripe-url, --stripe-key)');
      for (const card of ctx.options.cards.good.slice(0, 3)) {
        const { clientId } = await ctx.identify(card);
        const fingerprint = await ctx.backend.fingerprint(card);
        if (!fingerprint) throw new CheckFailure(`a card fingerprint for ${card} in the backend`, 'none');
        const expected = await deriveClientId(secret, fingerprint);
        expect(clientId === expected, `client id ${expected} for ${card} (fingerprint ${fingerprint})`, clientId);
      }
    },
  },
  {
    id: '6/rejects-malformed-client-id',
    title: 'a clientId that is not 64 lower-case hex characters is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'CID-3',
    async run(ctx) {
      await refusesEveryVariant(ctx, (clientId) =>
        [
          ['upper case', clientId.toUpperCase()],
          ['63 characters', clientId.slice(1)],
          ['65 characters', clientId + 'a'],
          ['the empty string', ''],
          ['a non-hex letter', 'g' + clientId.slice(1)],
          ['surrounding spaces', ` ${clientId} `],
        ].map(([label, value]) => ({ label: `a clientId with ${label}`, payload: { stripe402Version: 1, clientId: value }, codes: 'invalid_payment' })),
      );
    },
  },
  {
    id: '6/unknown-client-id-indistinguishable',
    title: 'an unknown client id is answered exactly like a known one with a zero balance',
    level: 'core',
    severity: 'must',
    requirement: 'CID-4',
    async run(ctx) {
      const card = goodCard(ctx, 2);
      const known = await ctx.zeroBalance(card);
      const unknown = ctx.randomClientId();
      const knownAnswer = await ctx.spend(known);
      const unknownAnswer = await ctx.spend(unknown);
      expectError(knownAnswer, 'insufficient_credits', 'a known client id with a zero balance');
      expectError(unknownAnswer, 'insufficient_credits', 'an unknown client id');
      // What the refusal reports, where it reports anything (a v1 insufficient_credits has no payment-response).
      const reported = unknownAnswer.answer;
      expect(reported.clientId === undefined || reported.clientId === unknown, 'the given clientId echoed', JSON.stringify(reported.clientId));
      expect(reported.creditsRemaining === undefined || reported.creditsRemaining === 0, 'creditsRemaining 0', describe(unknownAnswer));
      const a = comparableView(knownAnswer);
      const b = comparableView(unknownAnswer);
      if (!isDeepStrictEqual(a, b)) {
        throw new CheckFailure('the same status, header fields, payment-response (but clientId) and body', `known: ${JSON.stringify(a).slice(0, 300)}; unknown: ${JSON.stringify(b).slice(0, 300)}`);
      }
    },
  },
  {
    id: '6/rejects-unknown-payment-method',
    title: 'a paymentMethodId that names no PaymentMethod is invalid_payment, without a charge',
    level: 'ledger',
    severity: 'must',
    requirement: 'CID-6',
    async run(ctx) {
      await withBalanceUnchanged(ctx, probeCard(ctx), async () => {
        const response = await ctx.payWithCard('pm_conformanceDoesNotExist0000');
        expectError(response, 'invalid_payment', 'a PaymentMethod the backend does not know');
        expect(response.answer.chargeId === undefined, 'no chargeId', describe(response));
      });
    },
  },
];
