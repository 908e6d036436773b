/**
 * `npm run bench`: every benchmark in one run, then the ratios that matter
 * side by side. Each ratio compares two figures measured in this run, on
 * this machine, with the same load generator, because on a shared machine
 * only those mean much. A benchmark that catches a broken guarantee (an
 * inexact balance, a balance that differs from its journal) fails the run.
 *
 *   npm run bench                          # everything: about 12 minutes, and 30 more for prices
 *   npm run bench -- paid scale-out        # some sections: paid, scale-out,
 *                                          # topup, scaling, conformance, prices, ledger, emulator, mcp, attack
 *   BENCH_DURATION=8 BENCH_ROUNDS=3 BENCH_LOAD=autocannon npm run bench -- paid
 *
 * Figures, commands and what they showed: docs/performance.md.
 */
import { main as attackBench } from './attack.bench.ts';
import { main as conformanceBench, type ConformanceRow } from './conformance.bench.ts';
import { main as pricesBench, type PriceRow } from './conformance-prices.bench.ts';
import { main as emulatorBench, type BenchRow } from './emulator.bench.ts';
import { main as ledgerBench } from './ledger.bench.ts';
import { main as mcpBench, printMcpRow, type McpRow } from './mcp.bench.ts';
import { formatRatio, main as paidRouteBench, type PaidRouteRow } from './paid-route.bench.ts';
import { main as scalingBench, type ScalingRow } from './spend-scaling.bench.ts';
import { main as topUpBench, type TopUpRow } from './topup.bench.ts';
import { loadGenerator, machineLine, rate, table } from './harness.ts';

const SECTIONS = ['paid', 'scale-out', 'topup', 'scaling', 'conformance', 'prices', 'ledger', 'emulator', 'mcp', 'attack'] as const;
type Section = (typeof SECTIONS)[number];

/** The paid/free ratios the issue asks for, per ledger, on one process. */
const TARGETS: Record<string, number> = { redis: 0.6, postgres: 0.4, pglite: 0.3 };

async function main(argv: string[]): Promise<void> {
  const chosen = argv.filter((arg): arg is Section => (SECTIONS as readonly string[]).includes(arg));
  const unknown = argv.filter((arg) => !(SECTIONS as readonly string[]).includes(arg));
  if (unknown.length > 0) {
    console.error(`unknown section ${unknown.join(', ')}; sections: ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
  const run = (section: Section) => chosen.length === 0 || chosen.includes(section);
  const heading = (title: string) => console.log(`\n=== ${title} ===\n`);
  const started = performance.now();
  console.log(machineLine());
  console.log(`load generator: ${loadGenerator()}`);

  let paid: PaidRouteRow[] = [];
  let paidWide: PaidRouteRow[] = [];
  let paidUnbatched: PaidRouteRow[] = [];
  let scaledOut: PaidRouteRow[] = [];
  let topUps: TopUpRow[] = [];
  let scaling: ScalingRow[] = [];
  let conformance: ConformanceRow[] = [];
  let prices: PriceRow[] = [];
  let emulator: BenchRow[] = [];
  let mcp: McpRow | undefined;
  if (run('paid')) {
    heading('paid route against free route, one server process, 32 connections');
    paid = await paidRouteBench({ workers: 1, connections: 32 });
    // Group commit grows with concurrency: the same comparison with more clients in flight.
    heading('paid route against free route, one server process, 128 connections');
    paidWide = await paidRouteBench({ workers: 1, connections: 128 });
    // The baseline group commit is measured against: one ledger round trip per paid request.
    heading('paid route against free route, one server process, 32 connections, no group commit');
    paidUnbatched = await paidRouteBench({ workers: 1, connections: 32, ledgerOptions: { groupCommit: false } });
  }
  if (run('scale-out')) {
    heading('paid route against free route, two server processes sharing the ledger');
    scaledOut = await paidRouteBench({ workers: 2, ledgers: ['redis', 'redis-cluster', 'postgres'] });
  }
  if (run('topup')) {
    heading('the cost of a top-up');
    topUps = await topUpBench();
  }
  if (run('scaling')) {
    heading('spend cost against the number of client ids in the ledger');
    scaling = await scalingBench();
  }
  if (run('conformance')) {
    heading('conformance suite run time');
    conformance = await conformanceBench();
  }
  if (run('prices')) {
    heading('the conformance suite over 200 legal price configurations');
    prices = await pricesBench();
  }
  if (run('ledger')) {
    heading('ledger spends: group commit against one round trip per spend');
    await ledgerBench([]);
  }
  if (run('emulator')) {
    heading('Stripe emulator against bare node:http');
    emulator = await emulatorBench();
  }
  if (run('mcp')) {
    heading('MCP tool call against a plain paid fetch, spending a funded client id');
    mcp = await mcpBench();
    printMcpRow(mcp);
  }

  if (run('attack')) {
    heading('attacks against the default rate limits (spec 13.5, 13.7)');
    await attackBench();
  }

  heading('summary (every ratio from figures of this run)');
  console.log(machineLine());
  const rows: string[][] = [['measure', 'figures', 'ratio', 'target']];
  const paidRow = (label: string, row: PaidRouteRow, target = '') => [label, `${rate(row.paid.rps)} / ${rate(row.free.rps)} req/s`, formatRatio(row), target];
  for (const row of paid) {
    const target = TARGETS[row.ledger];
    rows.push(paidRow(`paid/free, ${row.ledger}, 1 process, 32 connections`, row, target === undefined ? '' : `>= ${target} ${row.ratio >= target ? 'met' : 'NOT met'}`));
  }
  for (const row of paid) rows.push([`resident memory, ${row.ledger}: idle / peak`, `${Math.round(row.rssIdleMb)} / ${Math.round(row.rssPeakMb)} MB`, '', '']);
  for (const row of paidWide) rows.push(paidRow(`paid/free, ${row.ledger}, 1 process, 128 connections`, row));
  for (const row of paidUnbatched) rows.push(paidRow(`paid/free, ${row.ledger}, 1 process, 32 connections, no group commit`, row));
  for (const row of scaledOut) rows.push(paidRow(`paid/free, ${row.ledger}, ${row.workers} processes`, row));
  for (const row of topUps) rows.push([`top-up at ${row.stripeLatencyMs} ms per Stripe call: our overhead / total, ${row.ledger}`, `${row.overheadP50.toFixed(1)} / ${row.topUpP50.toFixed(1)} ms (p50), p99 ${row.topUpP99.toFixed(1)} ms, ${Object.values(row.callsPerTopUp).reduce((a, b) => a + b, 0)} sequential Stripe calls`, (row.overheadP50 / row.topUpP50).toFixed(2), '']);
  for (const kind of new Set(scaling.map((row) => row.ledger))) {
    const mine = scaling.filter((row) => row.ledger === kind);
    const last = mine[mine.length - 1]!;
    rows.push([`spends/s at ${last.accounts.toLocaleString('en-US')} / 1,000 accounts, ${kind}`, `${rate(last.spendsPerSecond)} / ${rate(mine[0]!.spendsPerSecond)}`, last.ratio.toFixed(2), '']);
    rows.push([`client CPU per spend at ${last.accounts.toLocaleString('en-US')} / 1,000 accounts, ${kind}`, `${last.clientCpuUs.toFixed(1)} / ${mine[0]!.clientCpuUs.toFixed(1)} µs`, (last.clientCpuUs / mine[0]!.clientCpuUs).toFixed(2), '']);
  }
  for (const row of conformance) rows.push([`conformance --level all, ${row.ledger}`, `${row.seconds.toFixed(1)} s, ${row.passed}/${row.checks} passed`, '', '']);
  for (const row of prices) rows.push([`price property, ${row.server} server`, `${row.configs} configurations in ${row.seconds.toFixed(1)} s`, '', `${row.counterexamples} counterexamples`]);
  for (const row of emulator.filter((r) => !r.name.startsWith('baseline'))) rows.push([`emulator / bare HTTP: ${row.name}`, `${rate(row.requestsPerSecond)} req/s`, row.ratio.toFixed(2), '']);
  if (mcp) rows.push(['MCP stripe402_fetch / paid fetch (p50)', `${mcp.toolP50.toFixed(2)} / ${mcp.fetchP50.toFixed(2)} ms`, (mcp.toolP50 / mcp.fetchP50).toFixed(2), '']);
  table(rows);
  console.log(`\nbenchmarks took ${((performance.now() - started) / 60_000).toFixed(1)} minutes`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
