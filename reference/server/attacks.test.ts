/**
 * The attacks of spec sections 13.5 and 13.7, repeated against the reference
 * server on a real port, with the Stripe emulator behind the official SDK:
 * card testing from one address, unknown client ids, Stripe calls caused by
 * input that can be refuted locally (random or foreign PaymentIntent ids,
 * random PaymentMethod ids), and the global Stripe budget. Each test counts
 * what reached Stripe (the emulator's request count and its PaymentIntents),
 * checks that every limited answer is the well-formed rate_limited 402
 * (ERR-10) and that limiting never charges or loses credit (ERR-11). The
 * resume checks run on every real ledger, since they rely on what the
 * ledger records of a top-up before the client learns its PaymentIntent.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import type { RunningServer } from 'stripe402';
import {
  countStripeRequests,
  LEDGER_KINDS,
  openTestLedger,
  paymentIntentsOf,
  request,
  startTestServer,
  type PaidResponse,
  type TestLedger,
} from './test-helpers.ts';

const V = { stripe402Version: 1 } as const;
const VISA = 'pm_card_visa';
const DECLINING = 'pm_card_chargeDeclined';
/** Declining test cards with distinct fingerprints: card testing tries many cards, so the per-card limit does not bind first. */
const DECLINING_CARDS = ['chargeDeclined', 'chargeDeclinedInsufficientFunds', 'chargeDeclinedLostCard', 'chargeDeclinedStolenCard', 'chargeDeclinedExpiredCard', 'chargeDeclinedIncorrectCvc', 'chargeDeclinedFraudulent'].map((name) => `pm_card_${name}`);

function completeAuthentication(nextActionUrl: string): Promise<Response> {
  const url = new URL(nextActionUrl);
  url.searchParams.set('action', 'complete');
  return fetch(url);
}

const randomClientId = () => randomBytes(32).toString('hex');
const randomPaymentIntentId = () => `pi_${randomBytes(12).toString('hex')}`;
/** A request that comes through the trusted proxy on loopback, for the client at `address`. */
const from = (address: string) => ({ 'x-forwarded-for': address });

/**
 * Money conservation over everything a block of tests did: every succeeded
 * PaymentIntent a server created is credited exactly once, in the ledger of
 * the client its metadata names (`except`: PaymentIntents made on purpose by
 * someone else).
 */
async function expectEveryChargeCreditedOnce(emulator: Emulator, ledger: TestLedger['ledger'], except: ReadonlySet<string> = new Set()): Promise<number> {
  const succeeded = emulator.state.paymentIntents().filter((pi) => pi.status === 'succeeded' && pi.metadata?.stripe402_client_id && !except.has(pi.id));
  for (const pi of succeeded) {
    const entries = (await ledger.journal({ clientId: pi.metadata.stripe402_client_id!, currency: pi.currency })).filter((e) => e.kind === 'topup' && e.paymentIntentId === pi.id);
    expect(entries, pi.id).toHaveLength(1);
    expect(entries[0]!.delta).toBe(Number(pi.metadata.stripe402_units));
  }
  return succeeded.length;
}

/** ERR-10: a limited request is an error 402 with rate_limited, a Retry-After, and neither a client id nor a balance. */
function expectLimited(response: PaidResponse): void {
  expect(response.status).toBe(402);
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(response.required?.error).toBe('rate_limited');
  expect(response.payment).toMatchObject({ success: false, errorCode: 'rate_limited', clientId: '', creditsRemaining: 0 });
  expect(response.headers.get('cache-control')).toBe('no-store');
}

describe('rate limits on the reference server', () => {
  let emulator: Emulator;
  let store: TestLedger;
  let server: RunningServer | undefined;

  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    store = await openTestLedger('pglite');
  });
  afterAll(async () => {
    await store?.dispose();
    await emulator?.close();
  });
  afterEach(async () => {
    emulator.faults.clear();
    await server?.close();
    server = undefined;
  });

  it('lets one address reach Stripe with declining top-ups at most the charge-attempt burst, then answers rate_limited', async () => {
    server = await startTestServer(store.ledger, emulator, { trustedProxies: ['127.0.0.1'] });
    const before = emulator.state.paymentIntents().length;
    const answers: PaidResponse[] = [];
    for (let i = 0; i < 60; i++) {
      answers.push(await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: DECLINING_CARDS[i % DECLINING_CARDS.length] }, headers: from('203.0.113.7') }));
    }
    const declined = answers.filter((a) => a.payment?.errorCode === 'card_declined' || a.payment?.errorCode === 'payment_failed');
    const limited = answers.filter((a) => a.payment?.errorCode === 'rate_limited');
    // The default burst of charge attempts per source is 48 (limits.ts).
    expect(declined).toHaveLength(48);
    expect(limited).toHaveLength(12);
    for (const answer of limited) expectLimited(answer);
    expect(emulator.state.paymentIntents().length - before).toBeLessThanOrEqual(48);

    // Another address pays and spends as if nothing happened.
    const paid = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: VISA }, headers: from('198.51.100.4') });
    expect(paid.status).toBe(200);
    const spent = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: paid.payment!.clientId }, headers: from('198.51.100.4') });
    expect(spent.status).toBe(200);
    expect(paymentIntentsOf(emulator, paid.payment!.clientId).filter((pi) => pi.status === 'succeeded')).toHaveLength(1);
  });

  it('limits one card tried from many addresses by its fingerprint', async () => {
    server = await startTestServer(store.ledger, emulator, { trustedProxies: ['127.0.0.1'], rateLimits: { chargeAttemptsPerCard: { burst: 3, perMinute: 1 } } });
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: DECLINING }, headers: from(`192.0.2.${i + 1}`) });
      codes.push(answer.payment!.errorCode!);
      if (answer.payment!.errorCode === 'rate_limited') expectLimited(answer);
    }
    expect(codes).toEqual(['card_declined', 'card_declined', 'card_declined', 'rate_limited', 'rate_limited', 'rate_limited']);
  });

  it('never limits a paying client by its own top-ups and spends', async () => {
    server = await startTestServer(store.ledger, emulator);
    // 60 requests with the card: each either spends the balance or tops up, every one served; the default burst is 48.
    let charges = 0;
    for (let i = 0; i < 60; i++) {
      const answer = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, idempotencyKey: `paying-client-${i}-${randomBytes(4).toString('hex')}` } });
      expect(answer.status).toBe(200);
      if (answer.payment!.chargeId) charges++;
    }
    // A top-up of minTopUp pays for 5 jokes at the test prices.
    expect(charges).toBe(12);
  });

  it('serves 32 concurrent top-ups of one card from one address, charging once', async () => {
    server = await startTestServer(store.ledger, emulator);
    const url = server.url;
    const answers = await Promise.all(Array.from({ length: 32 }, () => request(`${url}/api/weather`, { payment: { ...V, paymentMethodId: 'pm_card_amex', topUpAmount: 100_000 } })));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const clientId = answers[0]!.payment!.clientId;
    expect(paymentIntentsOf(emulator, clientId).filter((pi) => pi.status === 'succeeded')).toHaveLength(1);
    expect(await store.ledger.balance({ clientId, currency: 'usd' })).toBe(100_000 - 32 * 2_500);
  });

  it('limits client ids that do not pay, per source, before the ledger; the limited answer tells no balance and spends nothing', async () => {
    server = await startTestServer(store.ledger, emulator, { trustedProxies: ['127.0.0.1'], rateLimits: { unpaidClientIds: { burst: 5, perMinute: 1 } } });
    const paid = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: VISA }, headers: from('198.51.100.9') });
    const funded = paid.payment!.clientId;
    const balance = await store.ledger.balance({ clientId: funded, currency: 'usd' });
    const journal = (await store.ledger.journal({ clientId: funded, currency: 'usd' })).length;

    for (let i = 0; i < 5; i++) {
      const probe = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: randomClientId() }, headers: from('203.0.113.50') });
      expect(probe.payment!.errorCode).toBe('insufficient_credits');
    }
    const unknown = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: randomClientId() }, headers: from('203.0.113.50') });
    expectLimited(unknown);
    // A known id from the limited source gets the same answer (CID-4), and nothing is spent (ERR-11).
    const known = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: funded }, headers: from('203.0.113.50') });
    expectLimited(known);
    expect(known.text).toBe(unknown.text);
    expect(await store.ledger.balance({ clientId: funded, currency: 'usd' })).toBe(balance);
    expect((await store.ledger.journal({ clientId: funded, currency: 'usd' })).length).toBe(journal);

    // Its owner, elsewhere, spends it.
    const owner = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: funded }, headers: from('198.51.100.9') });
    expect(owner.status).toBe(200);
    expect(owner.payment!.creditsRemaining).toBe(balance - 10_000);
  });

  it('gives a charge attempt back when the top-up amount is refused, but not when the card is', async () => {
    server = await startTestServer(store.ledger, emulator, { trustedProxies: ['127.0.0.1'], rateLimits: { chargeAttemptsPerSource: { burst: 2, perMinute: 1 } } });
    const send = (paymentMethodId: string, topUpAmount?: number) =>
      request(`${server!.url}/api/joke`, { payment: { ...V, paymentMethodId, ...(topUpAmount ? { topUpAmount } : {}) }, headers: from('203.0.113.90') });
    for (let i = 0; i < 5; i++) expect((await send('pm_card_discover', 1)).payment!.errorCode).toBe('top_up_below_minimum');
    expect((await send(DECLINING)).payment!.errorCode).toBe('card_declined');
    expect((await send(DECLINING_CARDS[1]!)).payment!.errorCode).toBe('card_declined');
    expectLimited(await send('pm_card_discover', 1));
  });

  it('leaves no succeeded PaymentIntent uncredited and none credited twice', async () => {
    expect(await expectEveryChargeCreditedOnce(emulator, store.ledger)).toBeGreaterThan(0);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    server = await startTestServer(store.ledger, emulator, { rateLimits: { unpaidClientIds: { burst: 3, perMinute: 1 } } });
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: randomClientId() }, headers: from(`198.51.100.${i + 20}`) });
      codes.push(answer.payment!.errorCode!);
    }
    expect(codes).toEqual(['insufficient_credits', 'insufficient_credits', 'insufficient_credits', 'rate_limited', 'rate_limited']);
  });

  it('bounds the Stripe calls of random PaymentMethod ids by the charge-attempt limit', async () => {
    server = await startTestServer(store.ledger, emulator, { trustedProxies: ['127.0.0.1'] });
    const stripeRequests = countStripeRequests(emulator);
    for (let i = 0; i < 70; i++) {
      const answer = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: `pm_${randomBytes(12).toString('hex')}` }, headers: from('203.0.113.77') });
      expect(['invalid_payment', 'rate_limited']).toContain(answer.payment!.errorCode);
    }
    // One PaymentMethod lookup per attempt, 48 attempts at most.
    expect(stripeRequests()).toBeLessThanOrEqual(48);
  });

  it('refuses a top-up over the global Stripe budget before charging, and charges nothing', async () => {
    // A first top-up takes three calls (PaymentMethod, Customer create, PaymentIntent): a budget of 2 stops it before the charge.
    server = await startTestServer(store.ledger, emulator, { rateLimits: { stripeCalls: { burst: 2, perMinute: 1 } } });
    const before = emulator.state.paymentIntents().length;
    const answer = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_mastercard', idempotencyKey: `budget-${randomBytes(6).toString('hex')}` } });
    expectLimited(answer);
    expect(emulator.state.paymentIntents().length).toBe(before);
    const again = await request(`${server.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_mastercard' } });
    expectLimited(again);
    expect(emulator.state.paymentIntents().length).toBe(before);
  });
});

describe.each(LEDGER_KINDS)('resuming a top-up on the %s ledger', (kind) => {
  let emulator: Emulator;
  let store: TestLedger;
  let server: RunningServer;
  const foreignIntents = new Set<string>();

  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    store = await openTestLedger(kind);
    server = await startTestServer(store.ledger, emulator);
  });
  afterAll(async () => {
    await server?.close();
    await store?.dispose();
    await emulator?.close();
  });
  afterEach(() => emulator.faults.clear());

  it('refuses PaymentIntent ids this deployment never started without calling Stripe', async () => {
    const stripeRequests = countStripeRequests(emulator);
    for (let i = 0; i < 40; i++) {
      const payload = i % 4 === 0 ? { paymentMethodId: VISA } : { clientId: randomClientId() };
      const answer = await request(`${server.url}/api/joke`, { payment: { ...V, ...payload, paymentIntentId: randomPaymentIntentId() } });
      expect(answer.status).toBe(402);
      expect(answer.payment!.errorCode).toBe('invalid_payment');
    }
    expect(stripeRequests()).toBe(0);
  });

  it("never credits a succeeded PaymentIntent that another deployment on the same Stripe account created", async () => {
    // Another deployment's top-up, with the metadata every stripe402 server writes, for a client id this server also knows.
    const clientId = randomClientId();
    const foreign = await emulator.stripe().paymentIntents.create({
      amount: 500,
      currency: 'usd',
      payment_method: VISA,
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      metadata: { stripe402_client_id: clientId, stripe402_units: '50000', stripe402_currency: 'usd' },
    });
    expect(foreign.status).toBe('succeeded');
    foreignIntents.add(foreign.id);
    const stripeRequests = countStripeRequests(emulator);
    const answer = await request(`${server.url}/api/joke`, { payment: { ...V, clientId, paymentIntentId: foreign.id, topUpAmount: 50_000 } });
    expect(answer.payment!.errorCode).toBe('invalid_payment');
    expect(stripeRequests()).toBe(0);
    expect(await store.ledger.isCredited(foreign.id)).toBe(false);
    expect(await store.ledger.balance({ clientId, currency: 'usd' })).toBe(0);
  });

  it('records a top-up awaiting authentication, credits it once on resume, and refuses it to anyone else without a Stripe call', async () => {
    const payload = { ...V, paymentMethodId: 'pm_card_authenticationRequired', topUpAmount: 50_000 };
    const first = await request(`${server.url}/api/joke`, { payment: payload });
    expect(first.payment!.errorCode).toBe('authentication_required');
    const { paymentIntentId, nextActionUrl, clientId } = first.payment!;
    expect(await store.ledger.startedTopUp(paymentIntentId!)).toEqual({ paymentIntentId, clientId, currency: 'usd', units: 50_000 });
    expect((await completeAuthentication(nextActionUrl!)).ok).toBe(true);

    const stripeRequests = countStripeRequests(emulator);
    const thief = await request(`${server.url}/api/joke`, { payment: { ...V, clientId: randomClientId(), paymentIntentId } });
    expect(thief.payment!.errorCode).toBe('invalid_payment');
    const otherAmount = await request(`${server.url}/api/joke`, { payment: { ...V, clientId, paymentIntentId, topUpAmount: 60_000 } });
    expect(otherAmount.payment!.errorCode).toBe('invalid_payment');
    expect(stripeRequests()).toBe(0);

    const resumed = await request(`${server.url}/api/joke`, { payment: { ...payload, paymentIntentId } });
    expect(resumed.status).toBe(200);
    expect(resumed.payment).toMatchObject({ success: true, chargeId: paymentIntentId, clientId, creditsRemaining: 40_000 });
    // By client id too, once credited: the credit is the record now; it spends and never credits twice.
    const again = await request(`${server.url}/api/joke`, { payment: { ...V, clientId, paymentIntentId } });
    expect(again.status).toBe(200);
    expect(again.payment!.chargeId).toBeUndefined();
    expect(again.payment!.creditsRemaining).toBe(30_000);
    const intents = paymentIntentsOf(emulator, clientId!);
    expect(intents).toHaveLength(1);
    expect(intents[0]!.status).toBe('succeeded');
    expect(await store.ledger.isCredited(paymentIntentId!)).toBe(true);
    expect((await store.ledger.journal({ clientId: clientId!, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
  });

  it('leaves no succeeded PaymentIntent of this server uncredited and none credited twice', async () => {
    expect(await expectEveryChargeCreditedOnce(emulator, store.ledger, foreignIntents)).toBeGreaterThan(0);
  });

  it('keeps one record per PaymentIntent and finds a credited top-up by its credit', async () => {
    const clientId = randomClientId();
    const paymentIntentId = randomPaymentIntentId();
    expect(await store.ledger.startedTopUp(paymentIntentId)).toBeNull();
    await store.ledger.recordTopUp({ paymentIntentId, clientId, currency: 'usd', units: 50_000 });
    await store.ledger.recordTopUp({ paymentIntentId, clientId: randomClientId(), currency: 'eur', units: 1 });
    expect(await store.ledger.startedTopUp(paymentIntentId)).toEqual({ paymentIntentId, clientId, currency: 'usd', units: 50_000 });

    const credited = randomPaymentIntentId();
    await store.ledger.creditTopUp({ clientId, currency: 'jpy', paymentIntentId: credited, units: 1_000_000, chargedMinor: 100 });
    expect(await store.ledger.startedTopUp(credited)).toEqual({ paymentIntentId: credited, clientId, currency: 'jpy', units: 1_000_000 });
  });
});
