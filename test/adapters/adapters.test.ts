/**
 * Every adapter passes the conformance suite at level `all`, as a real app
 * of its framework on a real port, exactly as the Hono reference server does
 * in the same run (which conformance/test/cli.test.ts judges), and behaves as the Hono
 * middleware does: a paid POST's body reaches the handler through a body
 * parser mounted first, a failing handler gives the credit back, and a
 * misconfiguration fails when the app is built, not at its first request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripe402 as honoPaywall } from '@stripe402/hono';
import { stripe402 as expressPaywall } from '@stripe402/express';
import { stripe402 as fastifyPaywall } from '@stripe402/fastify';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import { createStripeClient, PaymentEngine, PaywallConfigError, StripeSdkGateway, stripe402Fetch } from '@stripe402/server';
import { DEMO_ROUTES } from 'stripe402';
import { signatureHeader } from '@stripe402/stripe-emulator';
import Fastify from 'fastify';
import { startExpressApp, startFastifyApp, startFetchApp, type RunningApp } from './apps.ts';
import { conformanceAll, problems, startStack, type Stack } from './kit.ts';
import { startReferenceTarget } from '../../conformance/test/harness.ts';
import { runConformance } from '@stripe402/conformance';
import type { ConformanceReport } from '@stripe402/core';

/** The Hono reference server's own run at level all, the measure every adapter is held to. */
let reference: Promise<ConformanceReport> | undefined;
function referenceReport(): Promise<ConformanceReport> {
  return (reference ??= (async () => {
    const target = await startReferenceTarget();
    try {
      return await runConformance({ target: target.url, level: 'all', failingRoute: '/api/fail', serverSecret: target.serverSecret, stripeUrl: target.stripeUrl, stripeKey: target.stripeKey });
    } finally {
      await target.close();
    }
  })());
}


const adapters: Array<[string, (options: Parameters<typeof startFetchApp>[0]) => Promise<RunningApp>]> = [
  ['Express 5', (options) => startExpressApp(options, 5)],
  ['Express 4', (options) => startExpressApp(options, 4)],
  ['Fastify 5', startFastifyApp],
  ['the Fetch-API handler', startFetchApp],
];

describe.each(adapters)('the paywall on %s', (_name, start) => {
  // Each adapter on its own emulator and ledger, as the reference server is judged.
  let stack: Stack;
  let app: RunningApp;
  beforeAll(async () => {
    stack = await startStack();
    app = await start({ engine: stack.engine, webhookSecret: stack.webhookSecret });
  });
  afterAll(async () => {
    await app?.close();
    await stack?.close();
  });

  it('passes every check of the conformance suite at level all that the Hono reference server passes', async () => {
    const report = await conformanceAll(app.url, stack);
    const measure = await referenceReport();
    expect(problems(report, measure)).toEqual([]);
    expect(report.checks.map((c) => c.id)).toEqual(measure.checks.map((c) => c.id));
    expect(report.levelReached).toBe(measure.levelReached);
  }, 240_000);

  it('hands a paid POST its body, which a body parser mounted first has read, and charges its price once', async () => {
    const { clientId, creditsRemaining } = await topUp(app.url);
    const body = JSON.stringify({ hello: 'world', n: 42 });
    const payment = encodeHeader({ stripe402Version: 1, clientId });
    const response = await fetch(`${app.url}/api/echo`, { method: 'POST', headers: { payment, 'content-type': 'application/json' }, body });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.text()).toBe(body);
    const receipt = decodePaymentResponseHeader(response.headers.get('payment-response')!);
    expect(receipt.ok && receipt.value.success && receipt.value.creditsRemaining).toBe(creditsRemaining - 50);
  });

  it('receives a Stripe webhook signed over its exact bytes, and refuses a forged one', async () => {
    const event = JSON.stringify({ id: 'evt_adapter', object: 'event', type: 'customer.created', created: 1, livemode: false, pending_webhooks: 0, request: null, data: { object: { id: 'cus_adapter', object: 'customer' } } });
    const post = (secret: string) =>
      fetch(`${app.url}/stripe402/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signatureHeader(event, secret, Math.floor(Date.now() / 1000)) },
        body: event,
      });
    const signed = await post(stack.webhookSecret);
    expect(signed.status).toBe(200);
    expect(await signed.json()).toEqual({ received: true, outcome: 'ignored' });
    const forged = await post('whsec_someone_else');
    expect(forged.status).toBe(400);
    expect(await forged.json()).toEqual({ received: false, error: 'invalid signature' });
  });

  it('gives the credit back when the handler fails', async () => {
    const { clientId, creditsRemaining } = await topUp(app.url);
    const failed = await fetch(`${app.url}/api/fail`, { headers: { payment: encodeHeader({ stripe402Version: 1, clientId }) } });
    expect(failed.status).toBe(500);
    const after = decodePaymentResponseHeader(failed.headers.get('payment-response')!);
    expect(after.ok && after.value.creditsRemaining).toBe(creditsRemaining);
  });
});

describe('the Express paywall with a handler that streams', () => {
  let stack: Stack;
  let app: RunningApp;
  beforeAll(async () => {
    stack = await startStack();
    const express = (await import('express')).default;
    const server = express();
    server.use(expressPaywall({ engine: stack.engine }));
    // writeHead with its own cache-control, then chunks: the paywall holds them until the request is settled.
    server.get('/api/joke', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'Cache-Control': 'public, max-age=3600' });
      res.write('one ');
      setTimeout(() => res.end('two'), 10);
    });
    const http = await import('node:http');
    const listener = http.createServer(server);
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as import('node:net').AddressInfo;
    app = { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => { listener.close(() => resolve()); listener.closeAllConnections(); }) };
  });
  afterAll(async () => {
    await app?.close();
    await stack?.close();
  });

  it('sends the whole body with payment-response, and its cache-control never outlives the payment (ENC-15)', async () => {
    const { clientId, creditsRemaining } = await topUp(app.url);
    const response = await fetch(`${app.url}/api/joke`, { headers: { payment: encodeHeader({ stripe402Version: 1, clientId }) } });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('one two');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const receipt = decodePaymentResponseHeader(response.headers.get('payment-response')!);
    expect(receipt.ok && receipt.value.creditsRemaining).toBe(creditsRemaining - 100);
  });
});

/** Tops up with a test card on the paid joke; the client id and the balance after it. */
async function topUp(url: string): Promise<{ clientId: string; creditsRemaining: number }> {
  const payment = encodeHeader({ stripe402Version: 1, paymentMethodId: 'pm_card_visa', topUpAmount: 50_000 });
  const response = await fetch(`${url}/api/joke`, { headers: { payment } });
  const receipt = decodePaymentResponseHeader(response.headers.get('payment-response')!);
  if (response.status !== 200 || !receipt.ok || !receipt.value.success) throw new Error(`the top-up failed: ${response.status}`);
  return { clientId: receipt.value.clientId, creditsRemaining: receipt.value.creditsRemaining };
}

describe('a misconfigured paywall', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const cases: Array<[string, () => unknown]> = [
    ['no engine', () => ({})],
    ['an engine that is not a PaymentEngine', () => ({ engine: { routes: [] } })],
    ['a misspelled option', () => ({ engine: stack.engine, webhooksecret: 'whsec_x' })],
    ['an empty webhook secret', () => ({ engine: stack.engine, webhookSecret: '' })],
    ['a webhook path without a leading slash', () => ({ engine: stack.engine, webhookPath: 'hooks/stripe' })],
    ['a webhook body cap that is not a positive integer', () => ({ engine: stack.engine, webhookMaxBytes: 0 })],
    [
      'a webhook secret but a gateway that names no deployment',
      () => ({
        engine: new PaymentEngine({
          ledger: stack.ledger,
          gateway: new StripeSdkGateway(createStripeClient(stack.emulator.secretKey, { apiUrl: stack.emulator.url })),
          serverSecret: stack.serverSecret,
          publishableKey: stack.emulator.publishableKey,
          routes: DEMO_ROUTES,
        }),
        webhookSecret: stack.webhookSecret,
      }),
    ],
  ];

  it.each(cases)('with %s fails when the app is built, in every adapter, with a message naming the adapter', async (_name, options) => {
    const bad = options() as never;
    expect(() => honoPaywall(bad)).toThrow(/stripe402 \(hono\): /);
    expect(() => expressPaywall(bad)).toThrow(/stripe402 \(express\): /);
    expect(() => stripe402Fetch(bad, () => new Response())).toThrow(PaywallConfigError);
    const app = Fastify();
    await expect((async () => {
      await app.register(fastifyPaywall, bad);
      await app.ready();
    })()).rejects.toThrow(/stripe402 \(fastify\): /);
    await app.close().catch(() => undefined);
  });
});
