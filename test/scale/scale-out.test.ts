/**
 * Scale-out, the CI-sized part: reference-server processes sharing one
 * PostgreSQL ledger, and again one Redis ledger and one Redis Cluster
 * ledger (three primaries, three replicas), with group commit on (the
 * default). A race of concurrent spends is checked to the unit, and a mixed
 * load of spends, top-ups, failing requests and unknown client ids ends
 * with every ledger invariant holding. The long variants run on demand:
 * `npx tsx test/scale/long.ts` (see docs/reliability.md).
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from './scenarios.ts';
import { runSpendRace } from './spend-race.ts';

describe.each([
  { ledger: 'postgres' as const, workers: 2 },
  { ledger: 'redis' as const, workers: 2 },
  { ledger: 'redis-cluster' as const, workers: 2 },
  // PGlite is one process's database: the same race, on one process.
  { ledger: 'pglite' as const, workers: 1 },
])('$ledger ledger, $workers server processes', ({ ledger, workers }) => {
  it('concurrent spends report exact, distinct balances, never overdraw, and leave balance = journal', async () => {
    // 6 clients funded for 79 requests each (474 in all), 560 requests: the last ones find the balances empty.
    const race = await runSpendRace({ ledger, workers, clients: 6, requests: 560, concurrency: 48 });
    expect(race.problems).toEqual([]);
    expect(race.served).toBe(474);
    expect(race.refused).toBe(560 - 474);
    expect(race.exact).toEqual({ funded: 20, burst: 60, served: 20, finalBalance: 0 });
    expect(race.invariants.ok).toBe(true);
  }, 120_000);
});

describe.each([{ ledger: 'postgres' as const }, { ledger: 'redis' as const }, { ledger: 'redis-cluster' as const }])('mixed load on two processes sharing a $ledger ledger', ({ ledger }) => {
  it('holds every invariant: no balance below zero, balance = journal, charges = credits, served = paid', async () => {
    const result = await runScenario({ ledger, fault: 'none', workers: 2, cards: 10, virtualClients: 20, durationMs: 4_000, maxRequests: 2_500 });
    expect(result.problems).toEqual([]);
    expect(result.invariants.ok).toBe(true);
    expect(result.load.served).toBeGreaterThan(100);
    expect(result.load.topUps.succeeded).toBeGreaterThan(10);
    expect(result.load.restored).toBeGreaterThan(0);
    expect(result.load.unknownClientRefusals).toBeGreaterThan(0);
    // Without faults every answer arrives, so what the journal spent is exactly what clients saw served.
    expect(result.load.unknownOutcomes).toBe(0);
    expect(result.spentUnserved).toBe(0);
    expect(result.invariants.succeededPaymentIntents).toBe(result.invariants.creditedTopUps);
  }, 120_000);
});
