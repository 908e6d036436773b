/**
 * One scale-out run, with or without a fault, from start to verdict:
 * several reference-server processes sharing one PostgreSQL or Redis
 * ledger, the emulator as Stripe (webhooks delivered to the servers), the
 * load of load.ts, one fault injected in the middle of it, recovery only by
 * the protocol's own paths (the client's retry with the same
 * idempotencyKey, the payment_intent.succeeded webhook, the reconcile
 * command), and then the invariants of invariants.ts plus what the clients
 * saw held against the ledger:
 *
 * - every request a client saw served was paid for durably (LEDG-7): per
 *   client, the journal's net spends are at least the prices of the
 *   requests answered 200, and exceed them by no more than the requests
 *   whose answer was lost;
 * - ids nobody funded never got an account;
 * - no answer broke the protocol (load.ts).
 *
 * The CI suites and the long on-demand runner (long.ts) call runScenario
 * with different sizes.
 */
import { randomBytes } from 'node:crypto';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { createStripeClient, StripeSdkGateway } from '@stripe402/server';
import type { Ledger } from '@stripe402/server/ledger';
import { deploymentIdOf, reconcile } from '@stripe402/server';
import type { PaidRouteConfig } from '@stripe402/server';
import { startFleet, killIfOurs, type Fleet } from './fleet.ts';
import { checkInvariants, summarizeInvariants, type InvariantReport } from './invariants.ts';
import { describeLoad, runLoad, type LoadRoute, type LoadStats } from './load.ts';
import { createCards } from './protocol.ts';
import calculateSlot from 'cluster-key-slot';
import { accountKeyBase } from '../../reference/server/ledger/redis.ts';
import { freePort, ledgerTarget, startPrivateRedis, terminatePostgresConnections, type LedgerTarget, type PrivateRedis } from './services.ts';

export type SharedLedgerKind = 'postgres' | 'redis' | 'redis-cluster';

export const FAULTS = [
  'none',
  'kill-server',
  'restart-redis',
  'drop-postgres',
  'stripe-500',
  'stripe-timeout',
  'stripe-lost-response',
  'webhook-replay',
  'failover-redis-primary',
] as const;
export type FaultName = (typeof FAULTS)[number];

/** Prices that make top-ups frequent: a top-up pays for 5 to 80 requests. */
export const SCALE_ROUTES: PaidRouteConfig[] = [
  { method: 'GET', path: '/api/joke', amount: 10_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 200_000 },
  { method: 'GET', path: '/api/weather', amount: 2_500, currency: 'usd', minTopUp: 50_000, maxTopUp: 200_000 },
  { method: 'GET', path: '/api/fail', amount: 10_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 200_000 },
];

const LOAD_ROUTES: LoadRoute[] = [
  { path: '/api/joke', price: 10_000, minTopUp: 50_000, maxTopUp: 200_000, weight: 45 },
  { path: '/api/weather', price: 2_500, minTopUp: 50_000, maxTopUp: 200_000, weight: 45 },
  { path: '/api/fail', price: 10_000, minTopUp: 50_000, maxTopUp: 200_000, weight: 10, failing: true },
];

export interface ScenarioOptions {
  ledger: SharedLedgerKind;
  fault: FaultName;
  /** Server processes sharing the ledger. */
  workers: number;
  /** Distinct cards, so distinct client ids (at most 15). */
  cards: number;
  virtualClients: number;
  durationMs: number;
  maxRequests: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  options: Omit<ScenarioOptions, 'log'>;
  /** What was injected, and when. */
  faultDetail: string;
  load: LoadStats;
  /** PaymentIntents reconcile credited after the load (charges no client retry or webhook had credited). */
  reconciled: number;
  /** Top-ups answered with a chargeId whose PaymentIntent the ledger did not hold once the load ended (before webhooks and reconcile). */
  acknowledgedCreditsLost: number;
  /** The first of those, each with when it was acknowledged (seconds since the load started, the clock of faultDetail). */
  lostCredits: string[];
  webhookDeliveries: number;
  invariants: InvariantReport;
  /** Problems of the client-side checks (LEDG-7, unknown ids, protocol answers). */
  problems: string[];
  /** Units the journal spent beyond what clients saw served: requests whose answer was lost or 503 (bounded by load.unknownUnits). */
  spentUnserved: number;
  ok: boolean;
}

interface FaultPlan {
  detail: string[];
  /**
   * Called on every request the load sends; fires the fault at its moments.
   * `progressMs` is how far the load has gone, in milliseconds of its
   * duration: elapsed time, or the share of its request budget already sent
   * if that is further, so that a load that ends on its request budget early
   * (a fast machine) still meets every fault in its middle.
   */
  tick(progressMs: number): void;
  /** Ends the fault (restarts what was stopped) before recovery and checks. */
  finish(): Promise<void>;
  /** Attempts per top-up before a client gives up (default: the load's). */
  topUpAttempts?: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Fires `action` once when the load passes each of `fractions` of its duration. */
function atMoments(durationMs: number, fractions: number[], action: (index: number) => void): (progressMs: number) => void {
  const pending = fractions.map((fraction) => fraction * durationMs);
  let next = 0;
  return (progressMs) => {
    while (next < pending.length && progressMs >= pending[next]!) action(next++);
  };
}

function planFault(
  fault: FaultName,
  context: { emulator: Emulator; fleet: Fleet; target: LedgerTarget; redis?: PrivateRedis; durationMs: number; clientIds: string[]; loadClockS: () => string },
): FaultPlan {
  const { emulator, fleet, target, durationMs } = context;
  const detail: string[] = [];
  const background: Array<Promise<unknown>> = [];
  const chargePath = { method: 'POST', path: '/v1/payment_intents' };
  switch (fault) {
    case 'none':
      return { detail, tick: () => {}, finish: async () => {} };
    case 'kill-server': {
      // Slow charges, so a kill lands while top-ups are at Stripe.
      emulator.faults.arm({ match: chargePath, kind: 'latency', ms: 150, times: 'unlimited' });
      // Each kill waits until every process listens again, so some server always does, as behind a load balancer.
      let due = 0;
      const moments = atMoments(durationMs, [0.3, 0.6], () => void due++);
      const tick = (progressMs: number) => {
        moments(progressMs);
        if (due === 0 || fleet.workers().length < fleet.size) return;
        const victim = fleet.workers()[0]!;
        due--;
        if (killIfOurs(victim)) detail.push(`kill -9 of server pid ${victim} at ${Math.round((100 * progressMs) / durationMs)} % of the load`);
      };
      return {
        detail,
        tick,
        finish: async () => {
          emulator.faults.clear();
          await fleet.waitForWorkers(1);
        },
      };
    }
    case 'restart-redis': {
      const redis = context.redis!;
      const tick = atMoments(durationMs, [0.35], () => {
        background.push(
          (async () => {
            await redis.shutdown();
            detail.push('Redis shut down (SHUTDOWN NOSAVE)');
            await sleep(1_500);
            await redis.start();
            detail.push('restarted 1.5 s later from its append-only file');
          })(),
        );
      });
      return { detail, tick, finish: async () => void (await Promise.all(background)) };
    }
    case 'failover-redis-primary': {
      // The primary holding the first client's account is killed (SIGKILL)
      // while paid requests and top-ups run; its replica takes over after
      // the cluster's node timeout, and the killed node is started again a
      // second later, as a supervisor would, to rejoin as its replica. Until
      // then that shard has no replica to hold a credit, so its credits wait
      // and fail (503), and clients repeat their top-ups. Slow charges keep
      // top-ups in flight.
      const cluster = target.cluster!;
      emulator.faults.arm({ match: chargePath, kind: 'latency', ms: 50, times: 'unlimited' });
      const slot = calculateSlot(accountKeyBase(target.keyPrefix!, { currency: 'usd', clientId: context.clientIds[0]! }));
      const tick = atMoments(durationMs, [0.3], () => {
        background.push(
          (async () => {
            const primary = await cluster.primaryOf(slot);
            const replica = await cluster.replicaOf(primary);
            const killedAt = Date.now();
            await cluster.kill(primary);
            detail.push(`kill -9 of the Redis primary on port ${primary} (slot ${slot}) at ${context.loadClockS()} s of the load`);
            await cluster.waitForPrimary(replica);
            detail.push(`its replica on port ${replica} took over ${((Date.now() - killedAt) / 1000).toFixed(1)} s later (at ${context.loadClockS()} s)`);
            await sleep(1_000);
            await cluster.restart(primary);
            detail.push(`the killed node rejoined as its replica ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (at ${context.loadClockS()} s)`);
          })(),
        );
      });
      return {
        detail,
        tick,
        finish: async () => {
          emulator.faults.clear();
          await Promise.all(background);
        },
      };
    }
    case 'drop-postgres': {
      const tick = atMoments(durationMs, [0.25, 0.5, 0.75], () => {
        background.push(
          terminatePostgresConnections(target.applicationName!).then((count) => detail.push(`pg_terminate_backend of ${count} ledger connections`)),
        );
      });
      return { detail, tick, finish: async () => void (await Promise.all(background)) };
    }
    case 'stripe-500': {
      // A window in which every charge answers 500: the SDK's retries fail too, the server answers 503, the client repeats its key.
      let windowRule = '';
      const tick = atMoments(durationMs, [0.2, 0.45], (index) => {
        if (index === 0) windowRule = emulator.faults.arm({ match: chargePath, kind: 'status500', times: 'unlimited' }).id;
        else {
          const hits = emulator.faults.list().find((armed) => armed.id === windowRule)?.hits ?? 0;
          emulator.faults.clear();
          detail.push(`every charge answered 500 for ${(0.25 * durationMs) / 1000} s (${hits} charge calls)`);
        }
      });
      return { detail, tick, finish: async () => emulator.faults.clear() };
    }
    case 'stripe-timeout': {
      // Longer than the servers' Stripe timeout (2.5 s): the SDK gives up on the call and retries it.
      let windowRule = '';
      const tick = atMoments(durationMs, [0.2, 0.45], (index) => {
        if (index === 0) windowRule = emulator.faults.arm({ match: chargePath, kind: 'timeout', ms: 3_000, times: 'unlimited' }).id;
        else {
          const hits = emulator.faults.list().find((armed) => armed.id === windowRule)?.hits ?? 0;
          emulator.faults.clear();
          detail.push(`every charge hung 3 s then dropped, for ${(0.25 * durationMs) / 1000} s (${hits} charge calls)`);
        }
      });
      return { detail, tick, finish: async () => emulator.faults.clear() };
    }
    case 'stripe-lost-response':
    case 'webhook-replay': {
      // Charges succeed but their responses are lost, SDK retries included. Clients give up after 2
      // attempts, so some charges are left to recovery: reconcile alone without a webhook endpoint
      // (stripe-lost-response), the webhook, delivered again newest first, with one (webhook-replay).
      let windowRule = '';
      const tick = atMoments(durationMs, [0.2, 0.4], (index) => {
        if (index === 0) windowRule = emulator.faults.arm({ match: chargePath, kind: 'lose_response', times: 'unlimited' }).id;
        else {
          const hits = emulator.faults.list().find((armed) => armed.id === windowRule)?.hits ?? 0;
          emulator.faults.clear();
          detail.push(`every charge succeeded but lost its response, for ${(0.2 * durationMs) / 1000} s (${hits} charge calls)`);
        }
      });
      if (fault === 'stripe-lost-response') {
        emulator.setWebhook(null);
        detail.push('no webhook endpoint');
        return { detail, tick, finish: async () => emulator.faults.clear(), topUpAttempts: 2 };
      }
      const resendAll = async (label: string) => {
        const succeeded = emulator.state.events().filter((e) => e.event.type === 'payment_intent.succeeded');
        // Newest first: out of order, and every one of them a second (or third) time.
        for (const { event } of [...succeeded].reverse()) {
          await fetch(`${emulator.url}/_emulator/events/${event.id}/resend`, { method: 'POST', headers: { 'content-type': 'application/json' } }).then((r) => r.arrayBuffer());
        }
        detail.push(`${succeeded.length} payment_intent.succeeded events delivered again, newest first (${label})`);
      };
      const replay = atMoments(durationMs, [0.6], () => void background.push(resendAll('during the load')));
      return {
        detail,
        tick: (progressMs) => {
          tick(progressMs);
          replay(progressMs);
        },
        finish: async () => {
          emulator.faults.clear();
          await Promise.all(background);
          await emulator.webhooksIdle(15_000).catch(() => undefined);
          await resendAll('after the load');
        },
        topUpAttempts: 2,
      };
    }
  }
}

/** Net units the journal says an account spent: spends minus restores. */
async function journalNetSpent(ledger: Ledger, clientId: string): Promise<number> {
  const journal = await ledger.journal({ clientId, currency: 'usd' });
  return journal.reduce((sum, entry) => (entry.kind === 'spend' || entry.kind === 'restore' ? sum - entry.delta : sum), 0);
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const emulator = await startEmulator({ port: 0 });
  const redis = options.fault === 'restart-redis' ? await startPrivateRedis() : undefined;
  const target = await ledgerTarget(options.ledger, undefined, redis?.url);
  const serverSecret = randomBytes(32).toString('hex');
  const webhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
  let fleet: Fleet | undefined;
  try {
    fleet = await startFleet(
      {
        ...target.fleetLedger,
        stripeUrl: emulator.url,
        webhookSecret,
        routes: SCALE_ROUTES,
        workers: options.workers,
        // A fixed port: replacements of killed processes listen where clients already connect.
        port: await freePort(),
        stripeTimeoutMs: 2_500,
        // Above the longest charge (3 attempts of 2.5 s and backoff), far below the 60 s default:
        // a process killed holding a client's top-up lock blocks that client for this long.
        topUpLockTtlMs: 12_000,
      },
      { serverSecret },
    );
    const cards = await createCards(emulator.stripe(), serverSecret, options.cards);
    emulator.setWebhook({ url: `${fleet.url}/stripe402/webhook`, secret: webhookSecret, retryDelaysMs: [200, 1_000, 2_000] });
    let loadStarted = Date.now();
    const plan = planFault(options.fault, {
      emulator,
      fleet,
      target,
      ...(redis ? { redis } : {}),
      durationMs: options.durationMs,
      clientIds: cards.map((card) => card.clientId),
      loadClockS: () => ((Date.now() - loadStarted) / 1000).toFixed(2),
    });
    loadStarted = Date.now();
    log(`${options.ledger}, ${options.workers} processes, fault ${options.fault}: load for ${options.durationMs} ms or ${options.maxRequests} requests`);
    const load = await runLoad({
      url: fleet.url,
      cards,
      routes: LOAD_ROUTES,
      virtualClients: options.virtualClients,
      durationMs: options.durationMs,
      maxRequests: options.maxRequests,
      requestTimeoutMs: 15_000,
      ...(plan.topUpAttempts ? { topUpAttempts: plan.topUpAttempts } : {}),
      onTick: (sent) => plan.tick(Math.max(Date.now() - loadStarted, (sent.requests / options.maxRequests) * options.durationMs)),
    });
    await plan.finish();
    log(`  ${describeLoad(load)}`);

    // Top-ups a client was told were charged (chargeId) must be credited
    // before any recovery runs: an acknowledged credit is never lost.
    const ledger = await target.openLedger();
    try {
      let acknowledgedCreditsLost = 0;
      const lostCredits: string[] = [];
      for (const [paymentIntentId, atMs] of load.charges) {
        if (await ledger.isCredited(paymentIntentId)) continue;
        acknowledgedCreditsLost++;
        const started = await ledger.startedTopUp(paymentIntentId);
        if (lostCredits.length < 20) lostCredits.push(`${paymentIntentId} acknowledged at ${(atMs / 1000).toFixed(2)} s${started ? `, recorded as started for ${started.clientId.slice(0, 8)}` : ''}`);
      }

      // Recovery, by the protocol's own paths only: webhooks still in flight, then reconcile.
      await emulator.webhooksIdle(15_000).catch(() => undefined);
      const gateway = new StripeSdkGateway(createStripeClient('sk_test_emulator', { apiUrl: emulator.url }));
      const report = await reconcile({ gateway, ledger }, { since: new Date(loadStarted - 60_000), deploymentId: deploymentIdOf(serverSecret) });
      const webhookDeliveries = emulator.state.events().reduce((sum, e) => sum + e.deliveries.length, 0);
      await fleet.stop();

      const clientIds = new Set(cards.map((card) => card.clientId));
      const invariants = await checkInvariants(ledger, emulator.state.paymentIntents());
      const problems = [...load.problems];
      for (const account of invariants.accounts > 0 ? await ledger.accounts() : []) {
        if (!clientIds.has(account.clientId)) problems.push(`an account exists for a client id nobody funded`);
      }
      for (const card of cards) {
        const journalNet = await journalNetSpent(ledger, card.clientId);
        const served = load.servedUnits.get(card.clientId) ?? 0;
        if (journalNet < served) problems.push(`client ${card.clientId.slice(0, 8)}: served ${served} units, but the journal holds only ${journalNet} (LEDG-7)`);
      }
      const totalNet = (await Promise.all(cards.map((card) => journalNetSpent(ledger, card.clientId)))).reduce((a, b) => a + b, 0);
      const totalServed = [...load.servedUnits.values()].reduce((a, b) => a + b, 0);
      if (totalNet - totalServed > load.unknownUnits) {
        const byRoute = new Map<string, number>();
        for (const card of cards) {
          for (const entry of await ledger.journal({ clientId: card.clientId, currency: 'usd' })) {
            if (entry.route !== undefined && (entry.kind === 'spend' || entry.kind === 'restore')) byRoute.set(entry.route, (byRoute.get(entry.route) ?? 0) - entry.delta);
          }
        }
        const routes = [...byRoute].map(([route, net]) => `${route}: journal ${net}, served ${load.servedUnitsByRoute.get(route.split(' ')[1]!) ?? 0}`).join('; ');
        problems.push(`the journal holds ${totalNet - totalServed} units of spends nobody saw served, more than the ${load.unknownUnits} units of requests whose answer was lost or 503 (${routes})`);
      }
      const result: ScenarioResult = {
        options: { ledger: options.ledger, fault: options.fault, workers: options.workers, cards: options.cards, virtualClients: options.virtualClients, durationMs: options.durationMs, maxRequests: options.maxRequests },
        faultDetail: plan.detail.join('; ') || 'none',
        load,
        reconciled: report.credited.length,
        acknowledgedCreditsLost,
        lostCredits,
        webhookDeliveries,
        spentUnserved: totalNet - totalServed,
        invariants,
        problems,
        ok: invariants.ok && problems.length === 0,
      };
      log(`  fault: ${result.faultDetail}; reconcile credited ${result.reconciled}; ${summarizeInvariants(invariants)}${problems.length ? `; problems: ${problems.slice(0, 5).join(' | ')}` : ''}`);
      return result;
    } finally {
      await ledger.close();
    }
  } finally {
    await fleet?.stop();
    await emulator.close();
    await target.dispose().catch(() => undefined);
    await redis?.dispose();
  }
}

/** The fault table row of a result, as docs/reliability.md shows it. */
export function tableRow(result: ScenarioResult): string[] {
  const { options, load } = result;
  return [
    options.fault,
    `${options.ledger}, ${options.workers} processes`,
    `${options.virtualClients} clients on ${options.cards} cards, ${(load.elapsedMs / 1000).toFixed(1)} s`,
    `${load.requests} (${load.served} served, ${load.topUps.started} top-ups, ${load.topUps.retried} retried, ${[...load.statuses].filter(([s]) => s === 0 || s === 503).reduce((a, [, n]) => a + n, 0)} unanswered or 503)`,
    result.faultDetail,
    `${result.ok ? 'held' : 'BROKEN'}: ${result.invariants.succeededPaymentIntents} charges = ${result.invariants.creditedTopUps} credits (${result.reconciled} by reconcile), no balance < 0, balance = journal, ` +
      `spent but not seen served ${result.spentUnserved} units (bound ${load.unknownUnits})${result.problems.length ? `; ${result.problems.length} problems` : ''}`,
  ];
}
