/**
 * The conformance suite against a server in another language: python/server.py,
 * a stripe402 server in Python (standard library only) written from spec/ and
 * schemas/ alone. It runs as a child process against the Stripe emulator,
 * which it reaches over HTTP as it would reach Stripe, and the suite judges it
 * at level `all`: no MUST check may fail, and no level may be claimed over a
 * MUST check that was skipped. A false failure is a defect of the suite; the
 * explanations printed on failure name the check and what it saw.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { FAILING_PATH, judge, PAID_PATH, verdictProblems, type Target } from './targets.ts';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'python', 'server.py');

/** Why the suite cannot run here, or null: python3 must exist and be 3.10 or newer. */
function pythonMissing(): string | null {
  const probe = spawnSync('python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'python3 is not installed';
  const [major = 0, minor = 0] = probe.stdout.trim().split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10)) return `python3 is ${probe.stdout.trim()}, older than 3.10`;
  return null;
}

const missing = pythonMissing();
const suite = missing ? describe.skip : describe;

/**
 * Configurations, each legal: `--offer currency:amount:minTopUp[:maxTopUp]` in units, the first one the
 * default. The last carries a deliberate defect (Python's default JSON reading, whose RecursionError on a
 * deeply nested payload ends in a 500 that shows the exception text): it must fail exactly the checks
 * that name it, so the test proves the suite catches what a hurried Python server gets wrong.
 */
const CONFIGS: Record<string, { args: string[]; expectedFailures?: string[] }> = {
  'the demo price in dollars': { args: ['--offer', 'usd:100:50000:1000000'] },
  'yen then kuwaiti dinars, no maxTopUp': { args: ['--offer', 'jpy:10000:1000000', '--offer', 'kwd:7:2000'] },
  'the demo price, read with json.loads defaults': {
    args: ['--offer', 'usd:100:50000:1000000', '--defect', 'naive-json'],
    expectedFailures: ['10/error-messages-carry-no-internals', '10/invalid-input-never-served'],
  },
};

const children = new Set<ChildProcess>();

/** server.py on a loopback port it picks itself, selling PAID_PATH and FAILING_PATH as `extraArgs` say. */
async function startPythonTarget(emulator: Emulator, extraArgs: string[]): Promise<Target> {
  const serverSecret = `foreign python server ${randomUUID()}`;
  const args = [SERVER, '--port', '0', '--stripe-url', emulator.url, '--stripe-key', emulator.secretKey, '--publishable-key', emulator.publishableKey];
  args.push(...extraArgs);
  const child = spawn('python3', args, { env: { ...process.env, STRIPE402_SERVER_SECRET: serverSecret }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server.py did not start in 10 s: ${stderr}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server.py exited with ${code}: ${stderr}`));
    });
  });
  return {
    target: `${url}${PAID_PATH}`,
    serverSecret,
    failingRoute: FAILING_PATH,
    close: () => stop(child),
  };
}

function stop(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

suite(`the suite against a Python server written from the spec alone${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all([...children].map(stop));
    await emulator?.close();
  });

  for (const [name, { args, expectedFailures = [] }] of Object.entries(CONFIGS)) {
    const verdict = expectedFailures.length ? `fails exactly ${expectedFailures.join(', ')}` : 'passes with no MUST failure';
    it(`${verdict} and claims no level over a skip: ${name}`, async () => {
      const target = await startPythonTarget(emulator, args);
      try {
        const report = await judge(emulator, target, { seed: 402 });
        expect(verdictProblems(report, expectedFailures), args.join(' ')).toEqual([]);
        if (expectedFailures.length === 0) expect(report.levelReached).toBe('extensions');
      } finally {
        await target.close();
      }
    }, 60_000);
  }
});
