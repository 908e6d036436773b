// Webhook delivery over real HTTP to a real local endpoint: events signed so
// that the official SDK's constructEvent accepts them, delivered off the
// request path, retried with a bounded backoff, resent on demand, and listed
// through the admin API and /v1/events.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorEvent } from './index.ts';

const SECRET = 'whsec_test_emulator_secret_0123456789';

interface Received {
  body: string;
  signature: string;
  userAgent: string | undefined;
}

/** A webhook endpoint on loopback whose answers the test scripts. */
class Receiver {
  received: Received[] = [];
  answers: number[] = [];
  delayMs = 0;
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      this.received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['stripe-signature']),
        userAgent: req.headers['user-agent'],
      });
      const status = this.answers.shift() ?? 200;
      setTimeout(() => res.writeHead(status).end(), this.delayMs);
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhook`;
  }

  async waitFor(count: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} deliveries, got ${this.received.length}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.received;
  }

  reset(): void {
    this.received = [];
    this.answers = [];
    this.delayMs = 0;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let receiver: Receiver;
let emulator: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  emulator = await startEmulator({ webhook: { url: receiver.url, secret: SECRET, retryDelaysMs: [50, 50, 50] } });
  stripe = emulator.stripe(undefined, { maxNetworkRetries: 0 });
});

afterAll(async () => {
  await emulator.close();
  await receiver.close();
});

afterEach(async () => {
  await emulator.webhooksIdle();
  emulator.reset();
  emulator.setWebhook({ url: receiver.url, secret: SECRET, retryDelaysMs: [50, 50, 50] });
  receiver.reset();
});

const charge = (payment_method: string): Stripe.PaymentIntentCreateParams => ({
  amount: 500,
  currency: 'usd',
  payment_method,
  confirm: true,
  automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
  metadata: { stripe402_client_id: 'client-1' },
});

async function adminEvents(type?: string): Promise<EmulatorEvent[]> {
  const response = await fetch(`${emulator.url}/_emulator/events${type ? `?type=${type}` : ''}`);
  return ((await response.json()) as { data: EmulatorEvent[] }).data;
}

describe('webhook events', () => {
  it('delivers payment_intent.succeeded signed so that the SDK\'s constructEvent accepts it', async () => {
    const pi = await stripe.paymentIntents.create(charge('pm_card_visa'), { idempotencyKey: 'webhook-key-0001' });
    const [delivery] = await receiver.waitFor(1);
    expect(delivery!.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(delivery!.userAgent).toMatch(/^Stripe\/1\.0/);
    const event = stripe.webhooks.constructEvent(delivery!.body, delivery!.signature, SECRET);
    expect(event).toMatchObject({
      object: 'event',
      type: 'payment_intent.succeeded',
      livemode: false,
      pending_webhooks: 1,
      request: { idempotency_key: 'webhook-key-0001' },
    });
    expect(event.id).toMatch(/^evt_/);
    expect(event.created).toBeGreaterThan(1_600_000_000);
    const object = event.data.object as Stripe.PaymentIntent;
    expect(object).toMatchObject({ id: pi.id, object: 'payment_intent', status: 'succeeded', metadata: { stripe402_client_id: 'client-1' } });
    expect(() => stripe.webhooks.constructEvent(delivery!.body, delivery!.signature, 'whsec_wrong')).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it('delivers payment_intent.payment_failed for a decline and for a failed authentication', async () => {
    await stripe.paymentIntents.create(charge('pm_card_chargeDeclinedInsufficientFunds')).catch(() => undefined);
    const pending = await stripe.paymentIntents.create(charge('pm_card_authenticationRequired'));
    await fetch(`${pending.next_action!.redirect_to_url!.url}?action=fail`);
    const deliveries = await receiver.waitFor(2);
    const events = deliveries.map((d) => stripe.webhooks.constructEvent(d.body, d.signature, SECRET));
    expect(events.map((e) => e.type)).toEqual(['payment_intent.payment_failed', 'payment_intent.payment_failed']);
    const [declined, unauthenticated] = events.map((e) => e.data.object as Stripe.PaymentIntent);
    expect(declined!.last_payment_error).toMatchObject({ decline_code: 'insufficient_funds' });
    expect(unauthenticated).toMatchObject({ id: pending.id, last_payment_error: { code: 'payment_intent_authentication_failure' } });
    expect(events[1]!.request).toEqual({ id: null, idempotency_key: null });
  });

  it('fires payment_intent.succeeded when authentication completes', async () => {
    const pending = await stripe.paymentIntents.create(charge('pm_card_authenticationRequired'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.received).toHaveLength(0);
    await fetch(`${pending.next_action!.redirect_to_url!.url}?action=complete`);
    const [delivery] = await receiver.waitFor(1);
    const event = stripe.webhooks.constructEvent(delivery!.body, delivery!.signature, SECRET);
    expect(event.type).toBe('payment_intent.succeeded');
    expect((event.data.object as Stripe.PaymentIntent).id).toBe(pending.id);
  });

  it('delivers every event type when enabledEvents is *', async () => {
    emulator.setWebhook({ url: receiver.url, secret: SECRET, enabledEvents: ['*'] });
    await stripe.paymentIntents.create(charge('pm_card_authenticationRequired'));
    const [delivery] = await receiver.waitFor(1);
    expect(JSON.parse(delivery!.body).type).toBe('payment_intent.requires_action');
  });

  it('answers the API request without waiting for a slow endpoint', async () => {
    receiver.delayMs = 3000;
    const started = Date.now();
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    expect(Date.now() - started).toBeLessThan(2000);
    await receiver.waitFor(1);
  });
});

describe('webhook retries and resends', () => {
  it('retries a failed delivery with backoff until the endpoint answers 2xx', async () => {
    receiver.answers = [500, 503];
    const pi = await stripe.paymentIntents.create(charge('pm_card_visa'));
    const deliveries = await receiver.waitFor(3);
    const ids = deliveries.map((d) => stripe.webhooks.constructEvent(d.body, d.signature, SECRET).id);
    expect(new Set(ids).size).toBe(1);
    await emulator.webhooksIdle();
    const [record] = await adminEvents('payment_intent.succeeded');
    expect((record!.event.data.object as Stripe.PaymentIntent).id).toBe(pi.id);
    expect(record!.deliveries.map((d) => d.status)).toEqual([500, 503, 200]);
    expect(record!.deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
  });

  it('gives up after the configured number of retries', async () => {
    receiver.answers = [500, 500, 500, 500, 500, 500];
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    await receiver.waitFor(4);
    await emulator.webhooksIdle();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(receiver.received).toHaveLength(4);
    expect(emulator.state.events()[0]!.deliveries.map((d) => d.status)).toEqual([500, 500, 500, 500]);
  });

  it('records an unreachable endpoint as a failed attempt and retries it', async () => {
    emulator.setWebhook({ url: 'http://127.0.0.1:9/unreachable', secret: SECRET, retryDelaysMs: [20] });
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    await emulator.webhooksIdle();
    const [record] = emulator.state.events();
    expect(record!.deliveries).toHaveLength(2);
    expect(record!.deliveries.every((d) => d.status === undefined && typeof d.error === 'string')).toBe(true);
  });

  it('resends an event on demand, so a handler can see it twice and out of order', async () => {
    const first = await stripe.paymentIntents.create(charge('pm_card_visa'));
    await stripe.paymentIntents.create(charge('pm_card_mastercard'));
    await receiver.waitFor(2);
    const older = emulator.state.events().find((e) => (e.event.data.object as Stripe.PaymentIntent).id === first.id)!;
    const response = await fetch(`${emulator.url}/_emulator/events/${older.event.id}/resend`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 200, resend: true, attempt: 2 });
    const deliveries = await receiver.waitFor(3);
    const ids = deliveries.map((d) => stripe.webhooks.constructEvent(d.body, d.signature, SECRET).id);
    expect(ids[2]).toBe(older.event.id);
    expect(ids[0]).toBe(older.event.id);
    expect((await fetch(`${emulator.url}/_emulator/events/evt_missing/resend`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status).toBe(404);
  });

  it('records events without delivering them when no endpoint is configured', async () => {
    emulator.setWebhook(undefined);
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.received).toHaveLength(0);
    const [record] = emulator.state.events();
    expect(record!.event).toMatchObject({ type: 'payment_intent.succeeded', pending_webhooks: 0 });
    const resend = await fetch(`${emulator.url}/_emulator/events/${record!.event.id}/resend`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(resend.status).toBe(409);
  });

  it('configures the endpoint through the admin API', async () => {
    emulator.setWebhook(undefined);
    const bad = await fetch(`${emulator.url}/_emulator/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: receiver.url, secret: 'nope' }) });
    expect(bad.status).toBe(400);
    const set = await fetch(`${emulator.url}/_emulator/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: receiver.url, secret: SECRET }) });
    expect(set.status).toBe(200);
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    const [delivery] = await receiver.waitFor(1);
    expect(stripe.webhooks.constructEvent(delivery!.body, delivery!.signature, SECRET).type).toBe('payment_intent.succeeded');
    await fetch(`${emulator.url}/_emulator/webhook`, { method: 'DELETE', headers: { 'content-type': 'application/json' } });
    expect(((await (await fetch(`${emulator.url}/_emulator/webhook`)).json()) as { webhook: unknown }).webhook).toBeNull();
  });

  it('serves the events through /v1/events as well', async () => {
    await stripe.paymentIntents.create(charge('pm_card_visa'));
    await stripe.paymentIntents.create(charge('pm_card_chargeDeclined')).catch(() => undefined);
    const listed = await stripe.events.list({ type: 'payment_intent.succeeded' });
    expect(listed.data).toHaveLength(1);
    expect(await stripe.events.retrieve(listed.data[0]!.id)).toMatchObject({ id: listed.data[0]!.id, type: 'payment_intent.succeeded' });
    expect((await stripe.events.list({ type: 'payment_intent.*' })).data.map((e) => e.type)).toEqual([
      'payment_intent.payment_failed',
      'payment_intent.succeeded',
    ]);
  });
});
