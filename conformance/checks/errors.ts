/**
 * Section 10, errors: judged over every exchange the run provoked, so that a
 * rule broken by any error path (not only the ones a dedicated check visits)
 * is found. Also the invalid-input property and declined cards.
 */
import { ERROR_CODES, decodePaymentHeader, validatePaymentRequired } from '@stripe402/core';
import { delivered, describeWithRequest, headerValue, isSuccess, type Exchange } from '../exchange.ts';
import { invalidInputProperty } from '../properties/invalid-input.ts';
import { expectBalance, expectError, goodCard, show, stepUnits } from './helpers.ts';
import { CheckFailure, NotApplicable, SkipCheck, expect, type CheckDefinition } from './types.ts';

/**
 * Text that betrays internals (ERR-4): stack frames and exception names of
 * JavaScript, Python, Java and Go; runtime faults and decoding errors of
 * JavaScript, Python and Go; file paths; SQL and the text of PostgreSQL,
 * SQLite and Redis errors; network errors; Stripe's own error text, its
 * request ids and secret keys. Each pattern is specific to
 * machine text, so a message written for humans about the payment never
 * matches.
 */
export const INTERNALS: readonly RegExp[] = [
  // stack traces and exception names
  /\bat [\w.<>$]+ \(/,
  /\bat (file:|node:|\/)/,
  /\b[A-Z][A-Za-z]*(Error|Exception)\b/,
  /\bError:/,
  /Traceback \(most recent call last\)|\bFile "[^"]+", line \d+/,
  /\bat [\w.$]+\([\w$]+\.(java|kt|scala):\d+\)|\bException in thread\b/,
  /\bgoroutine \d+ \[|\bpanic: |\bruntime error\b|\bnil pointer dereference\b|invalid memory address/,
  // JavaScript and Go runtime and decoding errors
  /\bCannot read propert(y|ies) of (undefined|null)\b|\bis not a function\b|\bUnexpected token\b.*\bJSON\b|\bis not valid JSON\b/,
  /\bjson: cannot unmarshal\b|\binvalid character '.' (looking for|after|in)\b|\bstrconv\.\w+:|\bcontext deadline exceeded\b|\bdial tcp\b/,
  // Python runtime and decoding errors
  /\bExpecting (value|property name enclosed in double quotes|'[,:]' delimiter): line \d+|\bExtra data: line \d+ column \d+|\bUnterminated string starting at: line\b|\binvalid literal for int\(\) with base \d+|'[\w-]+' codec can't (de|en)code\b|\bmaximum recursion depth exceeded\b|'\w+' object (is not subscriptable|has no attribute|is not iterable|cannot be interpreted as an integer)\b|\bunsupported operand type\(s\)|\bnot supported between instances of '\w+' and '\w+'/,
  // file paths and source positions
  /(\/[\w.-]+){2,}\.(ts|js|mjs|cjs|py|go|rb|java|php|rs|cs)\b/,
  /\b[\w-]+\.(ts|js|mjs|cjs|py|go|rb|java|php|rs):\d+/,
  /node_modules|site-packages|\b[A-Z]:\\[A-Za-z]/,
  // Stripe: SDK and API error text, request ids, keys
  /\bStripe[A-Z]\w*|\bstripe\.com\/docs|\b(sk|rk)_(test|live)_/,
  /\breq_[A-Za-z0-9]{8,}\b|\bRequest req_/,
  /\bNo such [a-z_ ]+: '?[a-z]{2,5}_\w+|\bReceived unknown parameter\b|\bInvalid (integer|string|boolean|array|hash): |\bYou passed an empty string\b/,
  // network errors
  /\bE(CONN\w+|TIMEDOUT|PIPE|NOTFOUND|ADDRINUSE|AI_AGAIN)\b|\bsocket hang up\b|\bconnection refused\b/i,
  // SQL and database drivers
  /\b(SQL|SQLSTATE|syntax error at or near|relation "|duplicate key|deadlock detected|PGlite|postgres|redis|ioredis|sqlite)\b/i,
  /\bviolates (check|unique|foreign key|not-null) constraint\b|\binvalid input syntax for\b|\bnumeric field overflow\b|\bpq: /,
  /\b(WRONGTYPE|NOSCRIPT|CROSSSLOT|READONLY|NOAUTH|ReplyError)\b|\bERR (value is not|increment or decrement|wrong number)|\bvalue is not an integer or out of range\b/,
];

/** The first internals pattern a text matches, if any. */
export function internalsIn(text: string): RegExp | undefined {
  return INTERNALS.find((pattern) => pattern.test(text));
}

/**
 * Every text of an error answer that is meant for humans or could carry
 * internals: the message of its PaymentResponse (header or v1 body), and its
 * body when that is not the challenge (which the target builds from its own
 * configuration, and other checks validate).
 */
function errorTexts(exchange: Exchange): string[] {
  const texts: string[] = [];
  if (exchange.answer.message) texts.push(exchange.answer.message);
  if (isSuccess(exchange.status) || !exchange.body) return texts;
  let json: unknown;
  try {
    json = JSON.parse(exchange.body);
  } catch {
    json = undefined;
  }
  if (json !== undefined && validatePaymentRequired(json).ok) return texts;
  if (exchange.answer.source === 'v1-body' && exchange.answer.message !== undefined) return texts;
  texts.push(exchange.body.slice(0, 4000));
  return texts;
}

/** Every error exchange of the run: payment-response success false, or a 402 to a request that paid. */
function errorExchanges(ctx: Parameters<CheckDefinition['run']>[0]) {
  return ctx.observed.filter((e) => e.status === 402 || e.answer.success === false);
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
      const failures = ctx.observed.filter((e) => e.answer.success === false && e.answer.source !== 'challenge');
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
        // A header that fails step 1 establishes no client id: clientId "" and creditsRemaining 0. Only where the target
        // says so too: a header the suite's strict codec refuses may still be one the target may read (ENC-16 lets it read
        // a duplicated member by its last value), and then its other answer is judged by the check that sent it.
        const sent = Object.entries(exchange.request.headers ?? {}).find(([name]) => name.toLowerCase() === 'payment')?.[1];
        const refusedAtStep1 = answer.errorCode === 'invalid_payment' || answer.errorCode === 'unsupported_version';
        if (sent !== undefined && refusedAtStep1 && !decodePaymentHeader(delivered(sent)).ok) {
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
        for (const code of [exchange.paymentResponse?.errorCode, exchange.paymentRequired?.error, exchange.answer.errorCode]) {
          if (code === undefined) continue;
          expect((allowed as readonly string[]).includes(code), `an error code among ${allowed.join(', ')}`, `${code} on ${describeWithRequest(exchange)}`);
        }
      }
    },
  },
  {
    id: '10/error-messages-carry-no-internals',
    title: 'error messages and error bodies carry no stack trace, file path, driver, runtime or Stripe error text',
    level: 'core',
    severity: 'must',
    requirement: 'ERR-4',
    late: true,
    async run(ctx) {
      const seen = new Set<string>();
      const leaks: string[] = [];
      for (const exchange of ctx.observed) {
        if (isSuccess(exchange.status)) continue;
        for (const text of errorTexts(exchange)) {
          if (seen.has(text)) continue;
          seen.add(text);
          const leak = internalsIn(text);
          if (leak) leaks.push(`${JSON.stringify(text.slice(0, 200))} (matches ${leak}) on ${describeWithRequest(exchange)}`);
        }
      }
      if (seen.size === 0) throw new SkipCheck('the run saw no error message');
      if (leaks.length > 0) throw new CheckFailure('messages for humans, without internals', `${leaks.length} message(s) with internals: ${leaks.slice(0, 5).join('; ')}`);
    },
  },
  invalidInputProperty,
  {
    id: '10/error-names-the-card-client-id',
    title: "an error after the card is read names the card's client id and balance, not the payload's clientId",
    level: 'core',
    severity: 'must',
    requirement: 'ERR-2',
    async run(ctx) {
      const { minTopUp } = ctx.accept;
      const step = stepUnits(ctx.accept.currency);
      if (minTopUp - step < 1) throw new NotApplicable('no valid top-up lies below minTopUp');
      const card = goodCard(ctx, 1);
      const { clientId, remainder } = await ctx.uncovered(card);
      // Step 3 finds nothing for the payload's (unknown) client id, step 4 reads the card, step 5 refuses the top-up:
      // the client id established is the card's, and a client that trusted the payload's would spend from the wrong one.
      const other = ctx.randomClientId();
      const response = await ctx.payWithCard(card, minTopUp - step, undefined, { clientId: other });
      expectError(response, 'top_up_below_minimum', `a top-up of ${minTopUp - step} units with ${card} and another clientId`);
      const answer = response.answer;
      expect(answer.clientId === clientId, `clientId ${clientId} (the card's), not the payload's ${other}`, show(answer));
      expect(answer.creditsRemaining === remainder, `creditsRemaining ${remainder} (the card's balance)`, show(answer));
    },
  },
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
      const answer = response.answer;
      expect(answer.chargeId === undefined, 'no chargeId', show(answer));
      // A v1 error body reports no balance (clientId ""): then only the spend below can show one.
      expect(answer.creditsRemaining === undefined || answer.creditsRemaining === 0, 'creditsRemaining 0', show(answer));
      if (answer.clientId) {
        const spend = await ctx.spend(answer.clientId);
        expectError(spend, 'insufficient_credits', 'a spend from the declined card\'s client id');
        expectBalance(spend, 0, 'for the declined card\'s client id');
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
