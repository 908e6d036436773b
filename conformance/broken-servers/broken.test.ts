/**
 * Proves that every conformance check can fail. The suite runs against the
 * fixture server of server.ts: correct, where every check must pass, and
 * once per deliberate break of breaks.ts, where the checks naming the broken
 * rule must report `failed`. A check that no break can fail must be listed
 * in UNBREAKABLE with its reason. Everything talks to one real Stripe
 * emulator over real sockets; nothing is mocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  deriveClientId,
  encodeHeader,
  type PaymentResponse,
} from '@stripe402/core';
import { listChecks } from '../runner.ts';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { detailOf, proveAll, type ProofRun } from './prove.ts';
import { hasDuplicateMembers } from '@stripe402/core';
import { BREAKS, NOT_FOR_THE_CORRECT_SERVER, UNBREAKABLE, VARIANTS, startBrokenServer, type BreakName, type VariantName } from './server.ts';

const NAMES = Object.keys(BREAKS) as BreakName[];
const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];

let emulator: Emulator;
let proof: { correct: ProofRun; breaks: Map<BreakName, ProofRun>; variants: Map<VariantName, ProofRun> };

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  proof = await proveAll(emulator, NAMES, { concurrency: 3 });
}, 300_000);

afterAll(async () => {
  await emulator?.close();
});

describe('the fixture server', () => {
  it('answers the challenge, charges a top-up once, spends, restores a 5xx and refuses a declined card', async () => {
    const serverSecret = 'fixture-smoke-test-secret-0123456789abcdef';
    const server = await startBrokenServer({ stripeUrl: emulator.url, stripeSecretKey: emulator.secretKey, publishableKey: emulator.publishableKey, serverSecret });
    try {
      const pay = (payload: object, path = '/api/joke') => fetch(`${server.url}${path}`, { headers: { payment: encodeHeader(payload) } });
      const answerOf = (response: Response): PaymentResponse => {
        const decoded = decodePaymentResponseHeader(response.headers.get('payment-response') ?? '');
        if (!decoded.ok) throw new Error(`no valid payment-response: ${decoded.error.detail}`);
        return decoded.value;
      };

      const challenge = await fetch(`${server.url}/api/joke`);
      expect(challenge.status).toBe(402);
      expect(challenge.headers.get('cache-control')).toBe('no-store');
      const required = decodePaymentRequiredHeader(challenge.headers.get('payment-required') ?? '');
      expect(required.ok && required.value.accepts[0]).toMatchObject({ currency: 'usd', amount: 100, minTopUp: 50_000, maxTopUp: 1_000_000 });
      expect(await challenge.json()).toEqual(required.ok ? required.value : undefined);

      const fingerprint = (await emulator.stripe().paymentMethods.retrieve('pm_card_visa')).card?.fingerprint;
      const clientId = await deriveClientId(serverSecret, fingerprint!);
      const topUp = await pay({ stripe402Version: 1, paymentMethodId: 'pm_card_visa', topUpAmount: 50_001 });
      expect(topUp.status).toBe(200);
      const charged = answerOf(topUp);
      expect(charged).toMatchObject({ success: true, clientId, creditsRemaining: 49_901 });
      const intent = await emulator.stripe().paymentIntents.retrieve(charged.chargeId!);
      expect(intent).toMatchObject({ status: 'succeeded', amount: 501, currency: 'usd', metadata: { stripe402_client_id: clientId, stripe402_units: '50001' } });

      const spend = answerOf(await pay({ stripe402Version: 1, clientId }));
      expect(spend).toEqual({ success: true, clientId, creditsRemaining: 49_801 });

      const failed = await pay({ stripe402Version: 1, clientId }, '/api/fail');
      expect(failed.status).toBe(500);
      expect(answerOf(failed).creditsRemaining).toBe(49_801);

      const declined = await pay({ stripe402Version: 1, paymentMethodId: 'pm_card_chargeDeclined' });
      expect(declined.status).toBe(402);
      expect(answerOf(declined)).toMatchObject({ success: false, errorCode: 'card_declined', creditsRemaining: 0 });

      const intents = emulator.state.paymentIntents().filter((i) => i.metadata?.stripe402_client_id === clientId);
      expect(intents.map((i) => i.id)).toEqual([charged.chargeId]);
    } finally {
      await server.close();
    }
  });

  it('finds two members of one name at any depth of a JSON text, and nothing else', () => {
    expect(hasDuplicateMembers('{"a":1,"a":2}')).toBe(true);
    expect(hasDuplicateMembers('{"a":{"b":1,"b":2}}')).toBe(true);
    expect(hasDuplicateMembers('{"a":[{"b":1},{"b":2}]}')).toBe(false);
    expect(hasDuplicateMembers('{"a\\"":1,"a":2}')).toBe(false);
    expect(hasDuplicateMembers('{"x":"a,\\"a","a":1}')).toBe(false);
  });
});

describe('the conformance suite against the correct fixture server', () => {
  it('passes every check at level all and reaches the extensions level', () => {
    const notPassed = proof.correct.report.checks
      .filter((c) => c.status !== 'passed' && c.status !== 'info' && !(c.status === 'skipped' && c.id in NOT_FOR_THE_CORRECT_SERVER))
      .map((c) => `${c.id}: ${c.status} (${detailOf(c)})`);
    expect(notPassed).toEqual([]);
    expect(proof.correct.report.levelReached).toBe('extensions');
  });
});

describe('the conformance suite against each conforming variant of the fixture', () => {
  it.each(VARIANT_NAMES)('fails %s on nothing but the rules it breaks on purpose', (name) => {
    const run = proof.variants.get(name);
    expect(run, `no run for ${name}`).toBeDefined();
    // What the correct server cannot run, the variant that lacks the extension must pass.
    if (name === 'no-card-authentication') {
      const ran = run!.report.checks.filter((c) => c.id in NOT_FOR_THE_CORRECT_SERVER).map((c) => `${c.id}: ${c.status}`);
      expect(ran).toEqual(Object.keys(NOT_FOR_THE_CORRECT_SERVER).map((id) => `${id}: passed`));
    }
    const unexpected = run!.report.checks.filter((c) => run!.unexpected.includes(c.id)).map((c) => `${c.id}: ${detailOf(c)}`);
    expect(unexpected).toEqual([]);
    expect(run!.missing).toEqual([]);
  });
});

describe('the conformance suite against each broken server', () => {
  it.each(NAMES)('fails %s through the checks that name the broken rule', (name) => {
    const run = proof.breaks.get(name);
    expect(run, `no run for ${name}`).toBeDefined();
    expect(run!.missing).toEqual([]);
  });
});

describe('the coverage of the check registry', () => {
  const ids = new Set(listChecks().map((c) => c.id));

  it('has, for every check, a break that fails it or a reason in UNBREAKABLE', () => {
    const broken = new Set<string>(Object.values(BREAKS).flatMap((info) => info.checks));
    const uncovered = [...ids].filter((id) => !broken.has(id) && !(id in UNBREAKABLE));
    expect(uncovered).toEqual([]);
  });

  it('names only check ids the suite defines', () => {
    const named = [
      ...Object.values(BREAKS).flatMap((info) => [...info.checks, ...('alsoRun' in info ? info.alsoRun : [])]),
      ...Object.values(VARIANTS).flatMap((info) => info.failsOnly),
      ...Object.keys(UNBREAKABLE),
    ];
    expect(named.filter((id) => !ids.has(id))).toEqual([]);
  });

  it('lists as unbreakable only checks that no break fails', () => {
    const failedSomewhere = new Set([...proof.breaks.values()].flatMap((run) => run.failed));
    expect(Object.keys(UNBREAKABLE).filter((id) => failedSomewhere.has(id))).toEqual([]);
  });
});
