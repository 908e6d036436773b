/**
 * Bad input at volume, the CI-sized part (fuzz.ts): a bounded number of
 * fast-check generated requests with bad `payment` headers naming a funded
 * client and a real card, random other headers, and the discovery endpoint
 * under odd methods and paths. No 5xx, no crash, no ledger or Stripe change,
 * and a flat heap. On a failure the message names the seed; replay with
 * `FUZZ_SEED=<seed> npx tsx test/scale/long.ts fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './fuzz.ts';

describe('bad input at volume', () => {
  it('never answers 5xx, never crashes, changes neither the ledger nor Stripe, and keeps the heap flat', async () => {
    const result = await runFuzz({ ledger: 'postgres', requests: 3_000 });
    const context = `seed ${result.seed}`;
    expect(result.requests, context).toBe(3_000);
    expect(result.failures, context).toEqual([]);
    expect(result.serverAlive, context).toBe(true);
    expect(result.ledgerChanged, context).toEqual([]);
    expect(result.stripeChanged, context).toEqual([]);
    // Most requests reached the paywall and were refused as payments, not just dropped by the HTTP layer.
    expect(result.statuses.get(402) ?? 0, context).toBeGreaterThan(600);
    // Warm at a third of the run; the remaining two thirds may not grow the heap by more than 4 MB (about 2 KB a request).
    expect(result.heap.end - result.heap.warm, context).toBeLessThan(4 * 1024 * 1024);
  }, 120_000);
});
