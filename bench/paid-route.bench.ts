/**
 * Paid route against free route, per ledger, in one run with one load
 * generator (issue "Paid-path throughput"). The reference server runs in a
 * child process (or a cluster of several sharing one port) on the demo API;
 * the load generator (wrk, else autocannon) alternates GET /health (free)
 * and GET /api/joke with a `payment` header naming a funded client id (paid:
 * one atomic spend per request), several rounds each, and the ratio of the
 * two throughputs is the cost of payment on this machine.
 *
 * The figures count only if the guarantees held: every paid response must
 * report a distinct balance, exactly its client's balance before the run
 * minus a whole number of prices (no overdraft, exact payment-response), and
 * afterwards every balance must equal its journal and every credited top-up
 * a succeeded PaymentIntent. A violation fails the benchmark. Beside the
 * ratio it prints each server's resident memory, idle and at its peak.
 *
 *   npx tsx bench/paid-route.bench.ts [redis] [postgres] [pglite] [--workers N]
 *   BENCH_DURATION=8 BENCH_ROUNDS=3 BENCH_CONNECTIONS=32 npx tsx bench/paid-route.bench.ts
 */
import { readFileSync } from 'node:fs';
import { startStack, type FleetConfig } from '../test/scale/fleet.ts';
import { checkInvariants, summarizeInvariants } from '../test/scale/invariants.ts';
import { createCards, paidRequest, topUp } from '../test/scale/protocol.ts';
import type { LedgerKind } from '../test/scale/services.ts';
import { checkPaymentResponses, durationSeconds, loadFree, loadGenerator, loadPaid, loadPaidWrk, machineLine, rate, table, type LoadFigures, ledgerArguments, runWhenScript } from './harness.ts';

const PAID_PATH = '/api/joke';
const FREE_PATH = '/health';
/** The demo price of /api/joke and its largest top-up: 100,000 requests per funded client. */
const PRICE = 100;
const TOP_UP = 10_000_000;

export interface PaidRouteOptions {
  ledgers?: LedgerKind[];
  /** Server processes sharing the ledger (PGlite: always 1, it is one process's database). */
  workers?: number;
  durationSeconds?: number;
  rounds?: number;
  connections?: number;
  /** Funded client ids spread over the connections. */
  clients?: number;
  /** Ledger tuning passed to the server processes (group commit off, batches in flight). */
  ledgerOptions?: FleetConfig['ledgerOptions'];
  log?: (line: string) => void;
}

export interface PaidRouteRow {
  ledger: LedgerKind;
  workers: number;
  free: LoadFigures;
  paid: LoadFigures;
  /**
   * paid rps / free rps: the median over rounds of each paid round against
   * the free round just before it, so that a neighbour's burst of load
   * weighs on one pair of rounds, not on the whole figure.
   */
  ratio: number;
  /** paid rps / free rps of each pair of rounds, in the order run. */
  roundRatios: number[];
  invariants: string;
  /** Resident memory of the largest server process, in MB: idle once it listens, and its peak by the end of the paid rounds. */
  rssIdleMb: number;
  rssPeakMb: number;
}

/** A /proc/<pid>/status memory field (VmRSS: resident now; VmHWM: resident at its peak), in MB; 0 when unreadable. */
function residentMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Sums rounds: throughput over the total time, latency percentiles as the median of the rounds'. */
function combine(rounds: LoadFigures[]): LoadFigures {
  const requests = rounds.reduce((sum, r) => sum + r.requests, 0);
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
    cpuUs: rounds.reduce((sum, r) => sum + (r.cpuUs ?? 0) * r.requests, 0) / Math.max(1, requests),
  };
}

type Resolved = Required<Omit<PaidRouteOptions, 'ledgers' | 'log' | 'ledgerOptions'>> & Pick<PaidRouteOptions, 'ledgerOptions'>;

async function benchLedger(kind: LedgerKind, options: Resolved): Promise<PaidRouteRow> {
  const workers = kind === 'pglite' ? 1 : options.workers;
  const profileDir = process.env.BENCH_CPU_PROF;
  const { emulator, target, serverSecret, fleet, stop } = await startStack(
    kind,
    { workers, port: 0, ...(options.ledgerOptions ? { ledgerOptions: options.ledgerOptions } : {}) },
    // A .cpuprofile per server process, written when it stops (open it in Chrome DevTools).
    profileDir ? { nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {},
  );
  try {
    // Idle: the server listens and has served nothing yet (its ledger open, its caches cold).
    const rssIdleMb = Math.max(...fleet.workers().map((pid) => residentMb(pid, 'VmRSS')));
    const cards = await createCards(emulator.stripe(), serverSecret, options.clients);
    for (const card of cards) {
      const funded = await topUp(fleet.url, PAID_PATH, card, TOP_UP);
      if (funded.final.status !== 200) throw new Error(`${kind}: funding a client failed with ${funded.final.status}`);
    }
    const clientIds = cards.map((card) => card.clientId);
    // Warm-up: JIT, connection pools, prepared statements.
    await loadFree(fleet.url, FREE_PATH, options.connections, 1);
    await loadPaid(fleet.url, PAID_PATH, clientIds, options.connections, 1);

    // Server CPU per request: the cost of a request on the server, whatever else the machine runs.
    const withCpu = async <T extends LoadFigures>(run: () => Promise<T>): Promise<T> => {
      const before = fleet.cpuSeconds();
      const figures = await run();
      figures.cpuUs = ((fleet.cpuSeconds() - before) * 1e6) / Math.max(1, figures.requests);
      return figures;
    };
    const free: LoadFigures[] = [];
    const paid: LoadFigures[] = [];
    const problems: string[] = [];
    const balances = async (): Promise<Map<string, number>> => {
      // One paid request per client: its payment-response is the balance after it.
      const seen = new Map<string, number>();
      for (const clientId of clientIds) {
        const probe = await paidRequest(fleet.url, PAID_PATH, { stripe402Version: 1, clientId });
        if (probe.status !== 200 || !probe.payment) throw new Error(`${kind}: a funded client was refused (${probe.status})`);
        seen.set(clientId, probe.payment.creditsRemaining);
      }
      return seen;
    };
    const generator = loadGenerator();
    for (let round = 0; round < options.rounds; round++) {
      free.push(await withCpu(() => loadFree(fleet.url, FREE_PATH, options.connections, options.durationSeconds)));
      const start = await balances();
      if (generator === 'wrk') {
        const run = await withCpu(() => loadPaidWrk(fleet.url, PAID_PATH, clientIds, options.connections, options.durationSeconds));
        paid.push(run);
        // wrk keeps no responses: hold its count against the ledger. Every 2xx it counted was a spend; requests
        // still in flight when it stopped may have spent too, at most one per connection.
        const end = await balances();
        const spent = clientIds.reduce((sum, id) => sum + (start.get(id)! - end.get(id)! - PRICE), 0) / PRICE;
        const served = run.requests - run.non2xx;
        if (spent < served || spent > served + options.connections) problems.push(`round ${round + 1}: wrk counted ${served} served requests, the balances fell by ${spent} prices`);
      } else {
        const run = await withCpu(() => loadPaid(fleet.url, PAID_PATH, clientIds, options.connections, options.durationSeconds));
        problems.push(...checkPaymentResponses(run.paymentResponses, start, await balances(), PRICE, options.connections).problems);
        const { paymentResponses: _kept, ...figures } = run;
        paid.push(figures);
      }
    }
    if (generator === 'wrk') {
      // One more short run through autocannon, which keeps every payment-response: each must report an exact, distinct balance.
      const start = await balances();
      const run = await loadPaid(fleet.url, PAID_PATH, clientIds, options.connections, 2);
      problems.push(...checkPaymentResponses(run.paymentResponses, start, await balances(), PRICE, options.connections).problems);
      if (run.paymentResponses.length === 0) problems.push('the checking run served nothing');
    }
    const rssPeakMb = Math.max(...fleet.workers().map((pid) => residentMb(pid, 'VmHWM')));
    await fleet.stop();
    const ledger = await target.openLedger();
    let invariants: string;
    try {
      const report = await checkInvariants(ledger, emulator.state.paymentIntents());
      invariants = summarizeInvariants(report);
      if (!report.ok) problems.push(invariants);
    } finally {
      await ledger.close();
    }
    const freeFigures = combine(free);
    const paidFigures = combine(paid);
    if (paidFigures.non2xx > 0 || paidFigures.errors > 0) problems.push(`${paidFigures.non2xx} paid requests were refused and ${paidFigures.errors} failed`);
    if (problems.length > 0) throw new Error(`${kind}: the paid route broke a guarantee under load:\n  ${problems.slice(0, 10).join('\n  ')}`);
    const roundRatios = paid.map((round, index) => round.rps / free[index]!.rps);
    return {
      ledger: kind,
      workers,
      free: freeFigures,
      paid: paidFigures,
      ratio: median(roundRatios),
      roundRatios,
      invariants,
      rssIdleMb,
      rssPeakMb,
    };
  } finally {
    await stop();
  }
}

export async function main(options: PaidRouteOptions = {}): Promise<PaidRouteRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const resolved = {
    workers: options.workers ?? 1,
    durationSeconds: options.durationSeconds ?? durationSeconds(4),
    rounds: options.rounds ?? (Number(process.env.BENCH_ROUNDS) || 3),
    connections: options.connections ?? (Number(process.env.BENCH_CONNECTIONS) || 32),
    clients: options.clients ?? 8,
    ...(options.ledgerOptions ? { ledgerOptions: options.ledgerOptions } : {}),
  };
  const ledgers = options.ledgers ?? ['redis', 'redis-cluster', 'postgres', 'pglite'];
  log(
    `paid vs free route: ${resolved.workers} server process(es), ${loadGenerator()} ${resolved.connections} connections, ` +
      `${resolved.rounds} rounds x ${resolved.durationSeconds} s per route, ${resolved.clients} funded clients`,
  );
  log(machineLine());
  const rows: PaidRouteRow[] = [];
  if (resolved.ledgerOptions) log(`ledger options: ${JSON.stringify(resolved.ledgerOptions)}`);
  for (const kind of ledgers) rows.push(await benchLedger(kind, resolved));
  printPaidRouteTable(rows, log);
  return rows;
}

/** The median ratio and, in brackets, the range of the rounds' ratios. */
export function formatRatio(row: PaidRouteRow): string {
  return `${row.ratio.toFixed(2)} (${Math.min(...row.roundRatios).toFixed(2)} to ${Math.max(...row.roundRatios).toFixed(2)})`;
}

export function printPaidRouteTable(rows: readonly PaidRouteRow[], log: (line: string) => void = console.log): void {
  table(
    [
      ['ledger', 'procs', 'free req/s', 'p50', 'p99', 'cpu/req', 'paid req/s', 'p50', 'p99', 'cpu/req', 'paid/free (rounds)', 'RSS idle / peak'],
      ...rows.map((row) => [
        row.ledger,
        String(row.workers),
        rate(row.free.rps),
        `${row.free.p50} ms`,
        `${row.free.p99} ms`,
        `${Math.round(row.free.cpuUs ?? 0)} µs`,
        rate(row.paid.rps),
        `${row.paid.p50} ms`,
        `${row.paid.p99} ms`,
        `${Math.round(row.paid.cpuUs ?? 0)} µs`,
        formatRatio(row),
        `${Math.round(row.rssIdleMb)} / ${Math.round(row.rssPeakMb)} MB`,
      ]),
    ],
    log,
  );
}

function parseArgs(argv: string[]): PaidRouteOptions {
  const ledgers = ledgerArguments(argv);
  const workersAt = argv.indexOf('--workers');
  const inFlightAt = argv.indexOf('--batches-in-flight');
  const ledgerOptions: NonNullable<FleetConfig['ledgerOptions']> = {};
  if (argv.includes('--no-group-commit')) ledgerOptions.groupCommit = false;
  if (inFlightAt >= 0) ledgerOptions.maxBatchesInFlight = Number(argv[inFlightAt + 1]);
  return {
    ...(ledgers ? { ledgers } : {}),
    ...(workersAt >= 0 ? { workers: Number(argv[workersAt + 1]) } : {}),
    ...(Object.keys(ledgerOptions).length > 0 ? { ledgerOptions } : {}),
  };
}

runWhenScript(import.meta.url, () => main(parseArgs(process.argv.slice(2))));
