// Idempotency-Key as Stripe honours it, over real HTTP: replays with the
// same parameters, conflicts with other parameters, per-key scoping,
// unsaved validation failures, and concurrent use of one key.
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from './index.ts';

let emulator: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  emulator = await startEmulator();
  stripe = emulator.stripe(undefined, { maxNetworkRetries: 0 });
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
  metadata: { stripe402_client_id: 'client-1' },
};

async function post(path: string, body: string, idempotencyKey: string, key = emulator.secretKey) {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': idempotencyKey },
    body,
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Record<string, any> };
}

const chargeBody = 'amount=500&currency=usd&payment_method=pm_card_visa&confirm=true&automatic_payment_methods[enabled]=true&automatic_payment_methods[allow_redirects]=never';

describe('Idempotency-Key', () => {
  it('replays the first answer for the same key and parameters, charging once', async () => {
    const first = await stripe.paymentIntents.create(charge, { idempotencyKey: 'topup-key-0001' });
    const second = await stripe.paymentIntents.create(charge, { idempotencyKey: 'topup-key-0001' });
    expect(second.id).toBe(first.id);
    expect(second.latest_charge).toBe(first.latest_charge);
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(first.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(emulator.state.paymentIntents()).toHaveLength(1);
    expect(emulator.state.charges()).toHaveLength(1);
  });

  it('replays the saved body and status even after the object changed', async () => {
    const first = await post('/v1/payment_intents', chargeBody, 'replay-body-key');
    await stripe.paymentIntents.update(first.json.id, { metadata: { later: 'yes' } });
    const replay = await post('/v1/payment_intents', chargeBody, 'replay-body-key');
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual(first.json);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('original-request')).toBe(first.headers.get('request-id'));
  });

  it('treats parameters sent in another order as the same parameters', async () => {
    const reordered = 'automatic_payment_methods[allow_redirects]=never&confirm=true&currency=usd&automatic_payment_methods[enabled]=true&payment_method=pm_card_visa&amount=500';
    const first = await post('/v1/payment_intents', chargeBody, 'order-key-0001');
    const second = await post('/v1/payment_intents', reordered, 'order-key-0001');
    expect(second.json.id).toBe(first.json.id);
  });

  it('refuses the same key with different parameters as an idempotency error', async () => {
    await stripe.paymentIntents.create(charge, { idempotencyKey: 'conflict-key-01' });
    const error = await stripe.paymentIntents.create({ ...charge, amount: 600 }, { idempotencyKey: 'conflict-key-01' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error).toMatchObject({ statusCode: 400, rawType: 'idempotency_error' });
    const otherEndpoint = await stripe.customers.create({}, { idempotencyKey: 'conflict-key-01' }).catch((e: unknown) => e);
    expect(otherEndpoint).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(emulator.state.paymentIntents()).toHaveLength(1);
    expect(emulator.state.customers()).toHaveLength(0);
  });

  it('scopes keys to the API key that sent them', async () => {
    const mine = await stripe.paymentIntents.create(charge, { idempotencyKey: 'scoped-key-0001' });
    const theirs = await emulator.stripe('sk_test_another_account').paymentIntents.create(charge, { idempotencyKey: 'scoped-key-0001' });
    expect(theirs.id).not.toBe(mine.id);
    expect(emulator.state.paymentIntents()).toHaveLength(2);
  });

  it('replays a decline with the same failed PaymentIntent', async () => {
    const declining = { ...charge, payment_method: 'pm_card_chargeDeclined' };
    const first = await stripe.paymentIntents.create(declining, { idempotencyKey: 'decline-key-001' }).catch((e: unknown) => e);
    const second = await stripe.paymentIntents.create(declining, { idempotencyKey: 'decline-key-001' }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(second).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect((second as Stripe.errors.StripeCardError).payment_intent?.id).toBe((first as Stripe.errors.StripeCardError).payment_intent?.id);
    expect((second as Stripe.errors.StripeCardError).headers?.['idempotent-replayed']).toBe('true');
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('does not save an answer to a request that failed validation', async () => {
    const invalid = await post('/v1/payment_intents', 'amount=abc&currency=usd', 'validation-key-1');
    expect(invalid.status).toBe(400);
    const valid = await post('/v1/payment_intents', chargeBody, 'validation-key-1');
    expect(valid.status).toBe(200);
    expect(valid.json.status).toBe('succeeded');
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
  });

  it('answers 409 idempotency_key_in_use to a request racing one still executing, which charges once', async () => {
    // Whichever request arrives first takes the latency and holds the key; the other races it.
    emulator.faults.arm({ match: { method: 'POST', path: '/v1/payment_intents' }, kind: 'latency', ms: 1500 });
    const first = post('/v1/payment_intents', chargeBody, 'concurrent-key-01');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = post('/v1/payment_intents', chargeBody, 'concurrent-key-01');
    const answers = await Promise.all([first, second]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const racing = answers.find((a) => a.status === 409)!;
    expect(racing.json.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    expect(racing.headers.get('stripe-should-retry')).toBe('true');
    const after = await post('/v1/payment_intents', chargeBody, 'concurrent-key-01');
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    expect(after.json.id).toBe(answers.find((a) => a.status === 200)!.json.id);
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('lets the SDK\'s own retry of a 409 end with the same PaymentIntent', async () => {
    emulator.faults.arm({ match: { path: '/v1/payment_intents' }, kind: 'latency', ms: 300 });
    const retrying = emulator.stripe(undefined, { maxNetworkRetries: 2 });
    const [a, b] = await Promise.all([
      retrying.paymentIntents.create(charge, { idempotencyKey: 'sdk-retry-key-01' }),
      new Promise((resolve) => setTimeout(resolve, 50)).then(() => retrying.paymentIntents.create(charge, { idempotencyKey: 'sdk-retry-key-01' })),
    ]);
    expect(b.id).toBe(a.id);
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('ignores keys on GET and refuses keys longer than 255 characters', async () => {
    const pi = await stripe.paymentIntents.create(charge);
    await stripe.paymentIntents.update(pi.id, { metadata: { n: '1' } });
    const read = await fetch(`${emulator.url}/v1/payment_intents/${pi.id}`, {
      headers: { authorization: `Bearer ${emulator.secretKey}`, 'idempotency-key': 'get-key-0001' },
    });
    expect(((await read.json()) as Stripe.PaymentIntent).metadata).toEqual({ stripe402_client_id: 'client-1', n: '1' });
    const long = await post('/v1/customers', '', 'k'.repeat(256));
    expect(long.status).toBe(400);
    expect(emulator.state.customers()).toHaveLength(0);
  });

  it('creates a new object for a key once its idempotency keys are expired through the admin API, as Stripe does after 24 hours', async () => {
    const first = await post('/v1/payment_intents', chargeBody, 'expiring-key-01');
    expect(first.status).toBe(200);
    const replayed = await post('/v1/payment_intents', chargeBody, 'expiring-key-01');
    expect(replayed.json.id).toBe(first.json.id);
    const expired = await fetch(`${emulator.url}/_emulator/idempotency/expire`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(await expired.json()).toMatchObject({ ok: true });
    const after = await post('/v1/payment_intents', chargeBody, 'expiring-key-01');
    expect(after.status).toBe(200);
    expect(after.headers.get('idempotent-replayed')).toBeNull();
    expect(after.json.id).not.toBe(first.json.id);
    expect(emulator.state.paymentIntents().filter((pi) => pi.id === first.json.id || pi.id === after.json.id)).toHaveLength(2);
  });
});
