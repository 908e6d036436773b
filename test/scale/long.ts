/**
 * The long, on-demand variants of the scale, fault and fuzz suites: the
 * same scenarios as the CI tests with more processes, clients, time and
 * requests, printing the fault table of docs/reliability.md (markdown).
 * Bounded like the CI ones, only larger; exits 1 when an invariant broke.
 *
 *   npx tsx test/scale/long.ts                 # everything (about 6 minutes)
 *   npx tsx test/scale/long.ts faults          # scale | race | faults | fuzz
 *   npx tsx test/scale/long.ts faults --ledger redis --workers 3 --duration 30 --requests 30000
 *   FUZZ_SEED=123 npx tsx test/scale/long.ts fuzz
 */
import { FAULTS, runScenario, tableRow, type FaultName, type ScenarioResult, type SharedLedgerKind } from './scenarios.ts';
import { runFuzz } from './fuzz.ts';
import { runSpendRace } from './spend-race.ts';
import type { LedgerKind } from './services.ts';

function option(argv: string[], name: string): string | undefined {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : undefined;
}

/** Which ledger each fault runs on when none is chosen: the ones the fault is about, otherwise both in turn. */
const FAULT_LEDGERS: Record<FaultName, SharedLedgerKind[]> = {
  none: ['postgres', 'redis'],
  'kill-server': ['postgres', 'redis'],
  'restart-redis': ['redis'],
  'drop-postgres': ['postgres'],
  'stripe-500': ['postgres', 'redis'],
  'stripe-timeout': ['redis'],
  'stripe-lost-response': ['postgres'],
  'webhook-replay': ['redis'],
  'failover-redis-primary': ['redis-cluster'],
};

function markdownTable(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

async function main(argv: string[]): Promise<boolean> {
  const what = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'all';
  const ledger = option(argv, 'ledger') as SharedLedgerKind | undefined;
  const workers = Number(option(argv, 'workers') ?? 3);
  const durationMs = Number(option(argv, 'duration') ?? 20) * 1000;
  const maxRequests = Number(option(argv, 'requests') ?? 20_000);
  let ok = true;

  if (what === 'all' || what === 'race') {
    console.log(`\n## Concurrent spends across ${workers} processes, checked to the unit\n`);
    const rows: string[][] = [];
    for (const kind of (ledger ? [ledger] : ['postgres', 'redis', 'pglite']) as LedgerKind[]) {
      const processes = kind === 'pglite' ? 1 : workers;
      const race = await runSpendRace({ ledger: kind, workers: processes, clients: 12, requests: 1_200, concurrency: 96 });
      ok &&= race.problems.length === 0 && race.invariants.ok;
      rows.push([kind, String(processes), `${race.served} served, ${race.refused} refused`, `${race.exact.served} of ${race.exact.burst} served, final balance ${race.exact.finalBalance}`, race.problems.length === 0 && race.invariants.ok ? 'held' : `BROKEN: ${race.problems.slice(0, 3).join('; ')}`]);
    }
    console.log(markdownTable(['ledger', 'processes', 'race (12 clients, 96 in flight)', 'funded for 20, burst of 60', 'exact balances, no overdraft, balance = journal'], rows));
  }

  if (what === 'all' || what === 'scale' || what === 'faults') {
    const faults: FaultName[] = what === 'scale' ? ['none'] : what === 'faults' ? FAULTS.filter((f) => f !== 'none') : [...FAULTS];
    const results: ScenarioResult[] = [];
    for (const fault of faults) {
      for (const kind of ledger ? [ledger] : FAULT_LEDGERS[fault]) {
        if (fault === 'restart-redis' && kind !== 'redis') continue;
        if (fault === 'drop-postgres' && kind !== 'postgres') continue;
        if (fault === 'failover-redis-primary' && kind !== 'redis-cluster') continue;
        const result = await runScenario({ ledger: kind, fault, workers, cards: 15, virtualClients: 48, durationMs, maxRequests, log: (line) => console.error(line) });
        ok &&= result.ok;
        results.push(result);
      }
    }
    console.log(`\n## Faults under load (${workers} processes, ${durationMs / 1000} s or ${maxRequests} requests each)\n`);
    console.log(markdownTable(['fault', 'ledger', 'load held', 'requests made', 'injected', 'invariants'], results.map(tableRow)));
    for (const result of results.filter((r) => !r.ok)) console.log(`\n${result.options.fault} on ${result.options.ledger}: ${result.problems.join('; ')}`);
  }

  if (what === 'all' || what === 'fuzz') {
    console.log('\n## Bad input at volume\n');
    const rows: string[][] = [];
    for (const kind of (ledger ? [ledger] : ['postgres', 'redis', 'pglite']) as LedgerKind[]) {
      const fuzz = await runFuzz({ ledger: kind, requests: 30_000, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) });
      const held = fuzz.failures.length === 0 && fuzz.serverAlive && fuzz.ledgerChanged.length === 0 && fuzz.stripeChanged.length === 0;
      ok &&= held;
      const statuses = [...fuzz.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s || 'none'}: ${n}`).join(', ');
      const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
      rows.push([
        kind,
        `${fuzz.requests} in ${(fuzz.elapsedMs / 1000).toFixed(0)} s, seed ${fuzz.seed}`,
        statuses,
        `${mb(fuzz.heap.warm)} / ${mb(fuzz.heap.middle)} / ${mb(fuzz.heap.end)} MB`,
        held ? 'no 5xx, no crash, ledger and Stripe unchanged' : `BROKEN: ${[...fuzz.failures, ...fuzz.ledgerChanged, ...fuzz.stripeChanged].slice(0, 3).join('; ')}`,
      ]);
    }
    console.log(markdownTable(['ledger', 'requests', 'statuses', 'heap after GC (warm / middle / end)', 'verdict'], rows));
  }
  return ok;
}

main(process.argv.slice(2)).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
