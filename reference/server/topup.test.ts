/**
 * How many Stripe calls a top-up makes, and that making fewer keeps every
 * idempotency guarantee (PROC-6, PROC-7, PROC-11, PROC-12): the server over
 * real HTTP, the Stripe emulator through the official SDK, each real ledger.
 * The ledger records a keyed top-up before its Stripe call and its
 * PaymentIntent after, and the Customer of each client id, so a top-up needs
 * no Stripe search; calls are counted on the emulator, per endpoint.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Stripe from 'stripe';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import type { PaidRouteConfig } from './routes.ts';
import type { RunningServer } from 'stripe402';
import { LEDGER_KINDS, openTestLedger, paymentIntentsOf, request, startTestServer, type TestLedger } from './test-helpers.ts';

const V = { stripe402Version: 1 } as const;

/** A payload idempotencyKey (16 to 128 characters) named for what it tests. */
const key = (name: string) => `${name}-topup-test`;

/** Costs exactly its top-up, so every top-up is spent by its own request and the next one charges again. */
const ROUTES: PaidRouteConfig[] = [{ method: 'GET', path: '/api/joke', amount: 50_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 50_000 }];

/** The Stripe endpoints a top-up may call, each counted by a zero-delay rule; the last counts anything else. */
const ENDPOINTS = [
  ['retrieve PaymentMethod', 'GET', '^/v1/payment_methods/[^/]+$'],
  ['search PaymentIntents', 'GET', '/v1/payment_intents/search'],
  ['retrieve PaymentIntent', 'GET', '^/v1/payment_intents/pi_[^/]+$'],
  ['create PaymentIntent', 'POST', '^/v1/payment_intents$'],
  ['search Customers', 'GET', '/v1/customers/search'],
  ['create Customer', 'POST', '^/v1/customers$'],
  ['other', undefined, '^/v1/'],
] as const;

type Calls = Partial<Record<(typeof ENDPOINTS)[number][0], number>>;

/** Counts the Stripe calls made from now on, per endpoint; call the result to read (only endpoints called appear). */
function countCalls(emulator: Emulator): () => Calls {
  const rules = ENDPOINTS.map(([name, method, path]) => ({
    name,
    id: emulator.faults.arm({ match: method === undefined ? { path } : { method, path }, kind: 'latency', ms: 0, times: 'unlimited' }).id,
  }));
  return () => {
    const hits = new Map(emulator.faults.list().map((rule) => [rule.id, rule.hits]));
    const calls: Calls = {};
    for (const { name, id } of rules) if ((hits.get(id) ?? 0) > 0) calls[name] = hits.get(id)!;
    return calls;
  };
}

describe.each(LEDGER_KINDS)('a top-up on the %s ledger', (kind) => {
  let emulator: Emulator;
  let store: TestLedger;
  let server: RunningServer;
  let stripe: Stripe;

  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    stripe = emulator.stripe();
    store = await openTestLedger(kind);
  });
  afterAll(async () => {
    await store?.dispose();
    await emulator?.close();
  });
  afterEach(async () => {
    emulator.faults.clear();
    await server?.close();
  });

  async function start(options: Parameters<typeof startTestServer>[2] = {}) {
    server = await startTestServer(store.ledger, emulator, { routes: ROUTES, ...options });
    return server;
  }

  /** A new PaymentMethod of a test card number: a card this server may or may not have seen, never attached to a Customer. */
  async function newPaymentMethod(number: string): Promise<string> {
    const pm = await stripe.paymentMethods.create({ type: 'card', card: { number, exp_month: 12, exp_year: new Date().getUTCFullYear() + 2, cvc: '123' } });
    return pm.id;
  }

  function topUp(paymentMethodId: string, name: string) {
    return request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId, topUpAmount: 50_000, idempotencyKey: key(name) } });
  }

  it('makes two sequential Stripe calls for a card seen before, and three for the first top-up of a card never seen', async () => {
    await start();
    const first = await newPaymentMethod('4242424242424242');
    let calls = countCalls(emulator);
    const charged = await topUp(first, 'calls-1');
    expect(charged.status).toBe(200);
    expect(charged.payment!.chargeId).toMatch(/^pi_/);
    // A card never seen: its Customer is created (idempotently) and recorded; nothing is searched.
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'create Customer': 1, 'create PaymentIntent': 1 });
    emulator.faults.clear();

    // The same PaymentMethod again (now attached to its Customer), under a new key: the common case.
    calls = countCalls(emulator);
    const again = await topUp(first, 'calls-2');
    expect(again.status).toBe(200);
    expect(again.payment!.chargeId).not.toBe(charged.payment!.chargeId);
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'create PaymentIntent': 1 });
    emulator.faults.clear();

    // A new PaymentMethod of the same card: the Customer comes from the ledger, not from a search.
    const second = await newPaymentMethod('4242424242424242');
    calls = countCalls(emulator);
    const sameCard = await topUp(second, 'calls-3');
    expect(sameCard.status).toBe(200);
    expect(sameCard.payment!.clientId).toBe(charged.payment!.clientId);
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'create PaymentIntent': 1 });
    const clientId = charged.payment!.clientId;
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(3);
    expect(emulator.state.customers().filter((c) => c.metadata?.stripe402_client_id === clientId)).toHaveLength(1);
    expect(await store.ledger.balance({ clientId, currency: 'usd' })).toBe(0);
  });

  it('charges once for a top-up retried with the same idempotency key, also after Stripe forgot the key', async () => {
    await start();
    const pm = await newPaymentMethod('4000056655665556');
    const charged = await topUp(pm, 'retried-key');
    expect(charged.status).toBe(200);
    const clientId = charged.payment!.clientId;
    const chargeId = charged.payment!.chargeId;

    // The balance is spent: the retry finds the recorded PaymentIntent (retrieved by id, not searched) and charges nothing.
    let calls = countCalls(emulator);
    const retried = await topUp(pm, 'retried-key');
    expect(retried.status).toBe(402);
    expect(retried.payment).toMatchObject({ success: false, errorCode: 'insufficient_credits', clientId, creditsRemaining: 0 });
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'retrieve PaymentIntent': 1 });
    emulator.faults.clear();

    // Stripe's 24-hours window passes: the same key sent to Stripe now would charge again; the ledger still knows it.
    expect(emulator.expireIdempotencyKeys()).toBeGreaterThan(0);
    calls = countCalls(emulator);
    const late = await topUp(pm, 'retried-key');
    expect(late.status).toBe(402);
    expect(late.payment).toMatchObject({ errorCode: 'insufficient_credits', creditsRemaining: 0 });
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'retrieve PaymentIntent': 1 });
    expect(paymentIntentsOf(emulator, clientId).map((pi) => pi.id)).toEqual([chargeId]);

    // The same key for another amount names another top-up: refused, nothing charged.
    const reused = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: pm, topUpAmount: 49_000, idempotencyKey: key('retried-key') } });
    expect(reused.status).toBe(402);
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
    // A new key charges: the refusals above were not a server that never charges.
    expect((await topUp(pm, 'next-key')).payment!.chargeId).not.toBe(chargeId);
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(2);
  });

  it('charges once when the answer to the charge was lost, replaying its Stripe key on the retry', async () => {
    await start();
    const pm = await newPaymentMethod('5555555555554444');
    // The charge happens, and every answer to it (the SDK's own retries too) is lost: the client gets 503.
    emulator.faults.arm({ match: { method: 'POST', path: '^/v1/payment_intents$' }, kind: 'lose_response', times: 3 });
    const lost = await topUp(pm, 'lost-answer');
    expect(lost.status).toBe(503);
    emulator.faults.clear();
    const charges = emulator.state.paymentIntents().filter((pi) => pi.metadata?.stripe402_idempotency_key === key('lost-answer'));
    expect(charges).toHaveLength(1);

    const calls = countCalls(emulator);
    const retried = await topUp(pm, 'lost-answer');
    expect(retried.status).toBe(200);
    expect(retried.payment!.chargeId).toBe(charges[0]!.id);
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'create PaymentIntent': 1 });
    expect(paymentIntentsOf(emulator, retried.payment!.clientId)).toHaveLength(1);
  });

  it('searches Stripe for a top-up whose answer was lost once its key is older than the idempotency window, and charges once', async () => {
    // A window of zero: every recorded top-up without its PaymentIntent counts as older than Stripe's 24 hours.
    await start({ stripeIdempotencyWindowMs: 0 });
    const pm = await newPaymentMethod('2223003122003222');
    emulator.faults.arm({ match: { method: 'POST', path: '^/v1/payment_intents$' }, kind: 'lose_response', times: 3 });
    expect((await topUp(pm, 'lost-long-ago')).status).toBe(503);
    emulator.faults.clear();
    // Stripe forgot the key: replaying it would charge again; only the search can tell.
    emulator.expireIdempotencyKeys();
    const calls = countCalls(emulator);
    const retried = await topUp(pm, 'lost-long-ago');
    expect(retried.status).toBe(200);
    expect(calls()).toEqual({ 'retrieve PaymentMethod': 1, 'search PaymentIntents': 1 });
    const clientId = retried.payment!.clientId;
    expect(paymentIntentsOf(emulator, clientId).map((pi) => pi.id)).toEqual([retried.payment!.chargeId]);
    // Found once, recorded: the next retry retrieves it by id.
    emulator.faults.clear();
    const next = countCalls(emulator);
    expect((await topUp(pm, 'lost-long-ago')).payment).toMatchObject({ errorCode: 'insufficient_credits' });
    expect(next()).toEqual({ 'retrieve PaymentMethod': 1, 'retrieve PaymentIntent': 1 });
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
  });

  it('charges once for concurrent top-ups with the same idempotency key', async () => {
    await start();
    const pm = await newPaymentMethod('5200828282828210');
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => topUp(pm, 'concurrent-key')));
    const served = outcomes.filter((o) => o.status === 200);
    expect(served).toHaveLength(1);
    const clientId = served[0]!.payment!.clientId;
    for (const other of outcomes.filter((o) => o.status !== 200)) expect(other.payment).toMatchObject({ errorCode: 'insufficient_credits', clientId });
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
    expect(await store.ledger.balance({ clientId, currency: 'usd' })).toBe(0);
  });
});
