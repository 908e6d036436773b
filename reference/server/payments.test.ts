/**
 * The reference server end to end, over real HTTP, against the Stripe
 * emulator through the official SDK, on each real ledger (PGlite in memory,
 * PostgreSQL in a fresh schema, Redis under a fresh key prefix): the paid
 * flow, declines, card authentication, concurrency, idempotent retries,
 * credit restored on a 5xx, and charges credited exactly once after the
 * ledger failed to record them (retry, webhook, reconcile).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { reconcile } from './recovery.ts';
import type { RunningServer } from 'stripe402';
import {
  eventually,
  FaultInjectingLedger,
  LEDGER_KINDS,
  openTestLedger,
  paymentIntentsOf,
  request,
  startTestServer,
  type TestLedger,
} from './test-helpers.ts';

const V = { stripe402Version: 1 } as const;

/** The card holder's part of 3-D Secure, out of band: the emulator's authentication page, "complete" chosen. */
function completeAuthentication(nextActionUrl: string): Promise<Response> {
  const url = new URL(nextActionUrl);
  url.searchParams.set('action', 'complete');
  return fetch(url);
}
const VISA = 'pm_card_visa';

describe.each(LEDGER_KINDS)('the reference server on the %s ledger', (kind) => {
  let emulator: Emulator;
  let store: TestLedger;
  let ledger: FaultInjectingLedger;
  let server: RunningServer;
  let visaFingerprint: string;

  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    store = await openTestLedger(kind);
    ledger = new FaultInjectingLedger(store.ledger);
    const pm = await emulator.stripe().paymentMethods.retrieve(VISA);
    visaFingerprint = pm.card!.fingerprint!;
  });
  afterAll(async () => {
    await store?.dispose();
    await emulator?.close();
  });
  afterEach(async () => {
    ledger.failCreditTopUps = 0;
    ledger.failRestores = 0;
    ledger.loseRestoreAnswers = 0;
    ledger.unreachable = false;
    emulator.faults.clear();
    emulator.setWebhook(undefined);
    await server?.close();
  });

  async function start(options: Parameters<typeof startTestServer>[2] = {}) {
    server = await startTestServer(ledger, emulator, options);
    return server;
  }

  it('runs the whole flow: challenge, top-up, spends, insufficient credits, top-up again', async () => {
    const { url, engine } = await start();
    const challenge = await request(`${url}/api/joke`);
    expect(challenge.status).toBe(402);
    expect(challenge.payment).toBeUndefined();
    expect(challenge.required).toMatchObject({ stripe402Version: 1, resource: { url: '/api/joke' } });
    expect(challenge.required!.error).toBeUndefined();
    expect(challenge.required!.accepts[0]).toMatchObject({ scheme: 'stripe', currency: 'usd', amount: 10_000, minTopUp: 50_000, publishableKey: emulator.publishableKey });
    expect(JSON.parse(challenge.text)).toEqual(challenge.required);
    expect(challenge.headers.get('cache-control')).toBe('no-store');

    const paid = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, topUpAmount: 50_000 } });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.text)).toHaveProperty('joke');
    const clientId = paid.payment!.clientId;
    expect(clientId).toBe(await engine.clientIdFor(visaFingerprint));
    expect(paid.payment).toMatchObject({ success: true, creditsRemaining: 40_000 });
    expect(paid.payment!.chargeId).toMatch(/^pi_/);
    expect(paid.headers.get('cache-control')).toBe('no-store');
    const [pi] = paymentIntentsOf(emulator, clientId);
    expect(pi).toMatchObject({ id: paid.payment!.chargeId, status: 'succeeded', amount: 500, currency: 'usd' });
    expect(pi!.metadata).toMatchObject({ stripe402_client_id: clientId, stripe402_units: '50000' });

    for (const expected of [30_000, 20_000, 10_000, 0]) {
      const spent = await request(`${url}/api/joke`, { payment: { ...V, clientId } });
      expect(spent.status).toBe(200);
      expect(spent.payment).toEqual({ success: true, creditsRemaining: expected, clientId, currency: 'usd' });
    }

    const broke = await request(`${url}/api/joke`, { payment: { ...V, clientId } });
    expect(broke.status).toBe(402);
    expect(broke.required!.error).toBe('insufficient_credits');
    expect(JSON.parse(broke.text)).toEqual(broke.required);
    expect(broke.payment).toMatchObject({ success: false, errorCode: 'insufficient_credits', creditsRemaining: 0, clientId });

    const again = await request(`${url}/api/joke`, { payment: { ...V, clientId, paymentMethodId: VISA } });
    expect(again.status).toBe(200);
    expect(again.payment).toMatchObject({ success: true, creditsRemaining: 40_000, clientId });
    expect(again.payment!.chargeId).not.toBe(paid.payment!.chargeId);
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(2);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(40_000);
  });

  it('answers an unknown well-formed client id exactly as a known one with zero balance', async () => {
    const { url } = await start();
    const paid = await request(`${url}/api/weather`, { payment: { ...V, paymentMethodId: VISA, topUpAmount: 52_500 } });
    const known = paid.payment!.clientId;
    for (let i = 0; i < 20; i++) await request(`${url}/api/weather`, { payment: { ...V, clientId: known } });
    const unknown = 'f'.repeat(64);
    const a = await request(`${url}/api/weather`, { payment: { ...V, clientId: known } });
    const b = await request(`${url}/api/weather`, { payment: { ...V, clientId: unknown } });
    expect(a.status).toBe(402);
    expect(b.status).toBe(a.status);
    expect(b.text).toBe(a.text);
    expect(b.headers.get('payment-required')).toBe(a.headers.get('payment-required'));
    expect({ ...b.payment, clientId: 'x' }).toEqual({ ...a.payment, clientId: 'x' });
    expect(b.payment!.clientId).toBe(unknown);
  });

  it('credits nothing when the card is declined', async () => {
    const { url, engine } = await start();
    const declined = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_chargeDeclined' } });
    expect(declined.status).toBe(402);
    expect(declined.required!.error).toBe('card_declined');
    expect(declined.payment).toMatchObject({ success: false, errorCode: 'card_declined', creditsRemaining: 0 });
    const clientId = declined.payment!.clientId;
    expect(clientId).toMatch(/^[0-9a-f]{64}$/);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(0);
    expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toEqual([]);
    expect(paymentIntentsOf(emulator, clientId).every((pi) => pi.status !== 'succeeded')).toBe(true);
    // The decline text from Stripe never reaches the client.
    expect(declined.payment!.error).not.toMatch(/Your card/);
    void engine;
  });

  it('asks for card authentication, then credits the authenticated top-up exactly once on resume', async () => {
    const { url } = await start();
    const payload = { ...V, paymentMethodId: 'pm_card_authenticationRequired', topUpAmount: 50_000 };
    const first = await request(`${url}/api/joke`, { payment: payload });
    expect(first.status).toBe(402);
    expect(first.required!.error).toBe('authentication_required');
    expect(first.payment).toMatchObject({ success: false, errorCode: 'authentication_required' });
    const { paymentIntentId, nextActionUrl, clientId } = first.payment!;
    expect(paymentIntentId).toMatch(/^pi_/);
    expect(nextActionUrl).toMatch(/^http/);

    const early = await request(`${url}/api/joke`, { payment: { ...payload, paymentIntentId } });
    expect(early.status).toBe(402);
    expect(early.payment!.errorCode).toBe('authentication_required');
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(0);

    expect((await completeAuthentication(nextActionUrl!)).ok).toBe(true);

    const resumed = await request(`${url}/api/joke`, { payment: { ...payload, paymentIntentId } });
    expect(resumed.status).toBe(200);
    expect(resumed.payment).toMatchObject({ success: true, chargeId: paymentIntentId, creditsRemaining: 40_000, clientId });

    // Resuming again spends from the balance; the PaymentIntent is never credited twice (LEDG-4).
    const replayed = await request(`${url}/api/joke`, { payment: { ...payload, paymentIntentId } });
    expect(replayed.status).toBe(200);
    expect(replayed.payment).toMatchObject({ success: true, creditsRemaining: 30_000 });
    expect(replayed.payment!.chargeId).toBeUndefined();
    const topups = (await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup');
    expect(topups).toHaveLength(1);
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
  });

  it("refuses to resume with a PaymentIntent of another client or another amount", async () => {
    const { url } = await start();
    const first = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_authenticationRequired' } });
    const { paymentIntentId } = first.payment!;
    await completeAuthentication(first.payment!.nextActionUrl!);
    const otherClient = await request(`${url}/api/joke`, { payment: { ...V, clientId: 'a'.repeat(64), paymentIntentId } });
    expect(otherClient.payment!.errorCode).toBe('invalid_payment');
    const otherAmount = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_authenticationRequired', topUpAmount: 60_000, paymentIntentId } });
    expect(otherAmount.payment!.errorCode).toBe('invalid_payment');
    const unknown = await request(`${url}/api/joke`, { payment: { ...V, clientId: 'a'.repeat(64), paymentIntentId: 'pi_doesnotexist' } });
    expect(unknown.payment!.errorCode).toBe('invalid_payment');
    expect(await ledger.isCredited(paymentIntentId!)).toBe(false);
  });

  it('serves exactly 20 of 50 concurrent spends on a balance for 20, and ends at zero', async () => {
    const { url } = await start();
    const paid = await request(`${url}/api/weather`, { payment: { ...V, paymentMethodId: VISA, topUpAmount: 52_500 } });
    expect(paid.payment!.creditsRemaining).toBe(50_000);
    const clientId = paid.payment!.clientId;
    const results = await Promise.all(Array.from({ length: 50 }, () => request(`${url}/api/weather`, { payment: { ...V, clientId } })));
    const served = results.filter((r) => r.status === 200);
    expect(served).toHaveLength(20);
    expect(results.filter((r) => r.status === 402).every((r) => r.payment!.errorCode === 'insufficient_credits')).toBe(true);
    expect(results.filter((r) => r.status === 402)).toHaveLength(30);
    // Each served request saw a different balance after its own spend.
    expect(new Set(served.map((r) => r.payment!.creditsRemaining)).size).toBe(20);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(0);
  });

  it('makes one charge for concurrent top-ups from one card; the others spend the new balance', async () => {
    const { url, engine } = await start();
    const clientId = await engine.clientIdFor(visaFingerprint);
    const results = await Promise.all(Array.from({ length: 4 }, () => request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results.filter((r) => r.payment!.chargeId)).toHaveLength(1);
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(10_000);
  });

  it('charges once for a top-up retried with the same idempotencyKey', async () => {
    const { url } = await start();
    const payload = { ...V, paymentMethodId: VISA, idempotencyKey: 'retry-test-key-0001' };
    const first = await request(`${url}/api/joke`, { payment: payload });
    expect(first.status).toBe(200);
    const clientId = first.payment!.clientId;
    // Drain the balance so the retry cannot be served from it.
    for (let i = 0; i < 4; i++) await request(`${url}/api/joke`, { payment: { ...V, clientId } });
    const retried = await request(`${url}/api/joke`, { payment: payload });
    expect(retried.status).toBe(402);
    expect(retried.payment!.errorCode).toBe('insufficient_credits');
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
    expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
  });

  it('answers invalid_payment, without charging, to an idempotencyKey reused for another top-up', async () => {
    const { url } = await start();
    const first = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, idempotencyKey: 'reused-key-000001' } });
    expect(first.status).toBe(200);
    const clientId = first.payment!.clientId;
    for (let i = 0; i < 4; i++) await request(`${url}/api/joke`, { payment: { ...V, clientId } });
    const other = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, idempotencyKey: 'reused-key-000001', topUpAmount: 60_000 } });
    expect(other.status).toBe(402);
    expect(other.payment).toMatchObject({ errorCode: 'invalid_payment', clientId, creditsRemaining: 0 });
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
  });

  it('answers 503 when Stripe is unavailable for the charge, and a retry with the same key charges once', async () => {
    const { url, engine } = await start();
    const clientId = await engine.clientIdFor(visaFingerprint);
    const payload = { ...V, paymentMethodId: VISA, idempotencyKey: 'stripe-down-key-0001' };
    emulator.faults.arm({ match: { method: 'POST', path: '/v1/payment_intents' }, kind: 'status503', times: 'unlimited' });
    const down = await request(`${url}/api/joke`, { payment: payload });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(down.required).toBeUndefined();
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(0);
    emulator.faults.clear();
    const retried = await request(`${url}/api/joke`, { payment: payload });
    expect(retried.status).toBe(200);
    expect(retried.payment).toMatchObject({ creditsRemaining: 40_000, clientId });
    expect(paymentIntentsOf(emulator, clientId).filter((pi) => pi.status === 'succeeded')).toHaveLength(1);
  });

  it('charges once when Stripe loses the response to the charge (the SDK retries with the same key)', async () => {
    const { url } = await start();
    emulator.faults.arm({ match: { method: 'POST', path: '/v1/payment_intents' }, kind: 'lose_response', times: 1 });
    const paid = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } });
    expect(paid.status).toBe(200);
    expect(paymentIntentsOf(emulator, paid.payment!.clientId)).toHaveLength(1);
    expect(paid.payment!.creditsRemaining).toBe(40_000);
  });

  it('restores the credits when the handler answers 500, and says so in payment-response', async () => {
    const { url } = await start();
    const topUp = await request(`${url}/api/fail`, { payment: { ...V, paymentMethodId: VISA } });
    expect(topUp.status).toBe(500);
    const clientId = topUp.payment!.clientId;
    // The top-up stands (the card was charged); only this request's price comes back. success stays true (PROC-10).
    expect(topUp.payment).toMatchObject({ success: true, creditsRemaining: 50_000 });
    expect(topUp.payment!.errorCode).toBeUndefined();
    expect(topUp.payment!.chargeId).toMatch(/^pi_/);
    const spend = await request(`${url}/api/fail`, { payment: { ...V, clientId } });
    expect(spend.status).toBe(500);
    expect(spend.payment).toEqual({ success: true, creditsRemaining: 50_000, clientId, currency: 'usd' });
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(50_000);
    const kinds = (await ledger.journal({ clientId, currency: 'usd' })).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'restore')).toHaveLength(2);
  });

  it('sends a restore again when its answer was lost, and the ledger applies it once', async () => {
    const { url } = await start();
    const clientId = (await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } })).payment!.clientId;
    ledger.loseRestoreAnswers = 2;
    const failed = await request(`${url}/api/fail`, { payment: { ...V, clientId } });
    expect(failed.status).toBe(500);
    expect(failed.payment).toEqual({ success: true, creditsRemaining: 40_000, clientId, currency: 'usd' });
    expect(ledger.calls.restore).toBeGreaterThanOrEqual(3);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(40_000);
    const restores = (await ledger.journal({ clientId, currency: 'usd' })).filter((entry) => entry.kind === 'restore');
    expect(restores).toHaveLength(1);
  });

  it('gives the credits back in the background when the ledger is away longer than the response can wait', async () => {
    const { url } = await start();
    const clientId = (await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } })).payment!.clientId;
    // The first attempt and its three quick retries fail; the first background attempt (1 s later) applies it.
    ledger.failRestores = 4;
    const failed = await request(`${url}/api/fail`, { payment: { ...V, clientId } });
    expect(failed.status).toBe(500);
    // The answer reports the balance as it stands: spent, not yet restored.
    expect(failed.payment).toMatchObject({ success: true, creditsRemaining: 30_000 });
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(30_000);
    for (let waited = 0; waited < 5_000 && (await ledger.balance({ clientId, currency: 'usd' })) !== 40_000; waited += 100) await sleep(100);
    expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(40_000);
    expect((await ledger.journal({ clientId, currency: 'usd' })).filter((entry) => entry.kind === 'restore')).toHaveLength(1);
  });

  it('keeps balances per currency and picks the accepted currency the payload names', async () => {
    const { url } = await start();
    const challenge = await request(`${url}/api/fortune`);
    expect(challenge.required!.accepts.map((a) => a.currency)).toEqual(['jpy', 'eur', 'kwd']);
    const eur = await request(`${url}/api/fortune`, { payment: { ...V, paymentMethodId: VISA, currency: 'eur' } });
    expect(eur.status).toBe(200);
    expect(eur.payment).toMatchObject({ creditsRemaining: 49_900, currency: 'eur' });
    const clientId = eur.payment!.clientId;
    expect(paymentIntentsOf(emulator, clientId).map((pi) => [pi.currency, pi.amount])).toEqual([['eur', 500]]);
    // EUR credit never pays for the yen price (UNIT-5).
    const yen = await request(`${url}/api/fortune`, { payment: { ...V, clientId } });
    expect(yen.payment).toMatchObject({ errorCode: 'insufficient_credits', creditsRemaining: 0 });
    const yenTopUp = await request(`${url}/api/fortune`, { payment: { ...V, paymentMethodId: VISA, currency: 'jpy' } });
    expect(yenTopUp.status).toBe(200);
    // 1,000,000 units = ¥100 in a zero-decimal currency.
    expect(paymentIntentsOf(emulator, clientId).map((pi) => [pi.currency, pi.amount])).toEqual([['eur', 500], ['jpy', 100]]);
    const gbp = await request(`${url}/api/fortune`, { payment: { ...V, clientId, currency: 'gbp' } });
    expect(gbp.status).toBe(402);
    expect(gbp.payment).toMatchObject({ errorCode: 'currency_not_accepted', clientId: '', creditsRemaining: 0 });
    expect(await ledger.balance({ clientId, currency: 'eur' })).toBe(49_900);
    expect(await ledger.balance({ clientId, currency: 'jpy' })).toBe(990_000);
  });

  it('refuses a top-up below the minimum, above the maximum or off the charge step without charging', async () => {
    const { url, engine } = await start();
    const clientId = await engine.clientIdFor(visaFingerprint);
    const low = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, topUpAmount: 40_000 } });
    expect(low.payment).toMatchObject({ errorCode: 'top_up_below_minimum', clientId });
    expect(low.required!.error).toBe('top_up_below_minimum');
    const high = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA, topUpAmount: 200_001 } });
    expect(high.payment).toMatchObject({ errorCode: 'top_up_above_maximum', clientId });
    // No maxTopUp on this route, but $10,000,000 is more than Stripe charges at once (UNIT-8).
    const huge = await request(`${url}/api/echo`, { method: 'POST', payment: { ...V, paymentMethodId: VISA, topUpAmount: 100_000_000_000 } });
    expect(huge.payment).toMatchObject({ errorCode: 'top_up_above_maximum', clientId });
    // 50,010 units of kwd charge 5,001 fils, not a multiple of 10 (UNIT-7).
    const offStep = await request(`${url}/api/fortune`, { payment: { ...V, paymentMethodId: VISA, currency: 'kwd', topUpAmount: 50_010 } });
    expect(offStep.payment).toMatchObject({ errorCode: 'invalid_payment', clientId });
    expect(paymentIntentsOf(emulator, clientId)).toHaveLength(0);
  });

  it('echoes a paid POST body', async () => {
    const { url } = await start();
    const echoed = await request(`${url}/api/echo`, {
      method: 'POST',
      payment: { ...V, paymentMethodId: VISA },
      body: '{"hello":"world"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(echoed.status).toBe(200);
    expect(echoed.text).toBe('{"hello":"world"}');
    expect(echoed.payment!.creditsRemaining).toBe(49_950);
  });

  describe('a charge whose credit failed is credited exactly once later', () => {
    it('by the client retrying with the same idempotencyKey', async () => {
      const { url, engine } = await start();
      const clientId = await engine.clientIdFor(visaFingerprint);
      const payload = { ...V, paymentMethodId: VISA, idempotencyKey: 'unrecorded-topup-0001' };
      ledger.failCreditTopUps = 1;
      const failed = await request(`${url}/api/joke`, { payment: payload });
      expect(failed.status).toBe(503);
      expect(failed.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(failed.text).not.toMatch(/injected|creditTopUp|Ledger/);
      const [pi] = paymentIntentsOf(emulator, clientId);
      expect(pi!.status).toBe('succeeded');
      expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(0);

      const retried = await request(`${url}/api/joke`, { payment: payload });
      expect(retried.status).toBe(200);
      expect(retried.payment).toMatchObject({ success: true, chargeId: pi!.id, creditsRemaining: 40_000 });
      const again = await request(`${url}/api/joke`, { payment: payload });
      expect(again.payment).toMatchObject({ success: true, creditsRemaining: 30_000 });
      expect(again.payment!.chargeId).toBeUndefined();
      expect(paymentIntentsOf(emulator, clientId)).toHaveLength(1);
      expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
    });

    it('by the payment_intent.succeeded webhook', async () => {
      const webhookSecret = 'whsec_test_reference_server_0001';
      const { url, engine } = await start({ webhookSecret });
      const clientId = await engine.clientIdFor(visaFingerprint);
      emulator.setWebhook({ url: `${url}/stripe402/webhook`, secret: webhookSecret, retryDelaysMs: [50, 100, 200] });
      ledger.failCreditTopUps = 0;
      // Fail only the engine's credit (the one that also spends); the webhook's credit goes through.
      const inner = ledger.creditTopUp.bind(ledger);
      let failedEngineCredit = false;
      ledger.creditTopUp = async (credit) => {
        if (credit.spend && !failedEngineCredit) {
          failedEngineCredit = true;
          ledger.failCreditTopUps = 1;
        }
        return inner(credit);
      };
      try {
        const failed = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } });
        expect(failed.status).toBe(503);
        const [pi] = paymentIntentsOf(emulator, clientId);
        await eventually(() => ledger.isCredited(pi!.id));
        await emulator.webhooksIdle(5_000);
        expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(50_000);
        const spend = await request(`${url}/api/joke`, { payment: { ...V, clientId } });
        expect(spend.payment!.creditsRemaining).toBe(40_000);
        expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
      } finally {
        delete (ledger as { creditTopUp?: unknown }).creditTopUp;
      }
    });

    it('reports chargeId on the request that charged although the webhook credited first (PROC-9)', async () => {
      const webhookSecret = 'whsec_test_reference_server_0002';
      const { url, engine } = await start({ webhookSecret });
      const clientId = await engine.clientIdFor(visaFingerprint);
      emulator.setWebhook({ url: `${url}/stripe402/webhook`, secret: webhookSecret, retryDelaysMs: [50, 100, 200] });
      // The engine's credit (the one that also spends) waits until the webhook's credit has landed: LEDG-4's race, settled.
      const inner = ledger.creditTopUp.bind(ledger);
      ledger.creditTopUp = async (credit) => {
        if (credit.spend) await eventually(() => ledger.isCredited(credit.paymentIntentId));
        return inner(credit);
      };
      try {
        const paid = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } });
        const [pi] = paymentIntentsOf(emulator, clientId);
        expect(paid.status).toBe(200);
        expect(paid.payment).toMatchObject({ success: true, chargeId: pi!.id, chargeAmount: 500, creditsRemaining: 40_000 });
        await emulator.webhooksIdle(5_000);
        expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
      } finally {
        delete (ledger as { creditTopUp?: unknown }).creditTopUp;
      }
    });

    it('by reconcile', async () => {
      const { url, gateway, engine, deploymentId } = await start();
      const clientId = await engine.clientIdFor(visaFingerprint);
      const since = new Date(Date.now() - 60_000);
      ledger.failCreditTopUps = 1;
      const failed = await request(`${url}/api/joke`, { payment: { ...V, paymentMethodId: VISA } });
      expect(failed.status).toBe(503);
      const [pi] = paymentIntentsOf(emulator, clientId);
      expect(await ledger.isCredited(pi!.id)).toBe(false);

      const report = await reconcile({ gateway, ledger }, { since, deploymentId });
      expect(report.credited).toContain(pi!.id);
      expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(50_000);
      const second = await reconcile({ gateway, ledger }, { since, deploymentId });
      expect(second.credited).toEqual([]);
      expect(await ledger.balance({ clientId, currency: 'usd' })).toBe(50_000);
      expect((await ledger.journal({ clientId, currency: 'usd' })).filter((e) => e.kind === 'topup')).toHaveLength(1);
    });
  });
});
