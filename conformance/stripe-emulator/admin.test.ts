// The admin API against a web page open in a developer's browser: a page
// may send requests to the emulator (cross-site, or same-site after DNS
// rebinding) but must read nothing and change nothing. So: no CORS headers
// on admin answers, `Host` must name the loopback, state changes only as
// application/json, and the webhook signing secret is never returned.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from './index.ts';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await emulator?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (fetch would set Host itself). */
function send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const { hostname, port } = new URL(emulator.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, agent: false, headers: { host: `${hostname}:${port}`, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };

describe('the emulator admin API', () => {
  it('never returns the webhook signing secret', async () => {
    const secret = 'whsec_admin_test_never_returned';
    emulator.setWebhook({ url: 'http://127.0.0.1:9/hook', secret });
    try {
      const answer = await send('GET', '/_emulator/webhook');
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ webhook: { url: 'http://127.0.0.1:9/hook' } });
      expect(answer.body).not.toContain(secret);
      expect(answer.body).not.toContain('whsec_');
    } finally {
      emulator.setWebhook(undefined);
    }
  });

  it('sends no CORS headers, on answers or preflights', async () => {
    for (const answer of [
      await send('GET', '/_emulator/events', { origin: 'https://attacker.example' }),
      await send('OPTIONS', '/_emulator/webhook', { origin: 'https://attacker.example', 'access-control-request-method': 'POST' }),
    ]) {
      expect(Object.keys(answer.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('answers only requests whose Host names the loopback (DNS rebinding)', async () => {
    const { port } = new URL(emulator.url);
    for (const host of [`attacker.example:${port}`, 'attacker.example', `10.0.0.1:${port}`]) {
      expect((await send('GET', '/_emulator/events', { host })).status, host).toBe(403);
      expect((await send('POST', '/_emulator/reset', { host, ...JSON_TYPE })).status, host).toBe(403);
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
      expect((await send('GET', '/_emulator/health', { host })).status, host).toBe(200);
    }
  });

  it('changes nothing for a request that is not application/json, as a cross-site form sends', async () => {
    await emulator.stripe().paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, automatic_payment_methods: { enabled: true, allow_redirects: 'never' } });
    const held = emulator.state.paymentIntents().length;
    expect(held).toBeGreaterThan(0);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expect((await send('POST', '/_emulator/reset', { 'content-type': type })).status, type).toBe(415);
      const repoint = await send('POST', '/_emulator/webhook', { 'content-type': type }, JSON.stringify({ url: 'https://attacker.example/hook', secret: 'whsec_attacker' }));
      expect(repoint.status, type).toBe(415);
      expect((await send('POST', '/_emulator/faults', { 'content-type': type }, JSON.stringify({ kind: 'status500' }))).status, type).toBe(415);
    }
    expect((await send('POST', '/_emulator/reset')).status).toBe(415);
    expect(emulator.state.paymentIntents()).toHaveLength(held);
    expect(JSON.parse((await send('GET', '/_emulator/webhook')).body)).toEqual({ webhook: null });
    expect(emulator.faults.list()).toEqual([]);
    expect((await send('POST', '/_emulator/reset', { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
    expect(emulator.state.paymentIntents()).toHaveLength(0);
  });
});

describe('the Stripe API of an emulator on loopback', () => {
  it('answers only requests whose Host names the loopback', async () => {
    const auth = { authorization: `Bearer ${emulator.secretKey}` };
    expect((await send('GET', '/v1/payment_intents', { ...auth, host: 'attacker.example' })).status).toBe(403);
    expect((await send('GET', '/v1/payment_intents', auth)).status).toBe(200);
  });

  it('never lets a cross-origin page send an API key', async () => {
    const preflight = await send('OPTIONS', '/v1/payment_intents', { origin: 'https://attacker.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' });
    const allowed = String(preflight.headers['access-control-allow-headers'] ?? '').toLowerCase().split(/\s*,\s*/);
    expect(allowed).not.toContain('authorization');
  });
});
