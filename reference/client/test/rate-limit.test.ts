/**
 * The paying fetch against a reference server that limits its source
 * (spec 10.7): a spend answered `rate_limited` is repeated once its
 * Retry-After has passed, never earlier (ERR-12), and costs nothing; a
 * Retry-After longer than the client will wait ends the call with the
 * refusal. The limit is provoked for real, by a client id that does not
 * pay, sent from the same address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeHeader } from '@stripe402/core';
import { PaymentRefusedError } from '../errors.ts';
import { Stripe402Client } from '../fetch.ts';
import type { RunningServer } from 'stripe402';
import { paymentOf, startStack, succeededCharges, type Stack } from './harness.ts';
import { startRecordingProxy, type RecordingProxy } from './proxy.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.close();
});

/** Uses up the source's budget of client ids that do not pay: one unknown id, sent from loopback like the client. */
async function exhaust(server: RunningServer): Promise<void> {
  const response = await fetch(`${server.url}/api/joke`, { headers: { payment: encodeHeader({ stripe402Version: 1, clientId: 'f'.repeat(64) }) } });
  await response.text();
  expect(response.headers.get('payment-response')).not.toBeNull();
}

describe('a rate-limited spend', () => {
  let server: RunningServer;
  let proxy: RecordingProxy;
  afterAll(async () => {
    await proxy?.close();
  });

  it('is repeated after its Retry-After, not before, and spends once', async () => {
    // One unpaid id allowed, one more each second: Retry-After 1.
    server = await stack.freshServer(undefined, { rateLimits: { unpaidClientIds: { burst: 1, perMinute: 60 } } });
    proxy = await startRecordingProxy(server.url);
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
    const first = await client.fetch(`${proxy.url}/api/joke`);
    expect(first.status).toBe(200);
    await first.text();
    const charges = succeededCharges(stack.emulator).length;

    await exhaust(server);
    const sentBefore = proxy.requests.length;
    const started = performance.now();
    const limited = await client.fetch(`${proxy.url}/api/joke`);
    const waited = performance.now() - started;
    expect(limited.status).toBe(200);
    await limited.text();
    const sent = proxy.requests.slice(sentBefore);
    // The spend, refused, then the same spend after the delay.
    expect(sent).toHaveLength(2);
    expect(paymentOf(sent[0]!)).toEqual(paymentOf(sent[1]!));
    expect(waited).toBeGreaterThanOrEqual(1_000);
    expect(succeededCharges(stack.emulator).length).toBe(charges);
    const clientId = paymentOf(sent[0]!)!.clientId as string;
    // 50,000 units bought, two jokes of 100 spent: the refused spend took nothing.
    expect(await server.ledger.balance({ clientId, currency: 'usd' })).toBe(49_800);
  });

  it('ends the call with the refusal when Retry-After is longer than the client waits', async () => {
    server = await stack.freshServer(undefined, { rateLimits: { unpaidClientIds: { burst: 1, perMinute: 1 } } });
    await proxy?.close();
    proxy = await startRecordingProxy(server.url);
    const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa', maxRateLimitWaitMs: 5_000 });
    await (await client.fetch(`${proxy.url}/api/joke`)).text();
    await exhaust(server);
    const error = await client.fetch(`${proxy.url}/api/joke`).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(PaymentRefusedError);
    expect((error as PaymentRefusedError).code).toBe('rate_limited');
  });
});
