/**
 * Rate limits (spec 10.7 and 13): the suite provokes a limit the only way a
 * black box can, by presenting unknown client ids until the target refuses
 * (SEC-3), then judges every limited answer of the run (ERR-10) and checks
 * that a limited spend of a funded client changed nothing (ERR-11). These
 * checks run last: a target that limits by source address limits the suite
 * itself for a while, which must not disturb the other checks. A target that
 * does not limit within PROBE_REQUESTS requests skips them.
 */
import { describe, describeWithRequest, headerValue, type Exchange } from '../exchange.ts';
import type { RunContext } from '../context.ts';
import { expectServed, probeCard, show } from './helpers.ts';
import { NotApplicable, SkipCheck, expect, type CheckDefinition } from './types.ts';

/** How many unknown client ids the probe presents at most before concluding the target does not limit them. */
export const PROBE_REQUESTS = 3_000;
/** The longest Retry-After the suite waits for; longer ones skip what needs the wait. */
const MAX_WAIT_SECONDS = 30;
/** How many times the funded spend is tried amid unknown ids before concluding the target spares funded ids. */
const ATTEMPTS = 5;

/** Whether an answer refused a request under a rate limit, conforming (rate_limited) or not (429). */
export function isLimited(exchange: Exchange): boolean {
  return exchange.status === 429 || exchange.paymentResponse?.errorCode === 'rate_limited' || exchange.paymentRequired?.error === 'rate_limited';
}

const probes = new WeakMap<RunContext, Promise<{ limited: Exchange | undefined; sent: number }>>();

/** Presents fresh unknown client ids, in bursts, until one answer is limited; once per run. */
function probe(ctx: RunContext): Promise<{ limited: Exchange | undefined; sent: number }> {
  let running = probes.get(ctx);
  if (running === undefined) {
    running = (async () => {
      let sent = 0;
      const batch = Math.max(16, ctx.options.concurrency * 8);
      while (sent < PROBE_REQUESTS) {
        const answers = await ctx.burst(Math.min(batch, PROBE_REQUESTS - sent), () => ctx.spend(ctx.randomClientId()));
        sent += answers.length;
        const limited = answers.find(isLimited);
        if (limited) return { limited, sent };
      }
      return { limited: undefined, sent };
    })();
    probes.set(ctx, running);
  }
  return running;
}

/** The Retry-After of an answer in seconds, when it is delta-seconds (RFC 9110, 10.2.3). */
function retryAfterSeconds(exchange: Exchange): number | undefined {
  const value = headerValue(exchange.headers, 'retry-after')?.trim();
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const limitChecks: CheckDefinition[] = [
  {
    id: '13/unknown-client-ids-limited',
    title: 'a source presenting many unknown client ids is limited',
    level: 'core',
    severity: 'info',
    requirement: 'SEC-3',
    seesRateLimits: true,
    late: true,
    async run(ctx) {
      const { limited, sent } = await probe(ctx);
      if (!limited) return `not limited within ${sent} requests with unknown client ids`;
      // No count: how many requests it takes depends on timing, and reports must not change from run to run.
      return `limited within ${PROBE_REQUESTS} requests with unknown client ids: HTTP ${limited.status}${limited.paymentResponse?.errorCode ? ` ${limited.paymentResponse.errorCode}` : ''}, ${headerValue(limited.headers, 'retry-after') === undefined ? 'no' : 'with'} Retry-After`;
    },
  },
  {
    id: '13/limited-answer-well-formed',
    title: 'a request refused under a rate limit is an error 402 rate_limited with Retry-After, naming no client id and no balance',
    level: 'core',
    severity: 'must',
    requirement: 'ERR-10',
    seesRateLimits: true,
    late: true,
    async run(ctx) {
      const { sent } = await probe(ctx);
      const limited = ctx.observed.filter(isLimited);
      if (limited.length === 0) throw new NotApplicable(`the target limited none of the run's requests (${sent} unknown client ids presented)`);
      for (const exchange of limited) {
        const where = describeWithRequest(exchange);
        expect(exchange.status === 402, 'HTTP 402 for a rate-limited request', where);
        expect(retryAfterSeconds(exchange) !== undefined, 'a Retry-After header field in seconds', `${headerValue(exchange.headers, 'retry-after') ?? 'none'} on ${where}`);
        expect(exchange.paymentRequired?.error === 'rate_limited', 'payment-required with error rate_limited', `${exchange.paymentRequired?.error ?? exchange.paymentRequiredError ?? 'none'} on ${where}`);
        const answer = exchange.paymentResponse;
        expect(answer !== undefined && answer.success === false && answer.errorCode === 'rate_limited', 'payment-response with success false and errorCode rate_limited', `${answer ? show(answer) : (exchange.paymentResponseError ?? 'none')} on ${where}`);
        expect(answer.clientId === '' && answer.creditsRemaining === 0, 'clientId "" and creditsRemaining 0 in a limited answer', `${show(answer)} on ${where}`);
      }
    },
  },
  {
    id: '13/limited-request-changes-nothing',
    title: 'a spend refused under a rate limit spends nothing and charges nothing',
    level: 'ledger',
    severity: 'must',
    requirement: 'ERR-11',
    late: true,
    async run(ctx) {
      const card = probeCard(ctx);
      const amount = ctx.accept.amount;
      // Funded before the probe: a top-up is not what the probe limits.
      const { clientId, balance } = await ctx.fund(card, amount * (ATTEMPTS + 2));
      const chargesBefore = ctx.backend ? (await ctx.backend.paymentIntentsFor(clientId)).length : undefined;
      // Funding waits out a limit an earlier check provoked; from here on the limited answers are what is judged.
      ctx.retryRateLimited = false;
      const { limited: probed, sent } = await probe(ctx);
      if (!probed) throw new NotApplicable(`the target limited none of ${sent} requests with unknown client ids`);
      // The funded spend goes out amid more unknown ids, so that a budget refilled since the probe is used up again.
      let expected = balance;
      let limited: Exchange | undefined;
      for (let attempt = 0; attempt < ATTEMPTS && limited === undefined; attempt++) {
        const [, spent] = await Promise.all([
          ctx.burst(ctx.options.concurrency * 2, () => ctx.spend(ctx.randomClientId())),
          sleep(5).then(() => ctx.spend(clientId)),
        ]);
        if (isLimited(spent)) {
          limited = spent;
        } else {
          // Limits per source may spare ids that pay; such a spend is served from the balance.
          const answer = expectServed(spent, 'a spend of a funded client id while unknown ids are limited');
          expected -= amount;
          expect(answer.creditsRemaining === expected, `balance ${expected} after a spend`, show(answer));
        }
      }
      if (limited === undefined) throw new NotApplicable(`the target served a funded client id ${ATTEMPTS} times while it limited unknown ones: nothing to check`);
      const wait = retryAfterSeconds(limited);
      if (wait === undefined || wait > MAX_WAIT_SECONDS) throw new SkipCheck(`the limited answer asks to wait ${headerValue(limited.headers, 'retry-after') ?? '(no Retry-After)'} seconds; the suite waits at most ${MAX_WAIT_SECONDS}`);
      let after: Exchange | undefined;
      for (let attempt = 0; attempt < 3; attempt++) {
        await sleep((wait + attempt) * 1000 + 100);
        after = await ctx.spend(clientId);
        if (!isLimited(after)) break;
      }
      if (after === undefined || isLimited(after)) throw new SkipCheck(`still limited ${wait} seconds and more after the Retry-After (${describe(after!)})`);
      const answer = expectServed(after, 'the same spend after the Retry-After delay');
      expect(answer.creditsRemaining === expected - amount, `balance ${expected - amount}: the limited spend took nothing, the next one ${amount}`, `${answer.creditsRemaining} (${show(answer)})`);
      if (ctx.backend && chargesBefore !== undefined) {
        const chargesAfter = (await ctx.backend.paymentIntentsFor(clientId)).length;
        expect(chargesAfter === chargesBefore, `no new PaymentIntent for ${clientId}`, `${chargesAfter - chargesBefore} new`);
      }
    },
  },
];
