/**
 * The reference server on real stripe-mock (Stripe's stateless mock, found
 * at ../shared/tools/stripe-mock/stripe-mock or STRIPE_MOCK_BIN; skipped
 * with a message where absent), and the conformance suite at level core
 * against it: with stripe-mock's own fixtures, on which no PaymentIntent
 * succeeds, and with the fixtures `stripe402 stripe-mock-fixtures` writes,
 * on which a top-up of minTopUp succeeds. Asserts what each run reaches,
 * lists every skip with its reason, and checks that docs/stripe-backends.md
 * shows exactly these runs (regenerate with conformance/test/stripe-mock-table.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import { openLedger, type Ledger } from '@stripe402/server/ledger';
import { startServer } from 'stripe402';
import { selectChecks } from '../runner.ts';
import { runStripeMockFixturesCli, startStripeMock, stripeMockBinary, stripeMockFixtures, type StripeMockFixtures } from '../stripe-mock.ts';
import { STRIPE_MOCK_KEY, generatedPart, renderStripeMockResults, runOnStripeMock, type StripeMockRun } from './stripe-mock-harness.ts';

const binary = stripeMockBinary();
if (!binary) {
  console.warn('stripe-mock tests skipped: no stripe-mock binary at STRIPE_MOCK_BIN or at ../shared/tools/stripe-mock/stripe-mock beside the repository');
}

const CORE = selectChecks('core').map((c) => c.id);

// One ledger for every server of this file (opening PGlite costs seconds); each test's client ids are its own.
let ledger: Ledger;
beforeAll(async () => {
  if (binary) ledger = await openLedger('pglite:memory');
}, 60_000);
afterAll(async () => {
  await ledger?.close();
});

/** The reference server on a fresh stripe-mock (with fixtures for `serverSecret` when asked), and its error log. */
async function serverOnStripeMock(serverSecret: string, fixtures: boolean) {
  const dir = mkdtempSync(path.join(tmpdir(), 'stripe402-stripe-mock-'));
  let fixturesFile: string | undefined;
  if (fixtures) {
    fixturesFile = path.join(dir, 'fixtures.json');
    writeFileSync(fixturesFile, JSON.stringify(await stripeMockFixtures({ serverSecret, currency: 'usd', units: 50_000 })));
  }
  const mock = await startStripeMock(binary!, fixturesFile);
  const errors: string[] = [];
  const server = await startServer({
    port: 0,
    ledger,
    dataDir: dir,
    stripeUrl: mock.url,
    stripeSecretKey: STRIPE_MOCK_KEY,
    stripePublishableKey: 'pk_test_stripe402stripemock',
    serverSecret,
    log: (entry) => {
      if (entry.level === 'error') errors.push(String(entry.detail));
    },
  });
  const pay = async (topUpAmount: number) => {
    const response = await fetch(`${server.url}/api/joke`, { headers: { payment: encodeHeader({ stripe402Version: 1, paymentMethodId: 'pm_card_visa', topUpAmount }) } });
    const body = await response.text();
    const decoded = decodePaymentResponseHeader(response.headers.get('payment-response') ?? '');
    return { status: response.status, body, answer: decoded.ok ? decoded.value : undefined };
  };
  return {
    server,
    errors,
    pay,
    async close() {
      await server.close();
      await mock.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!binary)('the reference server on real stripe-mock', () => {
  it('answers a top-up stripe-mock confirms with its own fixture with payment_failed, and tells its operator exactly what differs', async () => {
    const target = await serverOnStripeMock('stripe-mock mismatch test server secret, 32+ bytes', false);
    try {
      const { status, body, answer } = await target.pay(50_000);
      expect(status).toBe(402);
      expect(answer).toMatchObject({ success: false, errorCode: 'payment_failed', creditsRemaining: 0 });
      // A closed-set code and plain words: no idempotencyKey the payload never had, no Stripe field names or ids.
      expect(answer!.error).toBe('The payment service answered with a payment other than this top-up; nothing was credited.');
      expect(body).not.toMatch(/idempotencyKey|metadata|stripe402_units|pi_/);
      // The operator learns which PaymentIntent and what differs in it.
      expect(target.errors).toHaveLength(1);
      expect(target.errors[0]).toMatch(/^charge: the Stripe backend answered the top-up of 50000 units with PaymentIntent pi_\w+, which is not the one asked for: /);
      expect(target.errors[0]).toContain('metadata stripe402_client_id is absent');
      expect(target.errors[0]).toContain('metadata stripe402_units is absent, not a number of units');
      expect(await target.server.ledger.balance({ clientId: answer!.clientId, currency: 'usd' })).toBe(0);
    } finally {
      await target.close();
    }
  }, 60_000);

  it('credits a top-up of the size the generated fixtures describe, and names the metadata of a top-up of another size', async () => {
    const target = await serverOnStripeMock('stripe-mock fixtures test server secret, 32+ bytes', true);
    try {
      // stripe-mock writes the amount into its one PaymentIntent, never the metadata: a top-up of another size is not the one asked for.
      const refused = await target.pay(60_000);
      expect(refused.status).toBe(402);
      expect(refused.answer).toMatchObject({ success: false, errorCode: 'payment_failed', creditsRemaining: 0 });
      expect(target.errors).toEqual([expect.stringContaining('which is not the one asked for: metadata stripe402_units is "50000", not "60000"')]);
      const served = await target.pay(50_000);
      expect(served.status).toBe(200);
      expect(served.answer).toMatchObject({ success: true, clientId: refused.answer!.clientId, creditsRemaining: 49_900 });
      expect(served.answer!.chargeId).toMatch(/^pi_/);
      expect(target.errors).toHaveLength(1);
    } finally {
      await target.close();
    }
  }, 60_000);
});

describe.skipIf(!binary)('stripe402 stripe-mock-fixtures', () => {
  it("writes the fixtures for the target's first paid route, and refuses a run without the server secret or with two sources of the price", async () => {
    const serverSecret = 'stripe-mock command test server secret, 32+ bytes';
    const target = await serverOnStripeMock(serverSecret, false);
    const dir = mkdtempSync(path.join(tmpdir(), 'stripe402-stripe-mock-'));
    const saved = process.env.STRIPE402_SERVER_SECRET;
    try {
      process.env.STRIPE402_SERVER_SECRET = serverSecret;
      const out = path.join(dir, 'fixtures.json');
      expect(await runStripeMockFixturesCli(['--target', target.server.url, '--out', out])).toBe(0);
      const written = JSON.parse(readFileSync(out, 'utf8')) as StripeMockFixtures;
      // The discovery document's first paid GET route: /api/joke, usd, minTopUp 50000.
      const expected = await stripeMockFixtures({ serverSecret, currency: 'usd', units: 50_000, createdSeconds: written.resources.payment_intent.created as number });
      expect(written).toEqual(expected);
      await expect(runStripeMockFixturesCli(['--target', target.server.url, '--currency', 'usd'])).rejects.toMatchObject({ exitCode: 2 });
      await expect(runStripeMockFixturesCli(['--currency', 'usd'])).rejects.toMatchObject({ exitCode: 2 });
      delete process.env.STRIPE402_SERVER_SECRET;
      await expect(runStripeMockFixturesCli(['--currency', 'usd', '--top-up', '50000'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('STRIPE402_SERVER_SECRET') });
    } finally {
      if (saved === undefined) delete process.env.STRIPE402_SERVER_SECRET;
      else process.env.STRIPE402_SERVER_SECRET = saved;
      rmSync(dir, { recursive: true, force: true });
      await target.close();
    }
  }, 60_000);
});

describe.skipIf(!binary)('the conformance suite at level core on real stripe-mock', () => {
  let own: StripeMockRun;
  let generated: StripeMockRun;

  beforeAll(async () => {
    own = await runOnStripeMock(binary!, false, ledger);
    generated = await runOnStripeMock(binary!, true, ledger);
  }, 120_000);

  afterAll(() => {
    // Every skip with its reason, in the test log (the same lines as the table of docs/stripe-backends.md).
    for (const run of [own, generated]) {
      for (const check of run?.report.checks ?? []) {
        if (check.status === 'skipped') console.log(`stripe-mock ${run.fixtures ? 'generated' : 'own'} fixtures: skipped ${check.id}: ${check.reason}`);
      }
    }
  });

  it("with stripe-mock's own fixtures fails nothing, runs every check that needs no successful charge, and skips the others naming the refused payment", () => {
    const { checks, summary } = own.report;
    expect(checks.map((c) => c.id)).toEqual(CORE);
    expect(summary.failed).toBe(0);
    const skipped = checks.filter((c) => c.status === 'skipped');
    expect(skipped.length).toBeGreaterThan(0);
    for (const check of skipped) expect(check.reason, check.id).toMatch(/^paying with pm_card_\w+ was not served \(HTTP 402, payment-response \{success false, errorCode payment_failed/);
    // No PaymentIntent succeeds there, so every top-up ended in the server's own account of the mismatch, never in a credit;
    // and stripe-mock's validation refused none of the server's requests (that would log a failed call).
    expect(own.errors.length).toBeGreaterThan(0);
    for (const line of own.errors) expect(String(line.detail)).toMatch(/not the one asked for|not a match, so treated as no earlier top-up/);
  });

  it('with the generated fixtures runs and passes every core check but the one top-up of another size stripe-mock cannot confirm, which keeps core unverified', () => {
    const { checks, summary, levelReached } = generated.report;
    expect(checks.map((c) => c.id)).toEqual(CORE);
    expect(summary.failed).toBe(0);
    const skipped = checks.filter((c) => c.status === 'skipped');
    expect(skipped.map((c) => c.id)).toEqual(['5/credit-is-exactly-top-up']);
    expect(skipped[0]!.reason).toMatch(/^the Stripe backend keeps no state \(stripe-mock\): its one PaymentIntent is a top-up of one size, so a top-up of 50001 units cannot succeed there/);
    for (const check of checks) if (check.status !== 'skipped') expect(['passed', 'info'], check.id).toContain(check.status);
    // A MUST check that could not run keeps the level from being claimed (CONF-1).
    expect(levelReached).toBe('none');
    // The server said why it refused that top-up, and stripe-mock's validation refused none of its requests (that would log a failed call).
    const details = generated.errors.map((e) => String(e.detail));
    expect(details).toContainEqual(expect.stringContaining('metadata stripe402_units is "50000", not "50001"'));
    for (const line of details) expect(line).toMatch(/not the one asked for|not a match, so treated as no earlier top-up/);
  });

  it('docs/stripe-backends.md shows exactly these runs', () => {
    const doc = readFileSync(new URL('../../docs/stripe-backends.md', import.meta.url), 'utf8');
    expect(generatedPart(doc), 'regenerate with npx tsx conformance/test/stripe-mock-table.ts').toBe(renderStripeMockResults([own, generated]));
  });
});
