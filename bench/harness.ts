/**
 * What the benchmarks share: the load generator (wrk when installed, else
 * autocannon in this process) against servers in child processes, so it
 * never shares the server's event loop; the check of every kept
 * payment-response; figures formatted the same way everywhere; and the
 * machine's load average printed beside them, because on a shared 2-core
 * machine the absolute figures move and only ratios measured in one run
 * mean much.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import type { PaymentResponse } from '@stripe402/core';
import type { LedgerKind } from '../test/scale/services.ts';

const execFileAsync = promisify(execFile);

export interface Histogram {
  average: number;
  p50: number;
  p99: number;
}

export interface AutocannonResult {
  requests: Histogram & { total: number };
  latency: Histogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats?: Record<string, { count: number }>;
}

export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
}

interface AutocannonClient {
  setHeaders(headers: Record<string, string>): void;
}

type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests?: AutocannonRequest[];
  setupClient?: (client: AutocannonClient) => void;
}) => Promise<AutocannonResult>;

let autocannonModule: Autocannon | undefined;

export async function autocannon(): Promise<Autocannon> {
  autocannonModule ??= ((await import('autocannon' as string)) as { default: Autocannon }).default;
  return autocannonModule;
}

/** One measured load: throughput over the whole run and latency percentiles in ms. */
export interface LoadFigures {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Server CPU time per request in µs, when the caller measured it (user + system of the server processes). */
  cpuUs?: number;
}

function figures(result: AutocannonResult): LoadFigures {
  const seconds = result.duration;
  return {
    requests: result.requests.total,
    seconds,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/**
 * The load generator: wrk (C, one thread, the tool the reference
 * figures were measured with) when it is installed, else autocannon. Set
 * BENCH_LOAD=autocannon or BENCH_LOAD=wrk to choose.
 */
export type LoadGenerator = 'wrk' | 'autocannon';

let chosenGenerator: LoadGenerator | undefined;

export function loadGenerator(): LoadGenerator {
  if (chosenGenerator) return chosenGenerator;
  const wanted = process.env.BENCH_LOAD;
  if (wanted === 'wrk' || wanted === 'autocannon') return (chosenGenerator = wanted);
  const found = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return (chosenGenerator = found.error ? 'autocannon' : 'wrk');
}

/** Parses wrk's summary (with --latency): total requests, duration, p50/p99, non-2xx, socket errors. */
export function parseWrk(output: string): LoadFigures {
  const unit = (value: string, suffix: string) => Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[suffix] ?? 1);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(output);
  if (!total) throw new Error(`cannot read wrk's output:\n${output}`);
  const percentile = (p: string) => {
    const match = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s|m)`).exec(output);
    return match ? Math.round(unit(match[1]!, match[2]!) * 100) / 100 : NaN;
  };
  const seconds = unit(total[2]!, total[3]!) / 1000;
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const requests = Number(total[1]);
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50: percentile('50'),
    p99: percentile('99'),
    errors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
  };
}

const WRK_PAID_SCRIPT = `
local headers = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do headers[#headers + 1] = line end
end
function request()
  counter = counter + 1
  return wrk.format('GET', wrk.path, { payment = headers[(counter % #headers) + 1] })
end
`;

async function runWrk(url: string, connections: number, seconds: number, paymentHeaders?: readonly string[]): Promise<LoadFigures> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  let dir: string | undefined;
  if (paymentHeaders) {
    dir = mkdtempSync(path.join(tmpdir(), 'stripe402-wrk-'));
    writeFileSync(path.join(dir, 'paid.lua'), WRK_PAID_SCRIPT);
    writeFileSync(path.join(dir, 'headers.txt'), paymentHeaders.join('\n') + '\n');
    args.push('-s', path.join(dir, 'paid.lua'), url, '--', path.join(dir, 'headers.txt'));
  } else {
    args.push(url);
  }
  try {
    const { stdout } = await execFileAsync('wrk', args, { maxBuffer: 1 << 20 });
    return parseWrk(stdout);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** GET `path` on `url` from `connections` keep-alive connections for `seconds`. */
export async function loadFree(url: string, path: string, connections: number, seconds: number): Promise<LoadFigures> {
  if (loadGenerator() === 'wrk') return runWrk(url + path, connections, seconds);
  const run = await autocannon();
  return figures(await run({ url, connections, duration: seconds, requests: [{ method: 'GET', path }] }));
}

/**
 * GET a paid `path` with wrk, the `payment` header naming the client ids in
 * turn. wrk does not hand responses back, so the run is checked from the
 * ledger's side (see the paid-route benchmark) rather than response by
 * response as loadPaid does.
 */
export async function loadPaidWrk(url: string, path: string, clientIds: readonly string[], connections: number, seconds: number): Promise<LoadFigures> {
  return runWrk(url + path, connections, seconds, clientIds.map((clientId) => encodeHeader({ stripe402Version: 1, clientId })));
}

/**
 * GET a paid `path` with a `payment` header naming a client id; connection
 * i spends from clientIds[i % n]. Every `payment-response` is kept (raw),
 * so the run can be checked afterwards: each served request must report a
 * distinct balance, exactly its client's starting balance minus a whole
 * number of prices (PROC-9).
 */
export async function loadPaid(
  url: string,
  path: string,
  clientIds: readonly string[],
  connections: number,
  seconds: number,
): Promise<LoadFigures & { paymentResponses: string[] }> {
  const run = await autocannon();
  const headers = clientIds.map((clientId) => encodeHeader({ stripe402Version: 1, clientId }));
  const paymentResponses: string[] = [];
  let next = 0;
  const result = await run({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        path,
        onResponse: (status, _body, _context, responseHeaders) => {
          if (status === 200) paymentResponses.push(String(responseHeaders['payment-response']));
        },
      },
    ],
    setupClient: (client) => client.setHeaders({ payment: headers[next++ % headers.length]! }),
  });
  return { ...figures(result), paymentResponses };
}

/**
 * Checks the kept payment-responses of a paid run against the balances
 * before and after it (each read with one paid request, so `end` is after
 * that request's own spend). Per client, the balances reported by served
 * requests must be distinct (no two requests were given the same credit:
 * no lost update, LEDG-1), each exactly `start` minus a whole number of
 * prices and above `end` (PROC-9). Requests still in flight when the load
 * generator stopped were spent but not kept, so the balance may have fallen
 * by more than the kept responses show, by at most `inFlight` requests in
 * all. Returns problems.
 */
export function checkPaymentResponses(
  raw: readonly string[],
  startBalances: ReadonlyMap<string, number>,
  endBalances: ReadonlyMap<string, number>,
  amount: number,
  inFlight: number,
): { served: Map<string, number>; problems: string[] } {
  const byClient = new Map<string, number[]>();
  const problems: string[] = [];
  for (const value of raw) {
    const decoded = decodePaymentResponseHeader(value);
    if (!decoded.ok) {
      problems.push(`undecodable payment-response: ${decoded.error.detail}`);
      continue;
    }
    const response: PaymentResponse = decoded.value;
    if (!response.success) problems.push('a served request reported success: false');
    let list = byClient.get(response.clientId);
    if (!list) byClient.set(response.clientId, (list = []));
    list.push(response.creditsRemaining);
  }
  const served = new Map<string, number>();
  let unseen = 0;
  for (const [clientId, start] of startBalances) {
    const end = endBalances.get(clientId)!;
    const balances = (byClient.get(clientId) ?? []).sort((a, b) => b - a);
    served.set(clientId, balances.length);
    const name = clientId.slice(0, 8);
    for (let k = 0; k < balances.length; k++) {
      const balance = balances[k]!;
      if (k > 0 && balance === balances[k - 1]) problems.push(`client ${name}: two served requests both reported ${balance} (the same credit spent twice)`);
      if ((start - balance) % amount !== 0 || balance > start - amount || balance <= end) {
        problems.push(`client ${name}: a served request reported ${balance}, not start ${start} minus whole prices above the final ${end}`);
      }
      if (problems.length > 10) break;
    }
    // The final read is a spend too: the run spent (start - end) / amount - 1 prices for this client.
    const spent = (start - end) / amount - 1;
    if (spent < balances.length) problems.push(`client ${name}: ${balances.length} requests served but the balance fell by only ${spent} prices`);
    unseen += spent - balances.length;
  }
  for (const clientId of byClient.keys()) if (!startBalances.has(clientId)) problems.push('a response names a client the run did not fund');
  if (unseen > inFlight) problems.push(`${unseen} spends have no kept response, more than the ${inFlight} requests that can be in flight`);
  return { served, problems };
}

export function machineLine(): string {
  const [one, five] = loadavg();
  return `machine: ${cpus().length} cores, load average ${one!.toFixed(2)} (1 min), ${five!.toFixed(2)} (5 min), Node ${process.version}`;
}

export function rate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}`;
}

/** Prints a table with aligned columns; the first row is the header. */
export function table(rows: string[][], log: (line: string) => void = console.log): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  for (const row of rows) log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd());
}

export const durationSeconds = (fallback: number): number => {
  const value = Number(process.env.BENCH_DURATION);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

/** The ledgers named on the command line, or undefined for all of them. */
export function ledgerArguments(args: readonly string[] = process.argv.slice(2)): LedgerKind[] | undefined {
  const ledgers = args.filter((arg): arg is LedgerKind => arg === 'redis' || arg === 'redis-cluster' || arg === 'postgres' || arg === 'pglite');
  return ledgers.length > 0 ? ledgers : undefined;
}

/** Runs a benchmark's main when its file is the script node was started with, and exits 1 on failure. */
export function runWhenScript(moduleUrl: string, main: () => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
