/**
 * The suite against a stripe402 v1 server (the imitation the client tests
 * use: v1's lax decoding, v1 error bodies without payment-response, no
 * extensions), at level all on the project's emulator. Every check that
 * fails must be one of the differences Table 15.2 lists or a defect of that
 * server, named here with the reason; the checks that once failed such a
 * server falsely (a missing payment-response read as a wrong answer, an
 * extension it need not implement, charges without metadata) must pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '@stripe402/core';
import { startV1Server, type RunningV1Server } from '../../reference/client/test/v1-server.ts';
import { runConformance } from '../runner.ts';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { detailOf } from './prove.ts';

/** Every check a v1 server fails, and why: the row of Table 15.2, or the defect. */
const V1_FAILS: Record<string, string> = {
  '3/challenge-not-stored': 'Table 15.2, caching: no Cache-Control',
  '3/payment-response-not-shared-cacheable': 'Table 15.2, caching: no Cache-Control',
  '3/payment-response-on-error': 'Table 15.2, insufficient_credits 402: no payment-response',
  '3/payment-response-on-undecodable-header': 'Table 15.2, error 402: no payment-response',
  '10/error-402-carries-both-headers': 'Table 15.2, error 402: neither header',
  '10/error-names-the-card-client-id': 'Table 15.2, error 402: the body\'s clientId is ""',
  '3/rejects-oversized-header': 'Table 15.2, header length not checked',
  '3/rejects-repeated-header': 'Table 15.2, repeated header not checked',
  '3/rejects-stray-characters': 'Table 15.2, lenient decoding',
  '3/rejects-interior-whitespace': 'Table 15.2, lenient decoding',
  '3/rejects-data-after-padding': 'Table 15.2, lenient decoding',
  '3/rejects-impossible-length': 'Table 15.2, lenient decoding',
  '3/rejects-mixed-alphabets': 'Table 15.2, lenient decoding',
  '3/rejects-invalid-utf8': 'Table 15.2, lenient decoding',
  '3/rejects-non-object-json': 'Table 15.2, lenient decoding: a non-object gets the first challenge',
  '3/duplicate-member-rejected': 'a SHOULD of ENC-16: JSON.parse keeps the last member',
  '4/rejects-other-version': 'Table 15.2, types not checked',
  '4/rejects-version-not-integer': 'Table 15.2, types not checked',
  '4/rejects-fractional-top-up': 'Table 15.2, types of topUpAmount not checked',
  '4/rejects-top-up-of-wrong-type': 'Table 15.2, types of topUpAmount not checked',
  '4/rejects-top-up-out-of-range': 'Table 15.2, types of topUpAmount not checked',
  '4/rejects-payload-without-ids': 'Table 15.2, a payload without ids gets the first challenge',
  '4/rejects-malformed-members': 'Table 15.2, types not checked',
  '4/rejects-malformed-idempotency-key': 'Table 15.2, types not checked (idempotencyKey is ignored)',
  '8/invalid-payload-charges-nothing': 'Table 15.2, types not checked: a fractional top-up is spent or charged',
  '5/top-up-metadata-names-client-and-units': 'Table 15.2, no PaymentIntent metadata',
  '5/advertises-max-top-up': 'a SHOULD of UNIT-8: v1 has no maxTopUp',
  '8/charge-amount-reported': 'a SHOULD of PROC-17: v1 sends no chargeAmount',
  '6/rejects-malformed-client-id': 'Table 15.2, any clientId string is looked up',
  '6/rejects-unknown-payment-method': 'an unknown PaymentMethod is payment_failed in v1',
  '7/head-not-served': 'Table 15.2, paywall matching: HEAD is not the paid GET (here: 404, not the challenge)',
  '8/concurrent-top-ups-charge-once': 'Table 15.2, concurrent top-ups each charge',
  '8/idempotency-key-charges-once': 'v1 ignores idempotencyKey: a repeated top-up charges again',
  '10/invalid-input-never-served': 'Table 15.2, lenient decoding',
};

/** Checks that failed such a server falsely before the suite read answers in one place. */
const ONCE_FALSE: readonly string[] = [
  '4/top-up-defaults-to-min-top-up',
  '5/credit-is-exactly-top-up',
  '6/unknown-client-id-indistinguishable',
  '8/top-up-charges-and-serves',
  '8/insufficient-credits',
  '8/rejects-top-up-below-minimum',
  '8/replayed-top-up-header-charges-once',
  '8/model-balances',
  '10/declined-card-credits-nothing',
  '11/concurrent-spends-never-overdraw',
  '11/money-is-conserved',
  '9/without-extension-ignores-payment-intent',
  '15/no-extension-member-required',
];

const SECRET = 'stripe402 v1 server secret for the conformance test';
let emulator: Emulator;
let server: RunningV1Server;
let report: ConformanceReport;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  server = await startV1Server({ stripeUrl: emulator.url, stripeSecretKey: emulator.secretKey, publishableKey: emulator.publishableKey, serverSecret: SECRET });
  report = await runConformance({ target: `${server.url}/api/joke`, level: 'all', stripeUrl: emulator.url, stripeKey: emulator.secretKey, serverSecret: SECRET, seed: 402, runs: 10 });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await emulator?.close();
});

describe('the conformance suite against a stripe402 v1 server', () => {
  it('fails only the differences of Table 15.2 and the server\'s own defects', () => {
    const failed = report.checks.filter((c) => c.status === 'failed');
    expect(failed.filter((c) => !(c.id in V1_FAILS)).map((c) => `${c.id}: ${detailOf(c)}`)).toEqual([]);
    expect(Object.keys(V1_FAILS).filter((id) => !failed.some((c) => c.id === id))).toEqual([]);
  });

  it('passes the checks that once failed it falsely', () => {
    const results = ONCE_FALSE.map((id) => {
      const result = report.checks.find((c) => c.id === id);
      return `${id}: ${result?.status ?? 'not run'}${result && result.status !== 'passed' ? ` (${detailOf(result)})` : ''}`;
    });
    expect(results).toEqual(ONCE_FALSE.map((id) => `${id}: passed`));
  });

  it('skips the extensions it does not implement, saying so', () => {
    const reasons = Object.fromEntries(report.checks.filter((c) => c.status === 'skipped').map((c) => [c.id, c.reason ?? '']));
    expect(reasons['9/rejects-foreign-payment-intent']).toMatch(/does not implement card authentication/);
    expect(reasons['4/rejects-currency-not-offered']).toMatch(/does not implement the currency member/);
    expect(reasons['12/discovery-document-validates']).toMatch(/does not implement the extension/);
  });
});
