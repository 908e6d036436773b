// `stripe402 emulator`: option parsing, the startup banner an operator
// copies keys from, serving the API until stopped, and stopping cleanly on
// SIGTERM in a real child process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorUsageError, runEmulatorCli, stripeClientForUrl } from './index.ts';

async function waitForLine(lines: string[], pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of lines) {
      const match = pattern.exec(line);
      if (match) return match;
    }
    if (Date.now() > deadline) throw new Error(`no line matched ${pattern}: ${lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const secretDir = mkdtempSync(path.join(tmpdir(), 'stripe402-emulator-cli-'));
afterAll(() => rmSync(secretDir, { recursive: true, force: true }));
/** A file holding `secret`, as --webhook-secret-file reads it. */
function secretFile(secret: string): string {
  const file = path.join(secretDir, `secret-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

describe('runEmulatorCli', () => {
  it('prints the URL and keys, serves the API, and stops when told to', async () => {
    const lines: string[] = [];
    const controller = new AbortController();
    const running = runEmulatorCli(['--port', '0', '--webhook-url', 'http://127.0.0.1:9/hook', '--webhook-secret-file', secretFile('whsec_cli_test')], {
      log: (line) => lines.push(line),
      signal: controller.signal,
    });
    const [, url] = await waitForLine(lines, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
    expect(lines.join('\n')).toContain('sk_test_emulator');
    expect(lines.join('\n')).toContain('pk_test_emulator');
    expect(lines.join('\n')).toContain('POST http://127.0.0.1:9/hook');
    const stripe = stripeClientForUrl(url!, 'sk_test_emulator', { maxNetworkRetries: 0 });
    expect((await stripe.paymentMethods.retrieve('pm_card_visa')).card?.last4).toBe('4242');
    controller.abort();
    await running;
    expect(lines.at(-1)).toBe('Stripe emulator stopped.');
    await expect(stripe.paymentMethods.retrieve('pm_card_visa')).rejects.toBeInstanceOf(Stripe.errors.StripeConnectionError);
  });

  it('accepts the subcommand name in front of its options', async () => {
    const lines: string[] = [];
    const controller = new AbortController();
    controller.abort();
    await runEmulatorCli(['emulator', '--port', '0'], { log: (line) => lines.push(line), signal: controller.signal });
    expect(lines[0]).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it('prints help and returns for --help', async () => {
    const lines: string[] = [];
    await runEmulatorCli(['--help'], { log: (line) => lines.push(line) });
    expect(lines.join('\n')).toMatch(/--webhook-url/);
  });

  it('rejects bad options as usage errors with exit code 2', async () => {
    const quiet = { log: () => undefined };
    for (const argv of [['--port', 'abc'], ['--port', '70000'], ['--webhook-url', 'http://127.0.0.1:9/'], ['--webhook-secret', 'whsec_x'], ['--bogus']]) {
      const error = await runEmulatorCli(argv, quiet).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmulatorUsageError);
      expect((error as EmulatorUsageError).exitCode).toBe(2);
    }
    const badSecret = await runEmulatorCli(['--port', '0', '--webhook-url', 'http://127.0.0.1:9/', '--webhook-secret-file', secretFile('nope')], quiet).catch((e: unknown) => e);
    expect(badSecret).toBeInstanceOf(EmulatorUsageError);
    const missing = await runEmulatorCli(['--port', '0', '--webhook-url', 'http://127.0.0.1:9/', '--webhook-secret-file', '/nonexistent/secret'], quiet).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/--webhook-secret-file .*ENOENT/);
  });

  it('never takes the webhook secret from a flag', async () => {
    const error = await runEmulatorCli(['--port', '0', '--webhook-url', 'http://127.0.0.1:9/', '--webhook-secret', 'whsec_cli_test'], { log: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmulatorUsageError);
    expect((error as Error).message).toMatch(/secrets are not taken from flags/);
  });
});

describe('stripeClientForUrl', () => {
  it('derives host, port and protocol from a base URL and refuses a path', () => {
    const local = stripeClientForUrl('http://127.0.0.1:12111', 'sk_test_x');
    expect([local.getApiField('host'), local.getApiField('port'), local.getApiField('protocol')]).toEqual(['127.0.0.1', '12111', 'http']);
    const real = stripeClientForUrl('https://api.stripe.com', 'sk_test_x');
    expect([real.getApiField('host'), real.getApiField('port'), real.getApiField('protocol')]).toEqual(['api.stripe.com', 443, 'https']);
    expect(() => stripeClientForUrl('http://127.0.0.1:12111/v1', 'sk_test_x')).toThrow(/path/);
    expect(() => stripeClientForUrl('ftp://example.com', 'sk_test_x')).toThrow(/http or https/);
    expect(() => stripeClientForUrl('not a url', 'sk_test_x')).toThrow(/Not a URL/);
  });
});

describe('the emulator as a process', () => {
  it('runs until SIGTERM and exits cleanly', async () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const script = `const { runEmulatorCli } = await import(${JSON.stringify(cli)}); await runEmulatorCli(['--port', '0']);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n')));
    child.stderr.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n')));
    try {
      const [, url] = await waitForLine(lines, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 20_000);
      const health = await fetch(`${url}/_emulator/health`);
      expect(health.status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines).toContain('Stripe emulator stopped.');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
