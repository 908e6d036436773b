/**
 * The reference client against a stripe402 v1 server with no extensions
 * (test/v1-server.ts): it must pay, spend, top up again after
 * insufficient_credits, re-send bodies, and read v1's error 402s (a
 * PaymentResponse body, `clientId: ""`, no payment headers) as typed
 * errors. The v1 server charges the project's emulator through the stripe SDK.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { PaymentRefusedError } from '../errors.ts';
import { Stripe402Client, type PaymentEvent } from '../fetch.ts';
import { startV1Server, V1_ROUTES, type RunningV1Server, type V1ServerOptions } from './v1-server.ts';
import { paymentOf, succeededCharges } from './harness.ts';
import type { ProxiedRequest } from './proxy.ts';

let emulator: Emulator;
let v1: RunningV1Server;
let secretCounter = 0;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});
afterAll(async () => {
  await emulator?.close();
});
/** A v1 server on the emulator with a new secret: the same test card then has a new client id and no balance. */
function startV1(options: Pick<V1ServerOptions, 'routes' | 'minorUnits'>): Promise<RunningV1Server> {
  return startV1Server({
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    publishableKey: emulator.publishableKey,
    serverSecret: `v1-client-tests-secret-${++secretCounter}-0123456789abcdef`,
    ...options,
  });
}

/** A v1 server whose yen route is charged as if yen had two decimals (100 times over). */
async function restartWithTwoDecimalYen(): Promise<void> {
  await v1.close();
  v1 = await startV1({ routes: { 'GET /api/fortune': { amount: 10_000, currency: 'jpy', minTopUp: 1_000_000 } }, minorUnits: 'two-decimals' });
}

beforeEach(async () => {
  v1 = await startV1({ routes: { ...V1_ROUTES, 'GET /api/all-in': { amount: 5_000, currency: 'usd', minTopUp: 5_000 } } });
});
afterEach(async () => {
  await v1.close();
});

/** The v1 server's records in the shape the proxy helpers read. */
const payments = () => v1.requests.map((r) => paymentOf({ ...r, body: Buffer.from(r.body), status: r.status, dropped: false } as ProxiedRequest));
const charges = () => succeededCharges(emulator).length;

describe('against a stripe402 v1 server', () => {
  it('pays once, then spends the client id in one round trip', async () => {
    const events: PaymentEvent[] = [];
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', onPayment: (e) => events.push(e) });
    const before = charges();
    const first = await client.fetch(`${v1.url}/api/joke`);
    expect(first.status).toBe(200);
    await first.text();
    const second = await client.fetch(`${v1.url}/api/joke`);
    expect(second.status).toBe(200);
    await second.text();
    expect(charges()).toBe(before + 1);
    const sent = payments();
    expect(sent).toHaveLength(3);
    expect(sent[0]).toBeUndefined();
    // The extension field rides along; v1 ignores it.
    expect(sent[1]).toMatchObject({ paymentMethodId: 'pm_card_visa', topUpAmount: 50_000, idempotencyKey: expect.any(String) });
    expect(sent[2]).toEqual({ stripe402Version: 1, clientId: events[0]!.clientId });
    expect([...v1.balances.values()]).toEqual([49_800]);
    expect(events.map((e) => e.chargedMinor)).toEqual([500, undefined]);
  });

  it('re-sends a POST body on the paid retry', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const body = JSON.stringify({ hello: 'v1' });
    const response = await client.fetch(`${v1.url}/api/echo`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-keep': 'me' } });
    expect(await response.text()).toBe(body);
    expect(v1.requests.map((r) => [r.method, r.body, r.headers['x-keep']])).toEqual([
      ['POST', body, 'me'],
      ['POST', body, 'me'],
    ]);
  });

  it('tops up again after v1 answers insufficient_credits to a spent client id', async () => {
    const first = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await first.fetch(`${v1.url}/api/all-in`)).text();
    const before = charges();
    // Same store, no balance history: challenge, spend (insufficient_credits), top-up.
    const second = new Stripe402Client({ paymentMethodId: 'pm_card_visa', store: first.store });
    const response = await second.fetch(`${v1.url}/api/all-in`);
    expect(response.status).toBe(200);
    expect(charges()).toBe(before + 1);
    expect(v1.requests.slice(2).map((r) => r.status)).toEqual([402, 402, 200]);
    expect(payments().slice(2)).toEqual([
      undefined,
      { stripe402Version: 1, clientId: expect.stringMatching(/^[0-9a-f]{64}$/) },
      expect.objectContaining({ paymentMethodId: 'pm_card_visa', topUpAmount: 5_000 }),
    ]);
  });

  it('reads a v1 error 402 (a PaymentResponse body, clientId "") as a typed error with the wire code', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_chargeDeclined' });
    let error: unknown;
    try {
      await client.fetch(`${v1.url}/api/joke`);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PaymentRefusedError);
    expect((error as PaymentRefusedError).code).toBe('card_declined');
    expect((error as PaymentRefusedError).paymentResponse).toMatchObject({ success: false, clientId: '', errorCode: 'card_declined' });
    expect((error as PaymentRefusedError).paymentRequired).toBeUndefined();
    expect(await client.store.get(v1.url, 'usd')).toBeUndefined();
    expect(v1.requests).toHaveLength(2);
  });

  it('a v1 top_up_below_minimum after the minimum grew is a typed error, and the next call learns the new price', async () => {
    const allIn = { amount: 5_000, currency: 'usd', minTopUp: 5_000 };
    await v1.close();
    v1 = await startV1Server({
      stripeUrl: emulator.url,
      stripeSecretKey: emulator.secretKey,
      publishableKey: emulator.publishableKey,
      serverSecret: `v1-client-tests-secret-${++secretCounter}-0123456789abcdef`,
      routes: { 'GET /api/all-in': allIn },
    });
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await client.fetch(`${v1.url}/api/all-in`)).text();
    allIn.minTopUp = 10_000;
    // The client knows the route and that its balance is spent: it tops up at once, with the old minimum.
    let error: unknown;
    try {
      await client.fetch(`${v1.url}/api/all-in`);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PaymentRefusedError);
    expect((error as PaymentRefusedError).code).toBe('top_up_below_minimum');
    expect(v1.requests).toHaveLength(3);
    const before = charges();
    const response = await client.fetch(`${v1.url}/api/all-in`);
    expect(response.status).toBe(200);
    expect(payments().slice(3)).toEqual([undefined, expect.objectContaining({ paymentMethodId: 'pm_card_visa', topUpAmount: 10_000 })]);
    expect(charges()).toBe(before + 1);
  });

  it('counts a yen top-up by its worst case, as unconfirmed, when a v1 server charges yen 100 times over', async () => {
    await restartWithTwoDecimalYen();
    const events: PaymentEvent[] = [];
    // 100,000,000 units = 10,000 yen a day: room for the worst case of one 100-yen top-up (10,000 yen).
    const budget = { maxTopUp: { jpy: 1_000_000 }, perOrigin: { perDay: { jpy: 100_000_000 } }, total: { perDay: { jpy: 100_000_000 } } };
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget, onPayment: (e) => events.push(e) });
    const response = await client.fetch(`${v1.url}/api/fortune`);
    expect(response.status).toBe(200);
    await response.text();
    const charged = succeededCharges(emulator).find((pi) => pi.id === events[0]!.chargeId);
    // What the v1 server really took: 10,000 yen for 100 yen of credit.
    expect(charged).toMatchObject({ amount: 10_000, currency: 'jpy' });
    expect(events[0]).toMatchObject({ currency: 'jpy', chargedMinor: 10_000, chargeAmountConfirmed: false });
  });

  it('refuses a yen top-up whose worst case is above the cap, and charges nothing', async () => {
    await restartWithTwoDecimalYen();
    const before = emulator.state.paymentIntents().length;
    // A cap of 1,000 yen a day covers the 100 yen the spec prescribes, not the 10,000 a v1 server may take.
    const budget = { maxTopUp: { jpy: 1_000_000 }, perOrigin: { perDay: { jpy: 10_000_000 } }, total: { perDay: { jpy: 10_000_000 } } };
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget });
    await expect(client.fetch(`${v1.url}/api/fortune`)).rejects.toMatchObject({ refusal: { rule: 'origin_daily_cap' } });
    expect(emulator.state.paymentIntents().length).toBe(before);
  });
});
