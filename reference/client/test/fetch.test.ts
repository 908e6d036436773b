/**
 * The paying fetch against the real stack: the reference server (PGlite
 * ledger) charging through the project's Stripe emulator, over real
 * sockets. A recording proxy in front of the server counts round trips,
 * shows what each request carried, and drops or redirects responses on
 * purpose. Charges are counted in the emulator, where the money is.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BudgetPolicy } from '../budget.ts';
import {
  AuthenticationRequiredError,
  BudgetExceededError,
  PaymentMethodRequiredError,
  PaymentRefusedError,
  Stripe402ClientError,
} from '../errors.ts';
import { Stripe402Client, withStripe402, type PaymentEvent } from '../fetch.ts';
import { JsonFileClientIdStore } from '../file-store.ts';
import type { PaidRouteConfig } from '@stripe402/server';
import type { RunningServer } from 'stripe402';
import { paymentOf, startStack, succeededCharges, type Stack } from './harness.ts';
import { startRecordingProxy, type RecordingProxy } from './proxy.ts';

let stack: Stack;
let server: RunningServer;
let proxy: RecordingProxy;

beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  // A fresh server has fresh client ids, and a fresh proxy is a fresh origin: every test starts from nothing.
  await proxy?.close();
  server = await stack.freshServer();
  proxy = await startRecordingProxy(server.url);
});
afterAll(async () => {
  await proxy?.close();
});

const chargesNow = () => succeededCharges(stack.emulator).length;
const allIntentsNow = () => stack.emulator.state.paymentIntents().length;

async function rejection(promise: Promise<unknown>): Promise<Stripe402ClientError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Stripe402ClientError) return error;
    throw error;
  }
  throw new Error('expected the call to fail with a Stripe402ClientError');
}

describe('paying and spending', () => {
  it('the first request pays once; later requests spend the client id in one round trip each', async () => {
    const events: PaymentEvent[] = [];
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', onPayment: (e) => events.push(e) });
    const before = chargesNow();

    const first = await client.fetch(`${proxy.url}/api/joke`);
    expect(first.status).toBe(200);
    expect(await first.json()).toHaveProperty('joke');
    expect(chargesNow()).toBe(before + 1);
    expect(proxy.requests).toHaveLength(2);
    expect(paymentOf(proxy.requests[0]!)).toBeUndefined();
    expect(paymentOf(proxy.requests[1]!)).toMatchObject({ stripe402Version: 1, paymentMethodId: 'pm_card_visa', topUpAmount: 50_000 });
    expect(events[0]).toMatchObject({ price: 100, topUpAmount: 50_000, chargedMinor: 500, creditsRemaining: 49_900, requests: 2 });
    const clientId = events[0]!.clientId!;
    expect(clientId).toMatch(/^[0-9a-f]{64}$/);

    for (let i = 0; i < 3; i++) {
      const again = await client.fetch(`${proxy.url}/api/joke`);
      expect(again.status).toBe(200);
      await again.text();
    }
    expect(proxy.requests).toHaveLength(5);
    for (const request of proxy.requests.slice(2)) expect(paymentOf(request)).toEqual({ stripe402Version: 1, clientId });
    expect(chargesNow()).toBe(before + 1);
    expect(events.at(-1)).toMatchObject({ creditsRemaining: 49_600, chargeId: undefined, requests: 1 });
  });

  it('a new route on a known origin costs one challenge and then spends the client id, without a charge', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await client.fetch(`${proxy.url}/api/joke`)).text();
    const before = chargesNow();
    const weather = await client.fetch(`${proxy.url}/api/weather?city=Oslo`);
    expect(weather.status).toBe(200);
    expect(await weather.json()).toMatchObject({ city: 'Oslo' });
    const [challenge, paid] = proxy.requests.slice(2);
    expect(paymentOf(challenge!)).toBeUndefined();
    expect(paymentOf(paid!)).toEqual({ stripe402Version: 1, clientId: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(chargesNow()).toBe(before);
  });

  it('free routes pass through untouched, with no payment header', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await client.fetch(`${proxy.url}/api/joke`)).text();
    const health = await client.fetch(`${proxy.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(paymentOf(proxy.requests.at(-1)!)).toBeUndefined();
  });

  it('withStripe402 wraps a given fetch, which sees every request', async () => {
    const seen: string[] = [];
    const paying = withStripe402(
      async (input, init) => {
        seen.push(`${init?.method ?? 'GET'} ${new Headers(init?.headers).has('payment') ? 'paid' : 'unpaid'}`);
        return fetch(input, init);
      },
      { paymentMethodId: 'pm_card_visa' },
    );
    const response = await paying(`${proxy.url}/api/joke`);
    expect(response.status).toBe(200);
    expect(seen).toEqual(['GET unpaid', 'GET paid']);
  });
});

describe('a route whose price is its whole top-up', () => {
  // Every request spends the whole top-up, so every request needs a new one: the insufficient_credits path, every time.
  const PRICEY: PaidRouteConfig[] = [{ method: 'GET', path: '/api/joke', amount: 5_000, currency: 'usd', minTopUp: 5_000, maxTopUp: 5_000 }];
  let route: RecordingProxy;
  beforeEach(async () => {
    route = await startRecordingProxy((await stack.freshServer(PRICEY)).url);
  });
  afterEach(async () => {
    await route.close();
  });

  it('a client that saw its balance run out tops up on the first request, in one round trip', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const before = chargesNow();
    await (await client.fetch(`${route.url}/api/joke`)).text();
    expect(client.lastKnownCredits(route.url, 'usd')).toBe(0);
    const second = await client.fetch(`${route.url}/api/joke`);
    expect(second.status).toBe(200);
    await second.text();
    expect(route.requests).toHaveLength(3);
    expect(paymentOf(route.requests[2]!)).toMatchObject({ paymentMethodId: 'pm_card_visa', topUpAmount: 5_000 });
    expect(chargesNow()).toBe(before + 2);
  });

  it('a client id that meets insufficient_credits is followed by one top-up, then the request is served', async () => {
    const first = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await first.fetch(`${route.url}/api/joke`)).text();
    // A second client holding the id but not the balance history: challenge, spend, insufficient, top-up.
    const second = new Stripe402Client({ paymentMethodId: 'pm_card_visa', store: first.store });
    const before = chargesNow();
    const response = await second.fetch(`${route.url}/api/joke`);
    expect(response.status).toBe(200);
    const payments = route.requests.slice(2).map(paymentOf);
    expect(payments).toEqual([
      undefined,
      { stripe402Version: 1, clientId: expect.stringMatching(/^[0-9a-f]{64}$/) },
      expect.objectContaining({ paymentMethodId: 'pm_card_visa', topUpAmount: 5_000, idempotencyKey: expect.any(String) }),
    ]);
    expect(chargesNow()).toBe(before + 1);
  });
});

describe('the budget', () => {
  it('a top-up above maxTopUp is refused with a typed error, before any payment header is sent', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget: { maxTopUp: 40_000 } });
    const intents = allIntentsNow();
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.code).toBe('budget_exceeded');
    expect((error as BudgetExceededError).rule).toBe('max_top_up');
    expect(allIntentsNow()).toBe(intents);
    expect(proxy.requests).toHaveLength(1);
    expect(paymentOf(proxy.requests[0]!)).toBeUndefined();
  });

  it('a price above maxPricePerRequest is refused and nothing is charged', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget: { maxPricePerRequest: 99 } });
    const intents = allIntentsNow();
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect((error as BudgetExceededError).rule).toBe('max_price_per_request');
    expect((error as BudgetExceededError).refusal).toMatchObject({ requested: 100, limit: 99 });
    expect(allIntentsNow()).toBe(intents);
  });

  it('a total cap shared by two origins refuses the second top-up and charges nothing more', async () => {
    const budget = new BudgetPolicy({ total: { perDay: 60_000 } });
    const other = await startRecordingProxy(server.url);
    try {
      const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget });
      await (await client.fetch(`${proxy.url}/api/joke`)).text();
      const intents = allIntentsNow();
      const error = await rejection(client.fetch(`${other.url}/api/joke`));
      expect((error as BudgetExceededError).rule).toBe('total_daily_cap');
      expect((error as BudgetExceededError).refusal).toMatchObject({ currency: 'usd', requested: 1000, limit: 600, measure: 'minor' });
      expect(allIntentsNow()).toBe(intents);
      expect(budget.chargedMinor({ currency: 'usd' })).toBe(500);
      expect(other.requests.filter((r) => paymentOf(r)?.paymentMethodId)).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('approveTopUp sees the top-up and its refusal charges nothing', async () => {
    const asked: unknown[] = [];
    const client = new Stripe402Client({
      paymentMethodId: 'pm_card_visa',
      budget: { approveTopUp: (details) => (asked.push(details), false) },
    });
    const intents = allIntentsNow();
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect((error as BudgetExceededError).rule).toBe('approval_denied');
    expect(asked).toEqual([expect.objectContaining({ origin: proxy.url, currency: 'usd', price: 100, topUpAmount: 50_000, chargeMinor: 500, minTopUp: 50_000 })]);
    expect(allIntentsNow()).toBe(intents);
  });

  it('an origin outside allowedOrigins is never paid', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget: { allowedOrigins: ['https://*.example.com'] } });
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect((error as BudgetExceededError).rule).toBe('origin_not_allowed');
    expect(proxy.requests.every((r) => paymentOf(r) === undefined)).toBe(true);
  });

  it('without a payment method a top-up is refused with a typed error', async () => {
    const client = new Stripe402Client({});
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error).toBeInstanceOf(PaymentMethodRequiredError);
    expect((error as PaymentMethodRequiredError).requirements).toMatchObject({ currency: 'usd', amount: 100 });
  });
});

describe('retry safety', () => {
  it('a paid request whose response is lost is retried with the same idempotency key and charges once', async () => {
    const events: PaymentEvent[] = [];
    const budget = new BudgetPolicy();
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget, retryDelayMs: 10, onPayment: (e) => events.push(e) });
    proxy.dropResponses((r) => paymentOf(r)?.paymentMethodId !== undefined);
    const before = chargesNow();

    const response = await client.fetch(`${proxy.url}/api/joke`);
    expect(response.status).toBe(200);
    expect(chargesNow()).toBe(before + 1);
    const topUps = proxy.requests.filter((r) => paymentOf(r)?.paymentMethodId !== undefined);
    expect(topUps).toHaveLength(2);
    expect(topUps[0]!.dropped).toBe(true);
    const key = paymentOf(topUps[0]!)!.idempotencyKey;
    expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(paymentOf(topUps[1]!)!.idempotencyKey).toBe(key);
    // The lost answer had charged: the budget keeps counting it although the retry's answer names no charge.
    expect(budget.chargedMinor({ currency: 'usd' })).toBe(500);
    expect(events.at(-1)).toMatchObject({ chargeUnconfirmed: true, status: 200 });
  });

  it('a Stripe response lost behind the server still charges once', async () => {
    stack.emulator.faults.arm({ match: { method: 'POST', path: '/v1/payment_intents' }, kind: 'lose_response' });
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', retryDelayMs: 10 });
    const before = chargesNow();
    const response = await client.fetch(`${proxy.url}/api/joke`);
    // The fault fired (an exhausted rule is removed): the PaymentIntent was created and its answer lost.
    expect(stack.emulator.faults.list()).toEqual([]);
    expect([200, 503]).toContain(response.status);
    if (response.status === 503) {
      // The server asks for a retry with the same key; the client keeps it, so a second call credits the charge once.
      await response.text();
      expect((await client.fetch(`${proxy.url}/api/joke`)).status).toBe(200);
    }
    expect(chargesNow()).toBe(before + 1);
    stack.emulator.faults.clear();
  });

  it('a POST body and every header survive the paid retry', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const body = JSON.stringify({ message: 'héllo', n: [1, 2, 3] });
    const response = await client.fetch(`${proxy.url}/api/echo?x=1`, {
      method: 'POST',
      body,
      headers: [
        ['content-type', 'application/json'],
        ['x-trace-id', 'trace-123'],
        ['authorization', 'Bearer app-token'],
      ],
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(body);
    const [unpaid, paid] = proxy.requests;
    expect(paid!.method).toBe('POST');
    expect(paid!.path).toBe('/api/echo?x=1');
    expect(paid!.body.toString()).toBe(body);
    for (const name of ['content-type', 'x-trace-id', 'authorization']) expect(paid!.headers[name]).toBe(unpaid!.headers[name]);
  });

  it('a Request object with a stream body is buffered once and re-sent whole', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const chunks = ['part one|', 'part two|', 'part three'];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
        controller.close();
      },
    });
    const request = new Request(`${proxy.url}/api/echo`, {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'text/plain', 'x-custom': 'kept' },
      duplex: 'half',
    } as RequestInit);
    const response = await client.fetch(request);
    expect(await response.text()).toBe(chunks.join(''));
    expect(proxy.requests.map((r) => r.body.toString())).toEqual([chunks.join(''), chunks.join('')]);
    expect(proxy.requests[1]!.headers['x-custom']).toBe('kept');
  });

  it('concurrent first requests from one client charge once', async () => {
    const budget = new BudgetPolicy();
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget });
    const before = chargesNow();
    const responses = await Promise.all(Array.from({ length: 4 }, () => client.fetch(`${proxy.url}/api/joke`)));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    await Promise.all(responses.map((r) => r.text()));
    expect(chargesNow()).toBe(before + 1);
    expect(budget.chargedMinor({ currency: 'usd' })).toBe(500);
  });
});

describe('error codes', () => {
  it('a declined card is a PaymentRefusedError carrying card_declined, and no client id is kept', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_chargeDeclined' });
    const before = chargesNow();
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error).toBeInstanceOf(PaymentRefusedError);
    expect(error.code).toBe('card_declined');
    expect((error as PaymentRefusedError).status).toBe(402);
    expect(chargesNow()).toBe(before);
    expect(await client.store.get(proxy.url, 'usd')).toBeUndefined();
    // Bounded: one challenge and one top-up, nothing more.
    expect(proxy.requests).toHaveLength(2);
  });

  it('authentication_required surfaces the next action, and resume() completes the payment after authentication', async () => {
    const budget = new BudgetPolicy();
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_authenticationRequired', budget });
    const before = chargesNow();
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error).toBeInstanceOf(AuthenticationRequiredError);
    const auth = error as AuthenticationRequiredError;
    expect(auth.code).toBe('authentication_required');
    expect(auth.paymentIntentId).toMatch(/^pi_/);
    expect(auth.nextActionUrl).toMatch(/^http/);
    expect(chargesNow()).toBe(before);
    // The card holder authenticates out of band.
    const done = await fetch(`${auth.nextActionUrl}${auth.nextActionUrl!.includes('?') ? '&' : '?'}action=complete`);
    await done.text();
    const response = await auth.resume();
    expect(response.status).toBe(200);
    expect(chargesNow()).toBe(before + 1);
    expect(paymentOf(proxy.requests.at(-1)!)).toMatchObject({ paymentIntentId: auth.paymentIntentId });
    expect(budget.charges()).toEqual([expect.objectContaining({ state: 'charged', chargeId: auth.paymentIntentId })]);
    // From now on the client id spends.
    await (await client.fetch(`${proxy.url}/api/joke`)).text();
    expect(paymentOf(proxy.requests.at(-1)!)).toEqual({ stripe402Version: 1, clientId: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('onAuthenticationRequired completes authentication and the same call then succeeds', async () => {
    const client = new Stripe402Client({
      paymentMethodId: 'pm_card_authenticationRequired',
      onAuthenticationRequired: async (details) => {
        await (await fetch(`${details.nextActionUrl}${details.nextActionUrl!.includes('?') ? '&' : '?'}action=complete`)).text();
        return 'completed';
      },
    });
    const response = await client.fetch(`${proxy.url}/api/joke`);
    expect(response.status).toBe(200);
  });

  it('onAuthenticationRequired answering abort ends the call with the typed error', async () => {
    let asked = 0;
    const client = new Stripe402Client({
      paymentMethodId: 'pm_card_authenticationRequired',
      onAuthenticationRequired: async () => (asked++, 'abort'),
    });
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error).toBeInstanceOf(AuthenticationRequiredError);
    expect(asked).toBe(1);
  });

  it('a hook that claims completion without authenticating does not loop forever', async () => {
    let asked = 0;
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_authenticationRequired', onAuthenticationRequired: async () => (asked++, 'completed') });
    const error = await rejection(client.fetch(`${proxy.url}/api/joke`));
    expect(error.code).toBe('authentication_required');
    expect(asked).toBe(3);
    expect(proxy.requests.length).toBeLessThanOrEqual(6);
  });

  it('a 5xx of the resource is handed back, and the credits it took come back', async () => {
    const events: PaymentEvent[] = [];
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', onPayment: (e) => events.push(e) });
    const response = await client.fetch(`${proxy.url}/api/fail`);
    expect(response.status).toBe(500);
    expect(events.at(-1)).toMatchObject({ status: 500, creditsRemaining: 50_000, chargedMinor: 500 });
  });

  it('a server that keeps asking for payment ends the call with a typed error and nothing counted as charged', async () => {
    const challenge = {
      stripe402Version: 1,
      resource: { url: '/x' },
      accepts: [{ scheme: 'stripe', currency: 'usd', amount: 100, minTopUp: 50_000, publishableKey: 'pk_test_never' }],
    };
    const header = Buffer.from(JSON.stringify(challenge)).toString('base64');
    let received = 0;
    const greedy = createServer((req, res) => {
      received++;
      res.writeHead(402, { 'payment-required': header, 'content-type': 'application/json' }).end(JSON.stringify(challenge));
    });
    await new Promise<void>((resolve) => greedy.listen(0, '127.0.0.1', resolve));
    try {
      const budget = new BudgetPolicy();
      const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget });
      const error = await rejection(client.fetch(`http://127.0.0.1:${(greedy.address() as AddressInfo).port}/x`));
      expect(error.code).toBe('too_many_attempts');
      expect(received).toBe(2);
      expect(budget.charges()).toEqual([]);
    } finally {
      greedy.closeAllConnections();
      greedy.close();
    }
  });

  it('a request that already carries a payment header is passed through as it is', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const response = await client.fetch(`${proxy.url}/api/joke`, { headers: { payment: 'bm90LWpzb24=' } });
    expect(response.status).toBe(402);
    expect(proxy.requests).toHaveLength(1);
    expect(proxy.requests[0]!.headers['payment']).toBe('bm90LWpzb24=');
  });

  it('a 402 that is not a stripe402 challenge is handed back untouched', async () => {
    const foreign = createServer((req, res) => res.writeHead(402, { 'content-type': 'text/plain' }).end('pay some other way'));
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    try {
      const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
      const response = await client.fetch(`http://127.0.0.1:${(foreign.address() as AddressInfo).port}/x`);
      expect(response.status).toBe(402);
      expect(await response.text()).toBe('pay some other way');
    } finally {
      foreign.closeAllConnections();
      foreign.close();
    }
  });
});

describe('currencies, cards, stores and redirects', () => {
  it('a route priced in several currencies is paid in a preferred one, named in the payload', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', preferredCurrencies: ['usd'] });
    const response = await client.fetch(`${proxy.url}/api/fortune`);
    expect(response.status).toBe(200);
    expect(paymentOf(proxy.requests[1]!)).toMatchObject({ currency: 'usd', topUpAmount: 50_000 });
  });

  it('a zero-decimal currency is charged in whole yen when the budget allows its top-up', async () => {
    const jpy = { jpy: 1_000_000, '*': 100_000 };
    const client = new Stripe402Client({
      paymentMethodId: 'pm_card_visa',
      budget: { maxTopUp: jpy, perOrigin: { perDay: jpy }, total: { perDay: jpy }, unconfirmedCharges: 'as-specified' },
    });
    const response = await client.fetch(`${proxy.url}/api/fortune`);
    expect(response.status).toBe(200);
    const payment = paymentOf(proxy.requests[1]!)!;
    expect(payment.currency).toBeUndefined();
    expect(payment.topUpAmount).toBe(1_000_000);
    const last = stack.emulator.state.paymentIntents().at(-1)!;
    expect(last).toMatchObject({ currency: 'jpy', amount: 100, status: 'succeeded' });
  });

  it('reserves the worst case of a first yen top-up, then counts the chargeAmount the server confirmed', async () => {
    const wide = { jpy: 100_000_000, '*': 100_000 };
    const budget = new BudgetPolicy({ maxTopUp: { jpy: 1_000_000, '*': 100_000 }, perOrigin: { perDay: wide }, total: { perDay: wide } });
    const events: PaymentEvent[] = [];
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget, onPayment: (e) => events.push(e) });
    await (await client.fetch(`${proxy.url}/api/fortune`)).text();
    expect(events[0]).toMatchObject({ currency: 'jpy', chargedMinor: 100, chargeAmountConfirmed: true });
    expect(budget.chargedMinor({ currency: 'jpy' })).toBe(100);
    // Confirmed once: the next top-up to this origin is bounded by the spec's charge, not the two-decimal reading.
    expect(budget.chargeBound(proxy.url, 'jpy', 1_000_000)).toBe(100);
    expect(budget.chargeBound('https://other.example', 'jpy', 1_000_000)).toBe(10_000);
  });

  it('by default it falls back to the currency whose top-up fits the budget', async () => {
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    await (await client.fetch(`${proxy.url}/api/fortune`)).text();
    expect(paymentOf(proxy.requests[1]!)).toMatchObject({ currency: 'usd' });
  });

  it('card details are tokenized at the Stripe API with the publishable key, and only the PaymentMethod id reaches the server', async () => {
    const client = new Stripe402Client({
      card: { number: '4242 4242 4242 4242', expMonth: 12, expYear: 2040, cvc: '123' },
      stripeApiBase: stack.emulator.url,
    });
    const before = chargesNow();
    const response = await client.fetch(`${proxy.url}/api/joke`);
    expect(response.status).toBe(200);
    expect(chargesNow()).toBe(before + 1);
    const payment = paymentOf(proxy.requests[1]!)!;
    expect(payment.paymentMethodId).toMatch(/^pm_/);
    for (const request of proxy.requests) expect(JSON.stringify(request.headers) + request.body.toString()).not.toContain('4242424242424242');
  });

  it('a client id kept in a JSON file lets a new client spend without paying again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stripe402-fetch-store-'));
    try {
      const path = join(dir, 'clients.json');
      const first = new Stripe402Client({ paymentMethodId: 'pm_card_visa', store: new JsonFileClientIdStore(path) });
      await (await first.fetch(`${proxy.url}/api/joke`)).text();
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const before = chargesNow();
      const second = new Stripe402Client({ store: new JsonFileClientIdStore(path) });
      const response = await second.fetch(`${proxy.url}/api/joke`);
      expect(response.status).toBe(200);
      expect(chargesNow()).toBe(before);
      expect(paymentOf(proxy.requests.at(-1)!)).toEqual({ stripe402Version: 1, clientId: await first.store.get(proxy.url, 'usd') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a redirect to another origin is followed without the payment header', async () => {
    const landed: IncomingHttpHeaders[] = [];
    const elsewhere = createServer((req, res) => {
      landed.push(req.headers);
      res.end('landed');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    try {
      const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
      await (await client.fetch(`${proxy.url}/api/joke`)).text();
      const target = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/landing`;
      proxy.redirectRequests((r) => paymentOf(r) !== undefined, target, 307);
      const response = await client.fetch(`${proxy.url}/api/joke`, { headers: { 'x-app': 'a' } });
      expect(await response.text()).toBe('landed');
      expect(landed).toHaveLength(1);
      expect(landed[0]!['payment']).toBeUndefined();
      expect(landed[0]!['x-app']).toBe('a');
    } finally {
      elsewhere.closeAllConnections();
      elsewhere.close();
    }
  });
});
