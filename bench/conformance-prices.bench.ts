/**
 * The price property of the conformance suite at length (issue 15, item 2):
 * 200 legal route configurations by default, drawn by fast-check from a
 * fixed seed, each served by a conforming server and judged at level `all`.
 * Every configuration runs, even after a failure, and every counterexample
 * is printed with its configuration, so one run lists all of them; the run
 * time, and the spread of the per-configuration times, are the figures.
 * `npm test` runs the same property with a handful of configurations
 * (conformance/test/foreign/prices.test.ts).
 *
 *   npx tsx bench/conformance-prices.bench.ts [reference] [spec]
 *   BENCH_PRICE_CONFIGS=50 BENCH_PRICE_SEED=7 npx tsx bench/conformance-prices.bench.ts reference
 */
import fc from 'fast-check';
import { openLedger } from '@stripe402/server/ledger';
import { startEmulator } from '@stripe402/stripe-emulator';
import { referenceConfig, specConfig } from '../conformance/test/foreign/prices.ts';
import { judge, mustFailures, skippedUnderClaim, startReferenceTarget, startSpecTarget, verdictProblems, type Target } from '../conformance/test/foreign/targets.ts';
import { machineLine, runWhenScript, table } from './harness.ts';

export type PriceServer = 'reference' | 'spec';

export interface PriceRow {
  server: PriceServer;
  configs: number;
  seconds: number;
  medianSeconds: number;
  slowestSeconds: number;
  counterexamples: number;
  /** Per check id: in how many configurations it failed (MUST) or was skipped under a claimed level. */
  byCheck: Map<string, { failed: number; skippedUnderClaim: number }>;
}

const SUITE_RUNS = 3;

export async function main(options: { servers?: PriceServer[]; configs?: number; seed?: number; log?: (line: string) => void } = {}): Promise<PriceRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const count = options.configs ?? (Number(process.env.BENCH_PRICE_CONFIGS) || 200);
  const seed = options.seed ?? (Number(process.env.BENCH_PRICE_SEED) || 402);
  log(`price property: ${count} legal configurations per server, seed ${seed}, level all, emulator backend`);
  log(machineLine());
  const emulator = await startEmulator({ port: 0 });
  const ledger = await openLedger('pglite:memory');
  const rows: PriceRow[] = [];
  try {
    for (const server of options.servers ?? (['reference', 'spec'] as PriceServer[])) {
      const configs: object[] = server === 'reference' ? fc.sample(referenceConfig(), { numRuns: count, seed }) : fc.sample(specConfig(), { numRuns: count, seed });
      const times: number[] = [];
      let counterexamples = 0;
      const byCheck = new Map<string, { failed: number; skippedUnderClaim: number }>();
      const tally = (id: string, field: 'failed' | 'skippedUnderClaim') => {
        const entry = byCheck.get(id) ?? { failed: 0, skippedUnderClaim: 0 };
        entry[field] += 1;
        byCheck.set(id, entry);
      };
      const started = performance.now();
      for (const [index, config] of configs.entries()) {
        const begun = performance.now();
        const target: Target =
          server === 'reference'
            ? await startReferenceTarget(emulator, ledger, config as Parameters<typeof startReferenceTarget>[2])
            : await startSpecTarget(emulator, config as Parameters<typeof startSpecTarget>[1]);
        try {
          const report = await judge(emulator, target, { runs: SUITE_RUNS, seed });
          const problems = verdictProblems(report);
          for (const check of mustFailures(report)) tally(check.id, 'failed');
          for (const check of skippedUnderClaim(report)) tally(check.id, 'skippedUnderClaim');
          if (problems.length > 0) {
            counterexamples += 1;
            log(`\n${server} #${index}: counterexample ${JSON.stringify(config)}\n${problems.join('\n')}`);
          }
        } finally {
          await target.close();
        }
        times.push((performance.now() - begun) / 1000);
      }
      const sorted = [...times].sort((a, b) => a - b);
      rows.push({
        server,
        configs: configs.length,
        seconds: (performance.now() - started) / 1000,
        medianSeconds: sorted[Math.floor(sorted.length / 2)] ?? 0,
        slowestSeconds: sorted[sorted.length - 1] ?? 0,
        counterexamples,
        byCheck,
      });
    }
  } finally {
    await ledger.close();
    await emulator.close();
  }
  table(
    [
      ['server', 'configurations', 'run time', 'median per configuration', 'slowest', 'counterexamples'],
      ...rows.map((row) => [row.server, String(row.configs), `${row.seconds.toFixed(1)} s`, `${row.medianSeconds.toFixed(1)} s`, `${row.slowestSeconds.toFixed(1)} s`, String(row.counterexamples)]),
    ],
    log,
  );
  for (const row of rows.filter((r) => r.byCheck.size > 0)) {
    log(`\n${row.server}: configurations in which a check failed or was skipped under a claimed level`);
    const entries = [...row.byCheck.entries()].sort((a, b) => b[1].failed + b[1].skippedUnderClaim - (a[1].failed + a[1].skippedUnderClaim));
    table([['check', 'failed (MUST)', 'skipped under a claimed level'], ...entries.map(([id, n]) => [id, String(n.failed), String(n.skippedUnderClaim)])], log);
  }
  return rows;
}

runWhenScript(import.meta.url, async () => {
  const servers = process.argv.slice(2).filter((arg): arg is PriceServer => arg === 'reference' || arg === 'spec');
  const rows = await main(servers.length > 0 ? { servers } : {});
  // A counterexample is a false failure of the suite (or a bug of a conforming server): the benchmark fails.
  const found = rows.reduce((sum, row) => sum + row.counterexamples, 0);
  if (found > 0) throw new Error(`${found} counterexamples to the price property (listed above)`);
});
