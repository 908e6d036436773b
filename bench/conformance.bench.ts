/**
 * The conformance suite's run time: `runConformance` at level `all`, with
 * the emulator as its Stripe backend (so the ledger-level checks run),
 * against the reference server in a child process on each ledger. Reports
 * the time, the checks and how many passed; a failing check fails the
 * benchmark, since a fast wrong answer means nothing.
 *
 *   npx tsx bench/conformance.bench.ts [pglite] [postgres] [redis] [redis-cluster]
 */
import { runConformance } from '@stripe402/conformance';
import { startStack } from '../test/scale/fleet.ts';
import type { LedgerKind } from '../test/scale/services.ts';
import { machineLine, table, ledgerArguments, runWhenScript } from './harness.ts';

export interface ConformanceRow {
  ledger: LedgerKind;
  seconds: number;
  checks: number;
  passed: number;
  failed: number;
  skipped: number;
  /** The three slowest checks, with their time. */
  slowest: string[];
}

async function benchLedger(kind: LedgerKind): Promise<ConformanceRow> {
  const { emulator, serverSecret, fleet, stop } = await startStack(kind, { workers: 1, port: 0 });
  try {
    const started = performance.now();
    const report = await runConformance({
      target: fleet.url,
      level: 'all',
      stripeUrl: emulator.url,
      stripeKey: emulator.secretKey,
      serverSecret,
      failingRoute: '/api/fail',
      seed: 1,
    });
    const seconds = (performance.now() - started) / 1000;
    const failed = report.checks.filter((check) => check.status === 'failed');
    if (failed.some((check) => check.severity === 'must')) {
      throw new Error(`${kind}: conformance failures: ${failed.map((check) => check.id).join(', ')}`);
    }
    const slowest = [...report.checks]
      .sort((a, b) => (b.durationMs ?? 0) - (a.durationMs ?? 0))
      .slice(0, 3)
      .map((check) => `${check.id} ${((check.durationMs ?? 0) / 1000).toFixed(1)} s`);
    return { ledger: kind, seconds, checks: report.checks.length, passed: report.summary.passed, failed: report.summary.failed, skipped: report.summary.skipped, slowest };
  } finally {
    await stop();
  }
}

export async function main(options: { ledgers?: LedgerKind[]; log?: (line: string) => void } = {}): Promise<ConformanceRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  log('conformance suite run time: level all, emulator backend, reference server in a child process');
  log(machineLine());
  const rows: ConformanceRow[] = [];
  for (const kind of options.ledgers ?? (['pglite', 'postgres', 'redis', 'redis-cluster'] as LedgerKind[])) rows.push(await benchLedger(kind));
  table(
    [['ledger', 'run time', 'checks', 'passed', 'failed', 'skipped', 'slowest checks'], ...rows.map((row) => [row.ledger, `${row.seconds.toFixed(1)} s`, String(row.checks), String(row.passed), String(row.failed), String(row.skipped), row.slowest.join(', ')])],
    log,
  );
  return rows;
}

runWhenScript(import.meta.url, () => {
  const ledgers = ledgerArguments();
  return main(ledgers ? { ledgers } : {});
});
