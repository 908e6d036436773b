/**
 * The standalone server's defences against its own configuration and
 * against bodies it must not buffer, over real sockets: the webhook body
 * is capped while it streams (413 before it is buffered); test mode stays
 * on loopback and out of NODE_ENV=production; a live key refuses plain
 * HTTP on a public address without a TLS proxy, and behind one takes
 * payment headers only from it over HTTPS (SEC-1), and refuses a
 * patterned server secret (CID-2); secrets never come from flags; a
 * custom route table never leaves a demo handler answering for free.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { openLedger } from './ledger/index.ts';
import type { Ledger } from './ledger/types.ts';
import { resolveServerSecret, secretWeakness, startServer, type RunningServer } from 'stripe402';
import { emulatorFootprint, freshSecret, request, startTestServer } from './test-helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'stripe402-hardening-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** TEST-NET-1 (RFC 5737): a non-loopback address no test ever binds. */
const PUBLIC_HOST = '192.0.2.10';

/**
 * POSTs `totalBytes` to `url` in 64 KiB chunks (chunked, or with a
 * Content-Length), stopping as soon as a response arrives. Resolves with
 * the status and how many bytes were written by then.
 */
function streamPost(url: string, totalBytes: number, declareLength: boolean): Promise<{ status: number; body: string; written: number }> {
  const chunk = Buffer.alloc(64 * 1024, 0x7b);
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = http.request(
      {
        host: hostname,
        port,
        path: pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00', ...(declareLength ? { 'content-length': String(totalBytes) } : {}) },
      },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => (body += text));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, written }));
        res.on('error', reject);
      },
    );
    req.on('error', (error) => (answered ? undefined : reject(error)));
    const pump = () => {
      while (!answered && written < totalBytes) {
        const piece = totalBytes - written >= chunk.length ? chunk : chunk.subarray(0, totalBytes - written);
        written += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe('the webhook body', () => {
  let emulator: Emulator;
  let ledger: Ledger;
  let server: RunningServer;
  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    ledger = await openLedger('pglite:memory');
    server = await startTestServer(ledger, emulator, { webhookSecret: `whsec_${randomBytes(16).toString('hex')}`, webhookMaxBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await server?.close();
    await ledger?.close();
    await emulator?.close();
  });

  it('declared larger than the cap is answered 413 before any of it is sent', async () => {
    const answer = await streamPost(`${server.url}/stripe402/webhook`, 256 * 1024 * 1024, true);
    expect(answer.status).toBe(413);
    // The request was answered long before 256 MiB could be written.
    expect(answer.written).toBeLessThan(64 * 1024 * 1024);
  });

  it('streamed without a length is answered 413 once it passes the cap, not after it is read whole', async () => {
    const answer = await streamPost(`${server.url}/stripe402/webhook`, 256 * 1024 * 1024, false);
    expect(answer.status).toBe(413);
    expect(answer.written).toBeLessThan(64 * 1024 * 1024);
    expect(JSON.parse(answer.body)).toEqual({ received: false, error: 'body too large' });
  });

  it('within the cap is still read and checked (a bad signature is 400)', async () => {
    const answer = await streamPost(`${server.url}/stripe402/webhook`, 1000, false);
    expect(answer.status).toBe(400);
    // And the server keeps serving.
    expect((await request(`${server.url}/api/joke`)).status).toBe(402);
  });
});

describe('test mode', () => {
  it('refuses a non-loopback address unless told the deployment is public on purpose', async () => {
    await expect(startServer({ host: PUBLIC_HOST, port: 0, env: {}, dataDir: tempDir(), ledger: 'pglite:memory', log: false })).rejects.toThrow(
      /refusing to listen on 192\.0\.2\.10 in test mode.*--public-test-mode/,
    );
  });

  it('never starts the in-process emulator under NODE_ENV=production, on any address or flag', async () => {
    for (const options of [{ host: '127.0.0.1' }, { host: PUBLIC_HOST, publicTestMode: true }]) {
      await expect(startServer({ ...options, port: 0, env: { NODE_ENV: 'production' }, dataDir: tempDir(), ledger: 'pglite:memory', log: false })).rejects.toThrow(
        /NODE_ENV is production but no STRIPE_SECRET_KEY is set/,
      );
    }
  });

  it('with Stripe test keys under NODE_ENV=production needs --public-test-mode', async () => {
    const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    try {
      const base = { port: 0, env: { NODE_ENV: 'production' }, stripeUrl: emulator.url, stripeSecretKey: 'sk_test_x', stripePublishableKey: 'pk_test_x', ledger: 'pglite:memory', dataDir: tempDir(), log: false as const };
      await expect(startServer(base)).rejects.toThrow(/test key: refusing to start/);
      const staging = await startServer({ ...base, publicTestMode: true });
      expect(staging.testMode).toBe(true);
      await staging.close();
    } finally {
      await emulator.close();
    }
  });
});

describe('a live key', () => {
  const live = { stripeSecretKey: 'sk_live_notreal', stripePublishableKey: 'pk_live_notreal', port: 0, env: {}, ledger: 'pglite:memory', log: false as const };

  it('refuses plain HTTP on a non-loopback address without a TLS-terminating proxy (SEC-1)', async () => {
    await expect(startServer({ ...live, host: PUBLIC_HOST, serverSecret: freshSecret(), dataDir: tempDir() })).rejects.toThrow(
      /refusing to serve a live Stripe key over plain HTTP on 192\.0\.2\.10 \(SEC-1\).*--trusted-proxy/,
    );
  });

  it('runs on loopback, where plain HTTP is allowed', async () => {
    const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    try {
      const server = await startServer({ ...live, host: '127.0.0.1', stripeUrl: emulator.url, serverSecret: freshSecret(), dataDir: tempDir() });
      expect(server.testMode).toBe(false);
      await server.close();
    } finally {
      await emulator.close();
    }
  });

  it('behind a TLS proxy takes a payment header only from the proxy, and only when it says HTTPS (SEC-1)', async () => {
    const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    const ledger = await openLedger('pglite:memory');
    try {
      // The proxy is this test, on loopback.
      const server = await startServer({ ...live, ledger, host: '127.0.0.1', trustedProxies: ['127.0.0.0/8'], stripeUrl: emulator.url, serverSecret: freshSecret(), dataDir: tempDir() });
      try {
        const before = emulatorFootprint(emulator);
        const payment = { stripe402Version: 1, clientId: 'e'.repeat(64) };
        for (const headers of [{}, { 'x-forwarded-proto': 'http' }, { 'x-forwarded-proto': 'ftp, https' }] as Array<Record<string, string>>) {
          const refused = await request(`${server.url}/api/joke`, { payment, headers });
          expect(refused.status, JSON.stringify(headers)).toBe(403);
          expect(JSON.parse(refused.text)).toMatchObject({ error: 'https_required' });
          expect(refused.payment).toBeUndefined();
        }
        const secure = await request(`${server.url}/api/joke`, { payment, headers: { 'x-forwarded-proto': 'https' } });
        expect(secure.status).toBe(402);
        expect(secure.payment).toMatchObject({ success: false, errorCode: 'insufficient_credits' });
        // Without a payment header nothing is secret: the challenge is served either way.
        expect((await request(`${server.url}/api/joke`)).status).toBe(402);
        expect(emulatorFootprint(emulator)).toEqual(before);
        expect(await ledger.accounts()).toEqual([]);
      } finally {
        await server.close();
      }
      await expect(startServer({ ...live, ledger, host: '127.0.0.1', trustedProxies: ['proxy.internal'], serverSecret: freshSecret(), dataDir: tempDir() })).rejects.toThrow(
        /--trusted-proxy proxy\.internal: expected an IP address or a CIDR block/,
      );
    } finally {
      await ledger.close();
      await emulator.close();
    }
  });

  it('refuses a server secret that is long enough but patterned', async () => {
    for (const weak of ['a'.repeat(32), 'ab'.repeat(20), 'password'.repeat(4), '0123456'.repeat(5)]) {
      expect(secretWeakness(weak)).toBeDefined();
      expect(() => resolveServerSecret(weak, true, tempDir(), () => {})).toThrow(/STRIPE402_SERVER_SECRET .*random bytes/);
      await expect(startServer({ ...live, host: '127.0.0.1', serverSecret: weak, dataDir: tempDir() })).rejects.toThrow(/STRIPE402_SERVER_SECRET/);
    }
  });

  it('accepts random secrets in the usual encodings', () => {
    for (let i = 0; i < 500; i++) {
      for (const secret of [randomBytes(16).toString('hex'), randomBytes(32).toString('hex'), randomBytes(24).toString('base64'), randomBytes(32).toString('base64url')]) {
        expect(secretWeakness(secret), secret).toBeUndefined();
      }
    }
  });
});

describe('the command line', () => {
  function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/stripe402.js'), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
  }

  it('refuses a secret given as a flag, saying where secrets go', async () => {
    const serve = await cli(['serve', '--port', '0', '--webhook-secret', 'whsec_on_the_command_line']);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toMatch(/secrets are not taken from flags.*STRIPE_WEBHOOK_SECRET or --webhook-secret-file/);
    expect(serve.stderr).not.toContain('whsec_on_the_command_line');
    const emulator = await cli(['emulator', '--port', '0', '--webhook-url', 'http://127.0.0.1:9/', '--webhook-secret', 'whsec_on_the_command_line']);
    expect(emulator.code).toBe(2);
    expect(emulator.stderr).toMatch(/secrets are not taken from flags.*STRIPE_WEBHOOK_SECRET or --webhook-secret-file/);
  });

  it('starts no test-mode server under NODE_ENV=production', async () => {
    const run = await cli(['serve', '--port', '0', '--data-dir', tempDir(), '--ledger', 'pglite:memory'], { NODE_ENV: 'production' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/NODE_ENV is production but no STRIPE_SECRET_KEY is set/);
  });

  it('runs no reconcile that does not know which deployment it credits for', async () => {
    const bare = await cli(['reconcile', '--ledger', 'pglite:memory', '--stripe-url', 'http://127.0.0.1:9']);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/credits only this deployment's top-ups: give --deployment ID/);
    const wrong = await cli(['reconcile', '--ledger', 'pglite:memory', '--stripe-url', 'http://127.0.0.1:9', '--deployment', 'all']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--deployment: expected the 24 hex digits/);
  });

  it('refuses an empty --webhook-secret-file with a clear error', async () => {
    const file = path.join(tempDir(), 'webhook-secret');
    writeFileSync(file, '', { mode: 0o600 });
    const run = await cli(['serve', '--port', '0', '--data-dir', tempDir(), '--ledger', 'pglite:memory', '--webhook-secret-file', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/--webhook-secret-file .*: the file is empty/);
  });

  it('verifies webhooks with the secret read from --webhook-secret-file', async () => {
    const secret = `whsec_${randomBytes(16).toString('hex')}`;
    const file = path.join(tempDir(), 'webhook-secret');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/stripe402.js'), 'serve', '--port', '0', '--data-dir', tempDir(), '--ledger', 'pglite:memory', '--quiet', '--webhook-secret-file', file], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 60_000);
        child.stdout.setEncoding('utf8').on('data', (text: string) => {
          out += text;
          const match = /"msg":"listening","url":"([^"]+)"/.exec(out);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
      });
      const body = JSON.stringify({ id: 'evt_file', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_notheldbystripe', object: 'payment_intent' } } });
      const post = (key: string) =>
        fetch(`${url}/stripe402/webhook`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret: key }) } });
      expect((await post('whsec_not_the_one')).status).toBe(400);
      const right = await post(secret);
      expect(right.status).toBe(200);
      expect(await right.json()).toEqual({ received: true, outcome: 'ignored' });
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });
});

describe('a custom route table', () => {
  let emulator: Emulator;
  let ledger: Ledger;
  let server: RunningServer;
  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    ledger = await openLedger('pglite:memory');
    server = await startTestServer(ledger, emulator, {
      routes: [{ method: 'GET', path: '/api/weather', amount: 2_500, currency: 'usd', minTopUp: 50_000 }],
    });
  });
  afterAll(async () => {
    await server?.close();
    await ledger?.close();
    await emulator?.close();
  });
  afterEach(() => emulator.faults.clear());

  it('leaves the demo handlers it does not price unanswered, never free', async () => {
    const before = emulatorFootprint(emulator);
    for (const [method, route] of [
      ['GET', '/api/joke'],
      ['POST', '/api/echo'],
      ['GET', '/api/fortune'],
      ['GET', '/api/fail'],
    ] as const) {
      const response = await request(`${server.url}${route}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(response.status, `${method} ${route}`).toBe(404);
    }
    expect((await request(`${server.url}/api/weather`)).status).toBe(402);
    expect((await request(`${server.url}/health`)).status).toBe(200);
    expect(emulatorFootprint(emulator)).toEqual(before);
  });
});
