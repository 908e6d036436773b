/**
 * The attacks of spec sections 13.5 and 13.7, repeated and measured against
 * the reference server with its default rate limits: what refuted input
 * costs in Stripe calls, how many charge attempts card testing from one
 * address gets through to Stripe, and whether paying clients keep being
 * served while attackers flood unknown client ids and random PaymentIntent
 * ids. Everything runs in this process on loopback: the emulator (with a
 * Stripe-like latency, BENCH_STRIPE_LATENCY_MS, default 200 ms) and the
 * server on an in-memory PGlite ledger, behind a "trusted proxy" (this
 * process) whose X-Forwarded-For gives each simulated client its own
 * address. Stripe calls are counted by the emulator itself. Bounded: 1,000
 * refuted requests, 100 declining top-ups in 10 s, and a flood of
 * BENCH_DURATION seconds (default 10).
 *
 *   npx tsx bench/attack.bench.ts
 *   BENCH_DURATION=5 BENCH_STRIPE_LATENCY_MS=0 npx tsx bench/attack.bench.ts
 */
import { randomBytes } from 'node:crypto';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import { DEFAULT_RATE_LIMITS } from '@stripe402/server';
import { startServer, type RunningServer } from 'stripe402';
import { durationSeconds, machineLine, rate, runWhenScript, table } from './harness.ts';

const V = { stripe402Version: 1 } as const;
const DECLINING_CARDS = ['chargeDeclined', 'chargeDeclinedInsufficientFunds', 'chargeDeclinedLostCard', 'chargeDeclinedStolenCard', 'chargeDeclinedExpiredCard', 'chargeDeclinedIncorrectCvc', 'chargeDeclinedFraudulent'].map((name) => `pm_card_${name}`);
const PAYING_CARDS = ['visa', 'visa_debit', 'mastercard', 'mastercard_debit', 'mastercard_prepaid', 'amex', 'discover', 'diners', 'jcb', 'unionpay'].map((name) => `pm_card_${name}`);

export interface AttackFigures {
  refutedRequests: number;
  stripeCallsForRefuted: number;
  randomPaymentMethods: number;
  stripeCallsForRandomPaymentMethods: number;
  decliningTopUps: number;
  decliningSeconds: number;
  chargeAttemptsReachingStripe: number;
  paymentIntentsCreatedByDeclines: number;
  chargeAttemptLimit: number;
  payingRequests: number;
  payingServed: number;
  attackRequests: number;
  attackLimited: number;
  attackPerSecond: number;
  stripeCallsDuringFlood: number;
  floodSeconds: number;
}

interface Answer {
  status: number;
  code: string | undefined;
  clientId: string | undefined;
}

async function send(url: string, payload: unknown, source: string): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': source };
  if (payload !== undefined) headers.payment = typeof payload === 'string' ? payload : encodeHeader(payload as object);
  const response = await fetch(`${url}/api/joke`, { headers });
  await response.arrayBuffer();
  const raw = response.headers.get('payment-response');
  const decoded = raw === null ? undefined : decodePaymentResponseHeader(raw);
  const answer = decoded?.ok ? decoded.value : undefined;
  return { status: response.status, code: answer?.errorCode, clientId: answer?.clientId };
}

/** Every Stripe API request the emulator receives from now on (a zero-delay rule matching all of them). */
function countStripeCalls(emulator: Emulator): () => number {
  // Only the first matching rule counts a request: earlier counters go.
  emulator.faults.clear();
  const rule = emulator.faults.arm({ match: { path: '/v1/' }, kind: 'latency', ms: 0, times: 'unlimited' });
  return () => emulator.faults.list().find((r) => r.id === rule.id)?.hits ?? 0;
}

const randomHex = (bytes: number) => randomBytes(bytes).toString('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `count` calls of `task`, `concurrency` at a time. */
async function pool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await task(next++);
  }));
}

async function startTarget(emulator: Emulator, limited = true): Promise<RunningServer> {
  return startServer({
    port: 0,
    host: '127.0.0.1',
    ledger: 'pglite:memory',
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    stripePublishableKey: emulator.publishableKey,
    serverSecret: randomHex(32),
    trustedProxies: ['127.0.0.1'],
    ...(limited ? {} : { rateLimits: false as const }),
    log: false,
  });
}

export async function main(): Promise<AttackFigures> {
  const latencyMs = Number(process.env.BENCH_STRIPE_LATENCY_MS ?? 200);
  const floodSeconds = durationSeconds(10);
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0, latencyMs });
  console.log(machineLine());
  console.log(`Stripe emulator latency ${latencyMs} ms; default limits ${JSON.stringify(DEFAULT_RATE_LIMITS)}`);
  try {
    // 1. Refuted input: 1,000 requests that the server can refute locally, from 1,000 addresses (no per-source limit helps).
    let server = await startTarget(emulator);
    const stripeCalls = countStripeCalls(emulator);
    const refuted = 1_000;
    const kinds = [
      () => ({ ...V, clientId: randomHex(32), paymentIntentId: `pi_${randomHex(12)}` }),
      () => ({ ...V, paymentMethodId: 'pm_card_visa', paymentIntentId: `pi_${randomHex(12)}` }),
      () => ({ ...V, clientId: randomHex(32) }),
      () => 'not base64!',
      () => ({ ...V, clientId: 'ab' }),
    ];
    await pool(refuted, 16, async (i) => {
      const answer = await send(server.url, kinds[i % kinds.length]!(), `198.18.${i >> 8}.${i & 255}`);
      if (answer.status !== 402 || answer.code === undefined) throw new Error(`a refuted request was answered ${answer.status} ${answer.code}`);
    });
    const stripeCallsForRefuted = stripeCalls();
    // Random PaymentMethod ids cannot be refuted without Stripe: they are bounded by the charge attempts of their source.
    const randomPaymentMethods = 1_000;
    await pool(randomPaymentMethods, 16, async () => void (await send(server.url, { ...V, paymentMethodId: `pm_${randomHex(12)}` }, '203.0.113.66')));
    const stripeCallsForRandomPaymentMethods = stripeCalls() - stripeCallsForRefuted;
    await server.close();

    // 2. Card testing: 100 declining top-ups from one address in 10 s, with the default limits and, as the baseline, without.
    const declining = 100;
    const cardTesting = async (limited: boolean) => {
      const target = await startTarget(emulator, limited);
      const before = emulator.state.paymentIntents().length;
      const started = performance.now();
      let reached = 0;
      // One request every 100 ms, on schedule whatever Stripe's latency: the attacker does not wait for answers.
      const sent: Array<Promise<void>> = [];
      for (let i = 0; i < declining; i++) {
        const wait = started + i * 100 - performance.now();
        if (wait > 0) await sleep(wait);
        sent.push(
          send(target.url, { ...V, paymentMethodId: DECLINING_CARDS[i % DECLINING_CARDS.length] }, '203.0.113.7').then((answer) => {
            if (answer.code !== 'rate_limited') reached++;
          }),
        );
      }
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(sent);
      await target.close();
      return { reached, seconds, paymentIntents: emulator.state.paymentIntents().length - before };
    };
    const unlimited = await cardTesting(false);
    const { reached, seconds: decliningSeconds, paymentIntents: paymentIntentsCreatedByDeclines } = await cardTesting(true);
    const perSource = DEFAULT_RATE_LIMITS.chargeAttemptsPerSource;
    const chargeAttemptLimit = Math.floor(perSource.burst + (perSource.perMinute * decliningSeconds) / 60);

    // 3. Paying clients under a flood of unknown client ids and random PaymentIntent ids from 2 attacker addresses.
    server = await startTarget(emulator);
    const floodStripeCalls = countStripeCalls(emulator);
    const deadline = performance.now() + floodSeconds * 1000;
    let attackRequests = 0;
    let attackLimited = 0;
    const attackers = Array.from({ length: 32 }, async (_, worker) => {
      const source = `203.0.113.${100 + (worker % 2)}`;
      while (performance.now() < deadline) {
        const payload = worker % 2 === 0 ? { ...V, clientId: randomHex(32) } : { ...V, clientId: randomHex(32), paymentIntentId: `pi_${randomHex(12)}` };
        const answer = await send(server.url, payload, source);
        attackRequests++;
        if (answer.code === 'rate_limited') attackLimited++;
      }
    });
    let payingRequests = 0;
    let payingServed = 0;
    const payers = PAYING_CARDS.map(async (card, index) => {
      const source = `198.51.100.${index + 1}`;
      let clientId: string | undefined;
      while (performance.now() < deadline) {
        // The first request tops up with the card; the others spend with the client id, topping up again when it runs out.
        const answer = await send(server.url, clientId ? { ...V, clientId } : { ...V, paymentMethodId: card, idempotencyKey: `bench-${randomHex(8)}` }, source);
        payingRequests++;
        if (answer.status === 200) {
          payingServed++;
          clientId = answer.clientId;
        } else if (answer.code === 'insufficient_credits') {
          payingServed++; // Answered correctly: the balance ran out; the next request tops up.
          clientId = undefined;
        }
        await sleep(20);
      }
    });
    await Promise.all([...attackers, ...payers]);
    const stripeCallsDuringFlood = floodStripeCalls();
    await server.close();

    const figures: AttackFigures = {
      refutedRequests: refuted,
      stripeCallsForRefuted,
      randomPaymentMethods,
      stripeCallsForRandomPaymentMethods,
      decliningTopUps: declining,
      decliningSeconds,
      chargeAttemptsReachingStripe: reached,
      paymentIntentsCreatedByDeclines,
      chargeAttemptLimit,
      payingRequests,
      payingServed,
      attackRequests,
      attackLimited,
      attackPerSecond: attackRequests / floodSeconds,
      stripeCallsDuringFlood,
      floodSeconds,
    };
    table([
      ['attack', 'figure', 'goal'],
      [`Stripe calls for ${refuted} refuted requests`, String(stripeCallsForRefuted), '0'],
      [`Stripe calls for ${randomPaymentMethods} random PaymentMethod ids, one address`, String(stripeCallsForRandomPaymentMethods), `<= ${perSource.burst} + refill`],
      [`charge attempts reaching Stripe, ${declining} declines in ${decliningSeconds.toFixed(1)} s`, String(reached), `<= ${chargeAttemptLimit}`],
      ['PaymentIntents those declines created', String(paymentIntentsCreatedByDeclines), `<= ${chargeAttemptLimit}`],
      ['  the same without rate limits (baseline): attempts, PaymentIntents', `${unlimited.reached}, ${unlimited.paymentIntents}`, ''],
      [`paying clients served during a ${floodSeconds} s flood`, `${payingServed}/${payingRequests} (${((100 * payingServed) / Math.max(1, payingRequests)).toFixed(1)} %)`, '100 %'],
      ['attack requests during the flood, of them rate_limited', `${attackRequests} (${rate(attackRequests / floodSeconds)}/s), ${attackLimited}`, ''],
      ['Stripe calls during the flood (the payers\' top-ups only)', String(stripeCallsDuringFlood), ''],
    ]);
    if (stripeCallsForRefuted !== 0) throw new Error('refuted requests reached Stripe');
    if (reached > chargeAttemptLimit) throw new Error('more charge attempts reached Stripe than the limit allows');
    if (payingServed !== payingRequests) throw new Error('a paying client was refused during the flood');
    return figures;
  } finally {
    await emulator.close();
  }
}

runWhenScript(import.meta.url, main);
