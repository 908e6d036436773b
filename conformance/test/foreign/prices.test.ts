/**
 * The conformance suite itself, property-tested over legal prices (issue 15,
 * item 2): fast-check generates legal route configurations (prices.ts), a
 * conforming server is started with each, and the suite must judge it with
 * no MUST failure and no level claimed over a skipped MUST check. Two
 * conforming servers: the reference server (on one in-memory PGlite ledger
 * shared by every configuration, each with its own server secret) and the
 * spec-alone server with every extension on or off. The runs here are few,
 * to keep `npm test` short; bench/conformance-prices.bench.ts runs 200.
 * A failure prints the configuration, the seed and every failed check.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '@stripe402/server/ledger';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { isLegal, offers, referenceConfig, specConfig } from './prices.ts';
import { judge, startReferenceTarget, startSpecTarget, verdictProblems } from './targets.ts';

/** Configurations per server in `npm test`; FOREIGN_PRICE_RUNS raises it locally. */
const RUNS = Number(process.env.FOREIGN_PRICE_RUNS ?? 2);
/** Property runs inside the suite per configuration (its model-based checks). */
const SUITE_RUNS = 3;

describe('the suite over legal prices', () => {
  let emulator: Emulator;
  let ledger: Ledger;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    ledger = await openLedger('pglite:memory');
  });
  afterAll(async () => {
    await ledger?.close();
    await emulator?.close();
  });

  it('generates only legal offers: minTopUp covers the amount, meets the minimum charge and keeps to the step', () => {
    fc.assert(
      fc.property(offers(), (generated) => generated.every(isLegal) && new Set(generated.map((o) => o.currency)).size === generated.length),
      { numRuns: 500 },
    );
  });

  it('passes the reference server at every generated legal price configuration', async () => {
    await fc.assert(
      fc.asyncProperty(referenceConfig(), async (config) => {
        const target = await startReferenceTarget(emulator, ledger, config);
        try {
          const report = await judge(emulator, target, { runs: SUITE_RUNS });
          expect(verdictProblems(report), JSON.stringify(config)).toEqual([]);
        } finally {
          await target.close();
        }
      }),
      // Each run is a whole conformance run: report the first counterexample rather than shrink through dozens more.
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 180_000);

  it('passes the spec-alone server at every generated legal price and option set', async () => {
    await fc.assert(
      fc.asyncProperty(specConfig(), async (config) => {
        const target = await startSpecTarget(emulator, config);
        try {
          const report = await judge(emulator, target, { runs: SUITE_RUNS });
          expect(verdictProblems(report), JSON.stringify(config)).toEqual([]);
        } finally {
          await target.close();
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 180_000);
});
