// Benchmark of the Stripe emulator: requests per second and p50/p99 latency
// for the two calls a stripe402 server makes most (reading a PaymentMethod,
// creating and confirming a PaymentIntent), against a bare node:http server
// answering a fixed JSON body measured in the same run, so the ratio says
// how much the emulator costs over raw HTTP on this machine. The servers run
// in a child process so that autocannon does not share their event loop.
//
//   npx tsx bench/emulator.bench.ts            (5 s per run)
//   BENCH_DURATION=10 npx tsx bench/emulator.bench.ts
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { runWhenScript } from './harness.ts';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
}

interface AutocannonResult {
  requests: Histogram & { total: number };
  latency: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
}

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}

type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests?: AutocannonRequest[];
  headers?: Record<string, string>;
}) => Promise<AutocannonResult>;

export interface BenchOptions {
  /** Seconds per run; default $BENCH_DURATION or 5. */
  durationSeconds?: number;
  /** Concurrent connections; default 10. */
  connections?: number;
  /** Where to print; default console.log. */
  log?: (line: string) => void;
}

export interface BenchRow {
  name: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** requestsPerSecond / baseline requestsPerSecond. */
  ratio: number;
}

interface Servers {
  baseline: string;
  emulator: string;
  secretKey: string;
}

// The child: the emulator and the baseline server, ports reported on stdout.
const SERVER_SCRIPT = (indexPath: string) => `
import http from 'node:http';
const { startEmulator } = await import(${JSON.stringify(indexPath)});
const emulator = await startEmulator({ port: 0 });
const body = await (await fetch(emulator.url + '/v1/payment_methods/pm_card_visa', { headers: { authorization: 'Bearer ' + emulator.secretKey } })).text();
const baseline = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
await new Promise((resolve) => baseline.listen(0, '127.0.0.1', resolve));
console.log(JSON.stringify({ baseline: 'http://127.0.0.1:' + baseline.address().port, emulator: emulator.url, secretKey: emulator.secretKey }));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

async function startServers(): Promise<{ servers: Servers; stop: () => Promise<void> }> {
  const indexPath = fileURLToPath(new URL('../conformance/stripe-emulator/index.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SERVER_SCRIPT(indexPath)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let buffered = '';
  const servers = await new Promise<Servers>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`benchmark servers exited early (code ${code})`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)) as Servers);
    });
  });
  return {
    servers,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function row(name: string, result: AutocannonResult, baseline: number): BenchRow {
  return {
    name,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    ratio: baseline > 0 ? result.requests.average / baseline : 0,
  };
}

export async function main(options: BenchOptions = {}): Promise<BenchRow[]> {
  const duration = options.durationSeconds ?? Number(process.env.BENCH_DURATION ?? 5);
  const connections = options.connections ?? 10;
  const log = options.log ?? ((line: string) => console.log(line));
  const autocannon = ((await import('autocannon' as string)) as { default: Autocannon }).default;
  const { servers, stop } = await startServers();
  try {
    const auth = { authorization: `Bearer ${servers.secretKey}` };
    log(`Stripe emulator benchmark: ${duration} s per run, ${connections} connections, loopback`);
    const getRequest: AutocannonRequest = { method: 'GET', path: '/v1/payment_methods/pm_card_visa', headers: auth };
    const chargeBody =
      'amount=500&currency=usd&payment_method=pm_card_visa&confirm=true&automatic_payment_methods[enabled]=true&automatic_payment_methods[allow_redirects]=never&metadata[stripe402_client_id]=bench';
    let sequence = 0;
    const postRequest: AutocannonRequest = {
      method: 'POST',
      path: '/v1/payment_intents',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: chargeBody,
      // A fresh key per request, as the SDK sends one with every POST.
      setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': `bench-${++sequence}` } }),
    };
    // Each emulator run is compared with the bare server answering the same
    // requests, so the ratio is the emulator's own cost, not the load generator's.
    const rows: BenchRow[] = [];
    for (const [name, request] of [
      ['GET /v1/payment_methods/pm_card_visa', getRequest],
      ['POST /v1/payment_intents confirm=true, fresh Idempotency-Key', postRequest],
    ] as const) {
      const baseline = await autocannon({ url: servers.baseline, connections, duration, requests: [request] });
      const measured = await autocannon({ url: servers.emulator, connections, duration, requests: [request] });
      rows.push(row(`baseline node:http, fixed JSON (${request.method})`, baseline, baseline.requests.average));
      rows.push(row(name, measured, baseline.requests.average));
    }

    const width = Math.max(...rows.map((r) => r.name.length));
    log(`${'run'.padEnd(width)}  ${'req/s'.padStart(8)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  ${'errors'.padStart(6)}  ${'non2xx'.padStart(6)}  ratio`);
    for (const r of rows) {
      log(
        `${r.name.padEnd(width)}  ${String(r.requestsPerSecond).padStart(8)}  ${String(r.p50Ms).padStart(7)}  ${String(r.p99Ms).padStart(7)}  ${String(r.errors).padStart(6)}  ${String(r.non2xx).padStart(6)}  ${r.ratio.toFixed(2)}`,
      );
    }
    return rows;
  } finally {
    await stop();
  }
}

runWhenScript(import.meta.url, main);
