// Fault injection over real HTTP: rules armed through the admin API and the
// in-process controller make matching requests slow, fail with 5xx, drop the
// connection, hang, or lose the response after the charge happened, and the
// official SDK meets each as it would meet the real failure.
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type ArmedFault, type Emulator } from './index.ts';

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator();
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.reset();
});

const charge: Stripe.PaymentIntentCreateParams = {
  amount: 500,
  currency: 'usd',
  payment_method: 'pm_card_visa',
  confirm: true,
  automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
};

function postCharge(idempotencyKey?: string) {
  return fetch(`${emulator.url}/v1/payment_intents`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${emulator.secretKey}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    body: 'amount=500&currency=usd&payment_method=pm_card_visa&confirm=true&allowed_payment_method_types[]=card',
  });
}

async function admin(method: string, path: string, body?: unknown) {
  const response = await fetch(`${emulator.url}/_emulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, json: (await response.json()) as any };
}

describe('the faults admin API', () => {
  it('arms, lists and clears rules', async () => {
    const armed = await admin('POST', 'faults', { match: { method: 'post', path: '/v1/payment_intents' }, kind: 'status503', times: 2 });
    expect(armed.status).toBe(200);
    expect(armed.json).toMatchObject({ kind: 'status503', remaining: 2, hits: 0, match: { method: 'POST', path: '/v1/payment_intents' } });
    expect(armed.json.id).toMatch(/^fault_/);
    await admin('POST', 'faults', { kind: 'latency', ms: 5 });
    expect((await admin('GET', 'faults')).json.data).toHaveLength(2);
    expect((await admin('DELETE', `faults/${armed.json.id}`)).status).toBe(200);
    expect((await admin('GET', 'faults')).json.data.map((f: ArmedFault) => f.kind)).toEqual(['latency']);
    await admin('DELETE', 'faults');
    expect((await admin('GET', 'faults')).json.data).toEqual([]);
  });

  it('refuses malformed rules with 400', async () => {
    for (const rule of [{ kind: 'explode' }, { kind: 'latency', times: 0 }, { kind: 'latency', ms: -1 }, { kind: 'drop', match: { path: '^[' } }]) {
      const response = await admin('POST', 'faults', rule);
      expect(response.status).toBe(400);
      expect(response.json.error.message).toEqual(expect.any(String));
    }
    expect(emulator.faults.list()).toEqual([]);
  });

  it('answers unknown admin URLs with 404', async () => {
    expect((await admin('GET', 'nothing')).status).toBe(404);
    expect((await admin('GET', 'health')).json).toMatchObject({ ok: true, url: emulator.url });
  });
});

describe('injected faults', () => {
  it('fails the next matching request with 500 and does not execute it', async () => {
    await admin('POST', 'faults', { match: { path: '/v1/payment_intents' }, kind: 'status500' });
    const stripe = emulator.stripe(undefined, { maxNetworkRetries: 0 });
    const error = await stripe.paymentIntents.create(charge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(error).toMatchObject({ statusCode: 500 });
    expect(emulator.state.paymentIntents()).toHaveLength(0);
    expect((await stripe.paymentIntents.create(charge)).status).toBe('succeeded');
  });

  it('fails with 503 as often as armed, which the SDK\'s retries ride out', async () => {
    const armed = emulator.faults.arm({ match: { method: 'POST' }, kind: 'status503', times: 2 });
    const pi = await emulator.stripe(undefined, { maxNetworkRetries: 2 }).paymentIntents.create(charge);
    expect(pi.status).toBe('succeeded');
    expect(emulator.faults.list().find((f) => f.id === armed.id)).toBeUndefined();
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('drops the connection without executing the request', async () => {
    emulator.faults.arm({ match: { path: '/v1/payment_intents' }, kind: 'drop' });
    await expect(postCharge()).rejects.toThrow();
    expect(emulator.state.paymentIntents()).toHaveLength(0);
    expect((await postCharge()).status).toBe(200);
  });

  it('loses the response after the charge happened; a retry with the same key replays it', async () => {
    emulator.faults.arm({ match: { method: 'POST', path: '/v1/payment_intents' }, kind: 'lose_response' });
    await expect(postCharge('lost-response-key')).rejects.toThrow();
    const charged = emulator.state.paymentIntents();
    expect(charged).toHaveLength(1);
    expect(charged[0]!.status).toBe('succeeded');
    const retry = await postCharge('lost-response-key');
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(((await retry.json()) as Stripe.PaymentIntent).id).toBe(charged[0]!.id);
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('lets the SDK recover a lost response through its idempotent retry, charging once', async () => {
    emulator.faults.arm({ match: { path: '/v1/payment_intents' }, kind: 'lose_response' });
    const pi = await emulator.stripe(undefined, { maxNetworkRetries: 1 }).paymentIntents.create(charge, { idempotencyKey: 'sdk-lost-key-01' });
    expect(pi.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(emulator.state.paymentIntents().map((p) => p.id)).toEqual([pi.id]);
  });

  it('hangs then drops on timeout, which the SDK reports as a connection error', async () => {
    emulator.faults.arm({ match: { path: '/v1/payment_intents' }, kind: 'timeout', ms: 4000 });
    const stripe = emulator.stripe(undefined, { maxNetworkRetries: 0, timeout: 200 });
    const started = Date.now();
    const error = await stripe.paymentIntents.create(charge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(emulator.state.paymentIntents()).toHaveLength(0);
  });

  it('delays matching requests by the armed latency, and only those', async () => {
    emulator.faults.arm({ match: { method: 'GET', path: '^/v1/payment_methods/pm_card_[a-z]+$' }, kind: 'latency', ms: 300, times: 'unlimited' });
    const stripe = emulator.stripe();
    let started = Date.now();
    await stripe.paymentMethods.retrieve('pm_card_visa');
    await stripe.paymentMethods.retrieve('pm_card_amex');
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    await stripe.paymentIntents.create(charge);
    await stripe.paymentMethods.retrieve('pm_card_chargeDeclined');
    expect(emulator.faults.list()[0]).toMatchObject({ remaining: 'unlimited', hits: 2 });
    emulator.faults.clear();
  });

  it('applies a global latency given at start to every API request', async () => {
    const slow = await startEmulator({ latencyMs: 150 });
    try {
      const started = Date.now();
      await slow.stripe().paymentMethods.retrieve('pm_card_visa');
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      await slow.close();
    }
  });

  it('never applies faults to the admin API', async () => {
    emulator.faults.arm({ kind: 'drop', times: 'unlimited' });
    expect((await admin('GET', 'faults')).status).toBe(200);
    expect((await admin('DELETE', 'faults')).status).toBe(200);
    expect((await postCharge()).status).toBe(200);
  });
});
