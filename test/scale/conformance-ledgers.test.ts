/**
 * The conformance suite at level `all` (the emulator as its Stripe backend,
 * so the ledger checks run too) against the reference server in a child
 * process on the shared ledgers whose key layout CI's own run
 * (scripts/conformance-reference.sh, on PGlite) does not exercise: one
 * Redis, and a Redis Cluster of three primaries and three replicas.
 */
import { describe, expect, it } from 'vitest';
import { runConformance } from '@stripe402/conformance';
import { startStack } from './fleet.ts';

describe.each([{ ledger: 'redis' as const }, { ledger: 'redis-cluster' as const }])('the reference server on a $ledger ledger', ({ ledger }) => {
  it('passes every conformance check at level all', async () => {
    const { emulator, serverSecret, fleet, stop } = await startStack(ledger, { workers: 1, port: 0 });
    try {
      const report = await runConformance({
        target: fleet.url,
        level: 'all',
        stripeUrl: emulator.url,
        stripeKey: emulator.secretKey,
        serverSecret,
        failingRoute: '/api/fail',
        seed: 1,
      });
      expect(report.checks.filter((check) => check.status === 'failed').map((check) => check.id)).toEqual([]);
      expect(report.summary.passed).toBeGreaterThan(80);
      // The ledger checks ran, not skipped for want of a Stripe backend.
      expect(report.checks.filter((check) => check.id.startsWith('11/') && check.status === 'passed').length).toBeGreaterThan(0);
    } finally {
      await stop();
    }
  }, 120_000);
});
