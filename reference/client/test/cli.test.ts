/**
 * `stripe402 fetch` end to end: the real `bin/stripe402.js` in a child
 * process against the reference server and the emulator. The body must be
 * on stdout byte for byte, the payment summary on stderr with the client id
 * redacted, and the exit code must say what happened.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from 'stripe402';
import { startStack, succeededCharges, type Stack } from './harness.ts';

const BIN = resolve(import.meta.dirname, '../../../bin/stripe402.js');

let stack: Stack;
let server: RunningServer;
let dir: string;

beforeAll(async () => {
  stack = await startStack();
  dir = await mkdtemp(join(tmpdir(), 'stripe402-cli-'));
}, 180_000);
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  server = await stack.freshServer();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously: the servers live in this process and must keep answering. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, 'fetch', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const charges = () => succeededCharges(stack.emulator).length;

// Each test spawns node with tsx, which takes seconds on a busy machine.
describe('stripe402 fetch', { timeout: 120_000 }, () => {
  it('pays, prints the body on stdout and a summary with a redacted client id on stderr, and exits 0', async () => {
    const before = charges();
    const result = await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toHaveProperty('joke');
    expect(result.stderr).toContain('paid 100 units (0.01 USD)');
    expect(result.stderr).toContain('charged 5.00 USD for 50000 units of credit');
    expect(result.stderr).toContain('credits remaining 49900 units');
    expect(result.stderr).toMatch(/client id [0-9a-f]{6}…/);
    expect(result.stderr).not.toMatch(/[0-9a-f]{64}/);
    expect(charges()).toBe(before + 1);
  });

  it('reads the PaymentMethod from STRIPE402_PAYMENT_METHOD', async () => {
    const result = await run([`${server.url}/api/joke`], { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('charged 5.00 USD');
  });

  it('sends a body with -X, -H and -d, and echoes it back byte for byte', async () => {
    const body = '{"agent":"007","note":"ünïcode"}';
    const result = await run([`${server.url}/api/echo`, '-X', 'POST', '-H', 'Content-Type: application/json', '-d', body, '--pm', 'pm_card_visa']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(body);
  });

  it('refuses a top-up above --max-topup: exit 4, nothing on stdout, nothing charged', async () => {
    const intents = stack.emulator.state.paymentIntents().length;
    const result = await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa', '--max-topup', '1000']);
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('max_top_up');
    expect(result.stderr).toContain('Nothing was charged');
    expect(stack.emulator.state.paymentIntents().length).toBe(intents);
  });

  it('refuses a price above --max-price with exit 4', async () => {
    const result = await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa', '--max-price', '10']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('max_price_per_request');
  });

  it('without a PaymentMethod says how to give one, with exit 4', async () => {
    const result = await run([`${server.url}/api/joke`]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('--pm');
  });

  it('a declined card exits 5 with the wire code', async () => {
    const result = await run([`${server.url}/api/joke`, '--pm', 'pm_card_chargeDeclined']);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('card_declined');
  });

  it('a non-2xx answer prints its body and exits 1', async () => {
    const result = await run([`${server.url}/api/fail`, '--pm', 'pm_card_visa']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('always fails');
    expect(result.stderr).toContain('HTTP 500');
  });

  it('a usage error exits 2', async () => {
    expect((await run(['not a url'])).code).toBe(2);
    expect((await run([`${server.url}/api/joke`, '--max-price', 'lots'])).code).toBe(2);
    expect((await run([`${server.url}/api/joke`, '-H', 'no colon'])).code).toBe(2);
  });

  it('an unreachable server exits 3', async () => {
    const result = await run(['http://127.0.0.1:1/api/joke']);
    expect(result.code).toBe(3);
  });

  it('with --store FILE a second run spends the stored client id and charges nothing', async () => {
    const file = join(dir, 'store', 'clients.json');
    const before = charges();
    expect((await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa', '--store', file])).code).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await run([`${server.url}/api/joke`, '--store', file]);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('charged nothing');
    expect(second.stderr).toContain('credits remaining 49800 units');
    expect(charges()).toBe(before + 1);
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).clients)).toEqual([server.url]);
  });

  it('-v logs each round trip with the payment redacted', async () => {
    const result = await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa', '-v']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('> (no payment header)');
    expect(result.stderr).toContain('< 402');
    expect(result.stderr).toMatch(/> payment: top-up of 50000 units with pm_…visa, idempotency key \S{6}…/);
    expect(result.stderr).toContain('< 200');
    expect(result.stderr).not.toMatch(/[0-9a-f]{64}/);
  });

  it("pays the demo's yen route with the flags its --help shows, and reports the charge the server confirmed", async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    const example = help.stderr.split('\n').find((line) => line.includes('--max-topup jpy='));
    expect(example).toBeDefined();
    // The help's example continues the command line: '--currency jpy \' then the budget flags.
    const flags = ['--currency', 'jpy', ...example!.trim().split(/\s+/)];
    const before = charges();
    const result = await run([`${server.url}/api/fortune`, '--pm', 'pm_card_visa', ...flags]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toHaveProperty('fortune');
    expect(result.stderr).toContain('charged 100 JPY for 1000000 units of credit');
    expect(result.stderr).not.toContain('did not confirm');
    expect(charges()).toBe(before + 1);
    const pi = succeededCharges(stack.emulator).at(-1)!;
    expect(pi).toMatchObject({ amount: 100, currency: 'jpy' });
  });

  it('without budget flags pays the dollar offer of the yen route: the default caps do not cover a yen top-up', async () => {
    const result = await run([`${server.url}/api/fortune`, '--pm', 'pm_card_visa', '--currency', 'jpy']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('charged 5.00 USD');
    expect(succeededCharges(stack.emulator).at(-1)).toMatchObject({ currency: 'usd' });
  });

  it('reads a --budget file, lets flags override it, and refuses an unknown key with exit 2', async () => {
    const file = join(dir, 'budget.json');
    await writeFile(file, JSON.stringify({ maxTopUp: { jpy: 1_000_000 }, perOrigin: { perDay: { jpy: 1_000_000 } }, total: { perDay: 'unlimited' }, unconfirmedCharges: 'as-specified' }));
    const paid = await run([`${server.url}/api/fortune`, '--pm', 'pm_card_visa', '--currency', 'jpy', '--budget', file]);
    expect(paid.code).toBe(0);
    const capped = await run([`${server.url}/api/fortune`, '--pm', 'pm_card_visa', '--currency', 'jpy', '--budget', file, '--max-topup', '10']);
    expect(capped.code).toBe(4);
    expect(capped.stderr).toContain('max_top_up');
    await writeFile(file, JSON.stringify({ maxTopup: 5 }));
    const typo = await run([`${server.url}/api/joke`, '--pm', 'pm_card_visa', '--budget', file]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown key 'maxTopup'");
    expect((await run([`${server.url}/api/joke`, '--origin-cap-day', 'usd=5,usd=6'])).code).toBe(2);
  });
});
