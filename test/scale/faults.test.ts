/**
 * Faults under load, the CI-sized part: two reference-server processes
 * sharing a ledger, a bounded mixed load, one fault in the middle of it,
 * recovery only by the protocol's own paths (the client repeating its
 * idempotencyKey, the webhook, reconcile), then the ledger invariants and
 * the client-side checks of scenarios.ts. Longer runs of the same
 * scenarios: `npx tsx test/scale/long.ts` (docs/reliability.md).
 */
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { openLedger } from '@stripe402/server/ledger';
import { accountKeyBase } from '../../reference/server/ledger/redis.ts';
import { startRedisCluster } from './redis-cluster.ts';
import { runScenario, type FaultName, type SharedLedgerKind } from './scenarios.ts';

/** Each fault, the ledger it runs on, and what its report must show for the fault to have happened. */
const CASES: Array<{ fault: FaultName; ledger: SharedLedgerKind; title: string; evidence: RegExp; durationMs?: number }> = [
  // Longer: the second kill waits until the first victim's replacement listens, which takes seconds on a busy machine.
  { fault: 'kill-server', ledger: 'postgres', title: 'a server process killed with SIGKILL in the middle of top-ups', evidence: /kill -9 of server pid \d+/, durationMs: 7_000 },
  { fault: 'restart-redis', ledger: 'redis', title: 'Redis shut down and restarted during the load', evidence: /shut down .*restarted/ },
  { fault: 'drop-postgres', ledger: 'postgres', title: "the ledger's PostgreSQL connections terminated during the load", evidence: /pg_terminate_backend of [1-9]/ },
  { fault: 'stripe-500', ledger: 'redis', title: 'Stripe answering 500 to every charge for a while', evidence: /answered 500 .*\([1-9]\d* charge calls\)/ },
  { fault: 'stripe-timeout', ledger: 'postgres', title: 'Stripe hanging on every charge past the timeout for a while', evidence: /hung .*\([1-9]\d* charge calls\)/ },
  { fault: 'stripe-lost-response', ledger: 'redis', title: 'successful charges whose responses are lost, with no webhook endpoint', evidence: /lost its response.*\([1-9]\d* charge calls\)/ },
  { fault: 'webhook-replay', ledger: 'postgres', title: 'lost charge responses, then every webhook delivered again, newest first', evidence: /[1-9]\d* payment_intent\.succeeded events delivered again, newest first \(after the load\)/ },
];

describe('invariants after a fault under load', () => {
  for (const { fault, ledger, title, evidence, durationMs } of CASES) {
    it(`after ${title} (${ledger}), charges equal credits, no balance is below zero, balance equals journal, nothing was served unpaid`, async () => {
      const result = await runScenario({ ledger, fault, workers: 2, cards: 8, virtualClients: 16, durationMs: durationMs ?? 4_000, maxRequests: 1_500 });
      expect(result.problems).toEqual([]);
      expect(result.invariants.negative).toEqual([]);
      expect(result.invariants.journalMismatch).toEqual([]);
      expect(result.invariants.duplicateCredits).toEqual([]);
      expect(result.invariants.conservation).toEqual([]);
      // The fault really happened, and the load went on around it.
      expect(result.faultDetail).toMatch(evidence);
      expect(result.load.served).toBeGreaterThan(50);
      expect(result.invariants.succeededPaymentIntents).toBeGreaterThan(0);
      // Spent but not seen served: only requests whose answer was lost or 503, never more.
      expect(result.spentUnserved).toBeLessThanOrEqual(result.load.unknownUnits);
    }, 150_000);
  }
});

describe('a Redis Cluster primary failing over under load', () => {
  it('loses no acknowledged credit: charges equal credits, no balance is below zero, every journal sums to its balance', async () => {
    const result = await runScenario({ ledger: 'redis-cluster', fault: 'failover-redis-primary', workers: 2, cards: 8, virtualClients: 16, durationMs: 6_000, maxRequests: 2_000 });
    expect(result.faultDetail).toMatch(/kill -9 of the Redis primary on port \d+ .*its replica on port \d+ took over.*rejoined as its replica/);
    // Every top-up answered with a chargeId was in the ledger before any webhook or reconcile ran.
    expect({ lost: result.acknowledgedCreditsLost, first: result.lostCredits, fault: result.faultDetail }).toEqual({ lost: 0, first: [], fault: result.faultDetail });
    expect(result.invariants.negative).toEqual([]);
    expect(result.invariants.journalMismatch).toEqual([]);
    expect(result.invariants.duplicateCredits).toEqual([]);
    expect(result.invariants.conservation).toEqual([]);
    expect(result.invariants.succeededPaymentIntents).toBe(result.invariants.creditedTopUps);
    // Served requests were all paid for: no acknowledged spend was lost either (LEDG-7).
    expect(result.problems).toEqual([]);
    expect(result.load.served).toBeGreaterThan(50);
    expect(result.load.topUps.succeeded).toBeGreaterThan(5);
    expect(result.spentUnserved).toBeLessThanOrEqual(result.load.unknownUnits);
  }, 150_000);
});

describe('a Redis Cluster whose new primary stalls while the killed node, restarted empty, has not synchronised', () => {
  it('keeps an acknowledged credit: the empty node is not promoted (cluster-replica-validity-factor stays positive)', async () => {
    const cluster = await startRedisCluster();
    const ledger = await openLedger(cluster.url, { keyPrefix: 'stall:' });
    try {
      const account = { currency: 'usd', clientId: randomBytes(32).toString('hex') };
      expect(await ledger.creditTopUp({ ...account, paymentIntentId: `pi_stall_${randomBytes(6).toString('hex')}`, units: 500, chargedMinor: 5 })).toMatchObject({ credited: true, balance: 500 });
      const primary = await cluster.primaryOf(calculateSlot(accountKeyBase('stall:', account)));
      const replica = await cluster.replicaOf(primary);
      await cluster.kill(primary);
      await cluster.waitForPrimary(replica);
      // The new primary stalls before the killed node is back, so that node starts empty and cannot synchronise.
      cluster.stall(replica);
      try {
        await cluster.start(primary);
        await expect.poll(async () => (await cluster.role(primary)).role, { timeout: 15_000, interval: 100 }).toBe('replica');
        // Long past the node timeout (1 s): the other primaries mark the stalled one failed, and its only replica is the empty node.
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        expect(await cluster.role(primary)).toMatchObject({ role: 'replica', linked: false });
      } finally {
        cluster.resume(replica);
      }
      await expect.poll(async () => cluster.role(primary), { timeout: 20_000, interval: 200 }).toEqual({ role: 'replica', primaryPort: replica, linked: true });
      expect(await ledger.balance(account)).toBe(500);
      expect(await ledger.journal(account)).toHaveLength(1);
    } finally {
      await ledger.close();
      await cluster.dispose();
    }
  }, 90_000);
});
