/**
 * Server memory under oversized webhook posts: ten clients in parallel each
 * send 256 MiB to POST /stripe402/webhook, once declaring the length and
 * once chunked without one, and keep writing whatever the server answers,
 * as an attacker would. The server runs in a process of its own (`stripe402
 * serve`, test mode, loopback), so its resident memory is its own: the
 * figure is the growth of its peak resident set (VmHWM, Linux) over its
 * resident set before the posts. Every post must be answered 413 (or have
 * its connection closed by the server); a 2xx or 400 means the body was
 * read whole and fails the run.
 *
 *   npx tsx bench/webhook-memory.bench.ts
 *   BENCH_WEBHOOK_POSTS=10 BENCH_WEBHOOK_MIB=256 npx tsx bench/webhook-memory.bench.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineLine, runWhenScript, table } from './harness.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface WebhookMemoryRow {
  mode: 'content-length' | 'chunked';
  posts: number;
  mibPerPost: number;
  /** Peak resident set growth of the server process, in MB (10^6 bytes). */
  growthMb: number;
  statuses: string;
  seconds: number;
}

/** Resident and peak resident set of a process, in bytes, from /proc. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets the peak resident set to the current one (Linux 4.0+: write 5 to clear_refs), so each phase measures its own peak. */
function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Without it the peak is the one since start, which only overstates the growth.
  }
}

/**
 * Sends `bytes` of JSON-ish filler in 64 KiB writes, whatever the server
 * answers, until done or the server closes the connection. Resolves with
 * the status (or 'closed' when none arrived).
 */
function stubbornPost(url: string, bytes: number, declareLength: boolean): Promise<string> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let status: string | undefined;
    let written = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      resolve(status ?? 'closed');
    };
    const req = http.request(
      {
        host: hostname,
        port,
        path: '/stripe402/webhook',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00', ...(declareLength ? { 'content-length': String(bytes) } : {}) },
      },
      (res) => {
        status = String(res.statusCode);
        res.resume();
        res.on('end', () => setTimeout(finish, 50));
      },
    );
    req.on('error', finish);
    req.on('close', () => setTimeout(finish, 50));
    const pump = () => {
      while (written < bytes && !req.destroyed) {
        const piece = bytes - written >= chunk.length ? chunk : chunk.subarray(0, bytes - written);
        written += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}

async function startServerProcess(): Promise<{ url: string; child: ChildProcess; close: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stripe402-webhook-bench-'));
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/stripe402.js'), 'serve', '--port', '0', '--ledger', 'pglite:memory', '--data-dir', dataDir, '--quiet'], {
    env: { PATH: process.env.PATH ?? '', STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(16).toString('hex')}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${out}`)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const match = /"msg":"listening","url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.stderr!.resume();
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${out}`)));
  });
  return {
    url,
    child,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function main(options: { posts?: number; mib?: number; log?: (line: string) => void } = {}): Promise<WebhookMemoryRow[]> {
  const log = options.log ?? console.log;
  const posts = options.posts ?? (Number(process.env.BENCH_WEBHOOK_POSTS) || 10);
  const mib = options.mib ?? (Number(process.env.BENCH_WEBHOOK_MIB) || 256);
  const server = await startServerProcess();
  const pid = server.child.pid!;
  const rows: WebhookMemoryRow[] = [];
  try {
    // Warm up: the paths a webhook takes, so their code is loaded before the baseline.
    for (let i = 0; i < 20; i++) await stubbornPost(server.url, 1000, true);
    for (const mode of ['content-length', 'chunked'] as const) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      resetPeak(pid);
      const before = memoryOf(pid);
      const started = performance.now();
      const statuses = await Promise.all(Array.from({ length: posts }, () => stubbornPost(server.url, mib * 1024 * 1024, mode === 'content-length')));
      const seconds = (performance.now() - started) / 1000;
      const after = memoryOf(pid);
      const counts = new Map<string, number>();
      for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1);
      const bad = statuses.filter((status) => status !== '413' && status !== 'closed');
      if (bad.length > 0) throw new Error(`${mode}: ${bad.length} oversized posts were answered ${[...new Set(bad)].join(', ')}, so their bodies were read`);
      rows.push({
        mode,
        posts,
        mibPerPost: mib,
        growthMb: Math.max(0, after.hwm - before.rss) / 1e6,
        statuses: [...counts].map(([status, n]) => `${n}x ${status}`).join(', '),
        seconds,
      });
    }
  } finally {
    await server.close();
  }
  log(machineLine());
  table(
    [
      ['body', 'parallel posts', 'MiB each', 'server peak RSS growth', 'answers', 'seconds'],
      ...rows.map((row) => [row.mode, String(row.posts), String(row.mibPerPost), `${row.growthMb.toFixed(1)} MB`, row.statuses, row.seconds.toFixed(1)]),
    ],
    log,
  );
  return rows;
}

runWhenScript(import.meta.url, () => main());
