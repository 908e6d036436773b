/**
 * The Hono middleware in-process, with `app.request(...)`, in the app
 * shapes that open free doors in naive paywalls: a wildcard free route
 * behind the paid one, a sub-app mounted under a prefix, the paywall
 * registered inside the mounted sub-app, HEAD for GET, and a handler that
 * throws; and the webhook route's body cap. The engine under it is real
 * (Redis ledger, Stripe emulator).
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import { PaymentEngine } from '@stripe402/server';
import { createStripeClient, StripeSdkGateway } from '@stripe402/server';
import { stripe402 } from './middleware.ts';
import type { PaidRouteConfig } from '@stripe402/server';
import { freshSecret, openTestLedger, type TestLedger } from '../server/test-helpers.ts';

const ROUTES: PaidRouteConfig[] = [
  { method: 'GET', path: '/api/joke', amount: 10_000, currency: 'usd', minTopUp: 50_000 },
  { method: 'GET', path: '/api/items/:id', amount: 10_000, currency: 'usd', minTopUp: 50_000 },
];

let emulator: Emulator;
let store: TestLedger;
let engine: PaymentEngine;

beforeAll(async () => {
  emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  store = await openTestLedger('redis');
  engine = new PaymentEngine({
    ledger: store.ledger,
    gateway: new StripeSdkGateway(createStripeClient(emulator.secretKey, { apiUrl: emulator.url })),
    serverSecret: freshSecret(),
    publishableKey: emulator.publishableKey,
    routes: ROUTES,
  });
});
afterAll(async () => {
  await store?.dispose();
  await emulator?.close();
});

const JOKE = 'the paid joke';

describe('the engine', () => {
  it('refuses a server secret shorter than 32 bytes at construction', () => {
    const options = { ledger: store.ledger, gateway: engine.gateway, publishableKey: emulator.publishableKey, routes: ROUTES };
    expect(() => new PaymentEngine({ ...options, serverSecret: 'x'.repeat(31) })).toThrow(/32 bytes/);
    expect(() => new PaymentEngine({ ...options, serverSecret: 'x'.repeat(32) })).not.toThrow();
  });

  it("refuses routes whose minimum top-up is below Stripe's minimum charge at construction", () => {
    const options = { ledger: store.ledger, gateway: engine.gateway, publishableKey: emulator.publishableKey, serverSecret: freshSecret() };
    expect(() => new PaymentEngine({ ...options, routes: [{ method: 'GET', path: '/x', amount: 100, currency: 'usd', minTopUp: 1_000 }] })).toThrow(/minimum/);
  });
});

describe('the paywall in front of a wildcard free route', () => {
  function app() {
    const a = new Hono();
    a.use(stripe402({ engine }));
    a.get('/api/joke', (c) => c.text(JOKE));
    // A catch-all that would happily serve any spelling of the paid path.
    a.get('*', (c) => c.text(`static: ${JOKE}`));
    return a;
  }

  it.each(['/api/joke', '/api/joke/', '/API/JOKE', '/api/%6Aoke', '//api//joke', '/x/../api/joke', '/static/api/joke'])(
    'GET %s answers 402, not the catch-all',
    async (path) => {
      const response = await app().request(`http://localhost${path}`);
      expect(response.status).toBe(402);
      expect(await response.text()).not.toContain(JOKE);
    },
  );

  it('serves free paths through the catch-all', async () => {
    const response = await app().request('http://localhost/index.html');
    expect(response.status).toBe(200);
  });

  it('answers HEAD of a paid GET with the challenge headers and no body', async () => {
    const response = await app().request('http://localhost/api/joke', { method: 'HEAD' });
    expect(response.status).toBe(402);
    expect(response.headers.get('payment-required')).toBeTruthy();
    expect(await response.text()).toBe('');
  });
});

describe('the paywall and mounted sub-apps', () => {
  it('covers a paid route mounted under a prefix, with the paywall on the parent', async () => {
    const api = new Hono();
    api.get('/api/joke', (c) => c.text(JOKE));
    const parent = new Hono();
    parent.use(stripe402({ engine }));
    parent.route('/v1', api);
    const response = await parent.request('http://localhost/v1/api/joke');
    expect(response.status).toBe(402);
    expect(await response.text()).not.toContain(JOKE);
  });

  it('covers a paid route when the paywall lives inside the mounted sub-app', async () => {
    const api = new Hono();
    api.use(stripe402({ engine }));
    api.get('/api/joke', (c) => c.text(JOKE));
    const parent = new Hono();
    parent.route('/v2', api);
    for (const path of ['/v2/api/joke', '/v2/API/joke/']) {
      const response = await parent.request(`http://localhost${path}`);
      expect(response.status).toBe(402);
    }
  });

  it('matches a parameterised route and names the resource with the value', async () => {
    const a = new Hono();
    a.use(stripe402({ engine }));
    a.get('/api/items/:id', (c) => c.text(`item ${c.req.param('id')}`));
    const response = await a.request('http://localhost/api/items/42');
    expect(response.status).toBe(402);
    expect(await response.json()).toMatchObject({ resource: { url: '/api/items/42' } });
  });
});

describe('a paid request through the middleware', () => {
  it('is served with payment-response, and a throwing handler gives the credits back', async () => {
    const a = new Hono();
    a.use(stripe402({ engine }));
    a.get('/api/joke', (c) => c.text(JOKE));
    a.get('/api/items/:id', () => {
      throw new Error('database on fire');
    });
    a.onError((_error, c) => c.text('internal error', 500));
    const paid = await a.request('http://localhost/api/joke', {
      headers: { payment: encodeHeader({ stripe402Version: 1, paymentMethodId: 'pm_card_visa' }) },
    });
    expect(paid.status).toBe(200);
    expect(await paid.text()).toBe(JOKE);
    const receipt = decodePaymentResponseHeader(paid.headers.get('payment-response')!);
    expect(receipt.ok && receipt.value).toMatchObject({ success: true, creditsRemaining: 40_000 });
    const clientId = receipt.ok ? receipt.value.clientId : '';

    const failed = await a.request('http://localhost/api/items/7', { headers: { payment: encodeHeader({ stripe402Version: 1, clientId }) } });
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain('database on fire');
    const restored = decodePaymentResponseHeader(failed.headers.get('payment-response')!);
    expect(restored.ok && restored.value).toMatchObject({ success: true, creditsRemaining: 40_000 });
    expect(await store.ledger.balance({ clientId, currency: 'usd' })).toBe(40_000);
  });

  it('serves discovery, and leaves the webhook path alone when no secret is configured', async () => {
    const a = new Hono();
    a.use(stripe402({ engine }));
    const doc = await a.request('http://localhost/.well-known/stripe402');
    expect(doc.status).toBe(200);
    expect((await doc.json()).routes).toHaveLength(2);
    const webhook = await a.request('http://localhost/stripe402/webhook', { method: 'POST', body: '{}' });
    expect(webhook.status).toBe(404);
  });
});

describe('the webhook route', () => {
  function withWebhook(options: { readFirst?: boolean } = {}) {
    const gateway = new StripeSdkGateway(createStripeClient(emulator.secretKey, { apiUrl: emulator.url }), { deploymentId: 'a'.repeat(24) });
    const withDeployment = new PaymentEngine({ ledger: store.ledger, gateway, serverSecret: freshSecret(), publishableKey: emulator.publishableKey, routes: ROUTES });
    const a = new Hono();
    // A middleware of the application that reads every body first.
    if (options.readFirst) {
      a.use(async (c, next) => {
        await c.req.text();
        await next();
      });
    }
    a.use(stripe402({ engine: withDeployment, webhookSecret: 'whsec_middleware_test', webhookMaxBytes: 1024 }));
    return a;
  }

  it('is refused at construction when the gateway names no deployment, since it could not tell its own PaymentIntents (LEDG-9)', () => {
    expect(() => stripe402({ engine, webhookSecret: 'whsec_middleware_test' })).toThrow(/names its deployment/);
  });

  it('answers 413 to a body over the cap, whether it streams in or an earlier middleware read it', async () => {
    const big = 'x'.repeat(2048);
    for (const app of [withWebhook(), withWebhook({ readFirst: true })]) {
      const response = await app.request('/stripe402/webhook', { method: 'POST', body: big, headers: { 'stripe-signature': 't=1,v1=00' } });
      expect(response.status).toBe(413);
      const small = await app.request('/stripe402/webhook', { method: 'POST', body: '{}', headers: { 'stripe-signature': 't=1,v1=00' } });
      expect(small.status).toBe(400);
    }
  });
});
