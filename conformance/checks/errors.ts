/**
 * Section 10, errors: judged over every exchange the run provoked, so that a
 * rule broken by any error path (not only the ones a dedicated check visits)
 * is found. Also the invalid-input property and declined cards.
 */
import { ERROR_CODES, decodePaymentHeader } from '@stripe402/core';
import { delivered, describe, describeWithRequest, headerValue } from '../exchange.ts';
import { invalidInputProperty } from '../properties/invalid-input.ts';
import { expectError, show } from './helpers.ts';
import { CheckFailure, SkipCheck, expect, type CheckDefinition } from './types.ts';

/** Text that betrays internals: stack frames, exception names, SDK, driver and network errors, file paths. */
const INTERNALS = [
  /\bat [\w.<>$]+ \(/,
  /\bat (file:|node:|\/)/,
  /\b[A-Z][A-Za-z]*Error\b/,
  /\bError:/,
  /\bStripe[A-Z]\w*|\bstripe\.com\/docs|\bsk_(test|live)_/,
  /\bE(CONN\w+|TIMEDOUT|PIPE|NOTFOUND|ADDRINUSE)\b/,
  /\b(SQL|SQLSTATE|syntax error at or near|relation "|duplicate key|deadlock detected|PGlite|postgres|redis|ioredis)\b/i,
  /(\/[\w.-]+){2,}\.(ts|js|mjs|cjs|py|go|rb|java)\b/,
  /node_modules/,
];

/** Every error exchange of the run: payment-response success false, or a 402 to a request that paid. */
function errorExchanges(ctx: Parameters<CheckDefinition['run']>[0]) {
  return ctx.observed.filter((e) => e.status === 402 || e.paymentResponse?.success === false);
}

export const errorChecks: CheckDefinition[] = [
  {
    id: '10/payment-errors-are-402',
    title: 'every payment error is answered with HTTP 402',
    level: 'core',
    severity: 'must',
    requirement: 'ERR-1',
    late: true,
    async run(ctx) {
      const failures = ctx.observed.filter((e) => e.paymentResponse?.success === false);
      if (failures.length === 0) throw new SkipCheck('the run saw no payment error');
      for (const exchange of failures) {
        // A 503 with Retry-After is a fault of the server itself (ERR-5), not a payment error.
        const unavailable = exchange.status === 503 && headerValue(exchange.headers, 'retry-after') !== undefined;
        expect(exchange.status === 402 || unavailable, 'HTTP 402 for a payment error', describeWithRequest(exchange));
      }
    },
  },
  {
    id: '10/error-402-carries-both-headers',
    title: 'every error 402 carries payment-required with error set and payment-response with success false',
    level: 'core',
    severity: 'must',
    requirement: 'ERR-2',
    late: true,
    async run(ctx) {
      const errors = errorExchanges(ctx).filter((e) => e.status === 402);
      if (errors.length === 0) throw new SkipCheck('the run saw no error 402');
      for (const exchange of errors) {
        expect(exchange.paymentRequired !== undefined, 'a decodable payment-required header', `${exchange.paymentRequiredError ?? 'none'} on ${describeWithRequest(exchange)}`);
        expect(exchange.paymentResponse !== undefined, 'a decodable payment-response header', `${exchange.paymentResponseError ?? 'none'} on ${describeWithRequest(exchange)}`);
        const answer = exchange.paymentResponse;
        expect(answer.success === false && answer.errorCode !== undefined, 'success false and an errorCode', show(answer));
        expect(exchange.paymentRequired.error === answer.errorCode, `payment-required error ${answer.errorCode}`, `error ${exchange.paymentRequired.error ?? '(absent)'}`);
        // A header that fails step 1 establishes no client id: clientId "" and creditsRemaining 0.
        const sent = Object.entries(exchange.request.headers ?? {}).find(([name]) => name.toLowerCase() === 'payment')?.[1];
        if (sent !== undefined && !decodePaymentHeader(delivered(sent)).ok) {
          expect(answer.clientId === '' && answer.creditsRemaining === 0, 'clientId "" and creditsRemaining 0 for a header that fails decoding', `${show(answer)} on ${describeWithRequest(exchange)}`);
        }
      }
    },
  },
  {
    id: '10/error-codes-from-closed-set',
    title: 'every error code is one of the closed set, and never the legacy payment_required',
    level: 'core',
    severity: 'must',
    requirement: 'ERR-3',
    late: true,
    async run(ctx) {
      const allowed = ERROR_CODES.filter((code) => code !== 'payment_required');
      const errors = errorExchanges(ctx);
      if (errors.length === 0) throw new SkipCheck('the run saw no payment error');
      for (const exchange of errors) {
        for (const code of [exchange.paymentResponse?.errorCode, exchange.paymentRequired?.error]) {
          if (code === undefined) continue;
          expect((allowed as readonly string[]).includes(code), `an error code among ${allowed.join(', ')}`, `${code} on ${describeWithRequest(exchange)}`);
        }
      }
    },
  },
  {
    id: '10/error-messages-carry-no-internals',
    title: 'error messages carry no stack trace, driver or SDK text',
    level: 'core',
    severity: 'should',
    requirement: 'ERR-4',
    late: true,
    async run(ctx) {
      const seen = new Set<string>();
      for (const exchange of ctx.observed) {
        for (const text of [exchange.paymentResponse?.error]) {
          if (!text || seen.has(text)) continue;
          seen.add(text);
          const leak = INTERNALS.find((pattern) => pattern.test(text));
          if (leak) throw new CheckFailure('messages for humans, without internals', `${JSON.stringify(text.slice(0, 200))} (matches ${leak})`);
        }
      }
      if (seen.size === 0) throw new SkipCheck('the run saw no error message');
    },
  },
  invalidInputProperty,
  {
    id: '10/declined-card-credits-nothing',
    title: 'a declined card is card_declined, credits nothing and leaves no succeeded charge',
    level: 'ledger',
    severity: 'must',
    requirement: 'ERR-7',
    async run(ctx) {
      const card = ctx.options.cards.declined;
      const response = await ctx.payWithCard(card, undefined, undefined, { idempotencyKey: ctx.idempotencyKey() });
      expectError(response, 'card_declined', `a top-up with ${card}`);
      const answer = response.paymentResponse!;
      expect(answer.chargeId === undefined, 'no chargeId', show(answer));
      expect(answer.creditsRemaining === 0, 'creditsRemaining 0', show(answer));
      if (answer.clientId) {
        const spend = await ctx.spend(answer.clientId);
        expectError(spend, 'insufficient_credits', 'a spend from the declined card\'s client id');
        expect(spend.paymentResponse?.creditsRemaining === 0, 'a zero balance', describe(spend));
        if (ctx.backend) {
          const succeeded = await ctx.backend.succeededFor(answer.clientId);
          expect(succeeded.length === 0, 'no succeeded PaymentIntent for the declined card', succeeded.map((i) => i.id).join(', '));
        }
      }
      const again = await ctx.payWithCard(card);
      expectError(again, 'card_declined', 'the declined card again');
    },
  },
];
