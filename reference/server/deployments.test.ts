/**
 * Several deployments on one Stripe account (LEDG-9), on each real ledger:
 * two servers with different secrets share one emulator, and a top-up paid
 * to one never becomes credit on the other, neither through the webhook
 * (every endpoint of an account receives every event) nor through
 * reconcile; each still recovers its own. PaymentIntents from before
 * deployment ids are credited only by `reconcile --include-unlabelled`.
 * The `stripe402 reconcile` command itself is run once, on PostgreSQL.
 * Every PaymentIntent the emulator holds is counted: none charged twice,
 * none left uncredited in the ledger of the deployment that made it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { openLedger } from './ledger/index.ts';
import { reconcile } from './recovery.ts';
import type { RunningServer } from 'stripe402';
import {
  eventually,
  FaultInjectingLedger,
  LEDGER_KINDS,
  openTestLedger,
  paymentIntentsOf,
  reachablePostgresUrl,
  request,
  startTestServer,
  type TestLedger,
} from './test-helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const V = { stripe402Version: 1 } as const;

describe.each(LEDGER_KINDS)('two deployments on one Stripe account, on the %s ledger', (kind) => {
  let emulator: Emulator;
  let storeB: TestLedger;
  let storeC: TestLedger;
  let ledgerC: FaultInjectingLedger;
  let b: RunningServer;
  let c: RunningServer;
  const webhookSecretB = `whsec_${randomBytes(16).toString('hex')}`;
  const webhookSecretC = `whsec_${randomBytes(16).toString('hex')}`;
  const since = new Date(Date.now() - 60_000);

  beforeAll(async () => {
    emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    storeB = await openTestLedger(kind);
    storeC = await openTestLedger(kind);
    ledgerC = new FaultInjectingLedger(storeC.ledger);
    b = await startTestServer(storeB.ledger, emulator, { webhookSecret: webhookSecretB });
    c = await startTestServer(ledgerC, emulator, { webhookSecret: webhookSecretC });
  });
  afterAll(async () => {
    await b?.close();
    await c?.close();
    await storeB?.dispose();
    await storeC?.dispose();
    await emulator?.close();
  });

  it('gives each deployment its own public id, written into every PaymentIntent it creates', () => {
    expect(b.deploymentId).toMatch(/^[0-9a-f]{24}$/);
    expect(c.deploymentId).toMatch(/^[0-9a-f]{24}$/);
    expect(b.deploymentId).not.toBe(c.deploymentId);
  });

  it("never lets a top-up on B become spendable on C, by C's webhook or by reconcile on C", async () => {
    // C's endpoint receives the account's events, as every endpoint of a Stripe account does.
    emulator.setWebhook({ url: `${c.url}/stripe402/webhook`, secret: webhookSecretC, retryDelaysMs: [50] });
    try {
      const paid = await request(`${b.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_visa', topUpAmount: 50_000 } });
      expect(paid.status).toBe(200);
      const clientB = paid.payment!.clientId;
      const [pi, ...more] = paymentIntentsOf(emulator, clientB);
      expect(more).toHaveLength(0);
      expect(pi!.metadata!.stripe402_deployment).toBe(b.deploymentId);
      await emulator.webhooksIdle(5_000);
      const delivered = emulator.state.events().find((e) => e.event.type === 'payment_intent.succeeded' && (e.event.data.object as { id: string }).id === pi!.id);
      expect(delivered!.deliveries.map((d) => d.status)).toEqual([200]);

      // The webhook delivery to C credited nothing.
      expect(await ledgerC.isCredited(pi!.id)).toBe(false);
      const report = await reconcile({ gateway: c.gateway, ledger: ledgerC }, { since, deploymentId: c.deploymentId });
      expect(report.credited).toEqual([]);
      expect(await ledgerC.isCredited(pi!.id)).toBe(false);
      expect(await ledgerC.balance({ clientId: clientB, currency: 'usd' })).toBe(0);
      expect(report.otherDeployments).toBeGreaterThanOrEqual(1);
      const spendOnC = await request(`${c.url}/api/joke`, { payment: { ...V, clientId: clientB } });
      expect(spendOnC.status).toBe(402);
      expect(spendOnC.payment).toMatchObject({ success: false, errorCode: 'insufficient_credits', creditsRemaining: 0 });
      // B itself credited its top-up, once.
      expect(await storeB.ledger.isCredited(pi!.id)).toBe(true);
      expect(await storeB.ledger.balance({ clientId: clientB, currency: 'usd' })).toBe(40_000);
    } finally {
      emulator.setWebhook(undefined);
    }
  });

  it("still credits C's own top-up whose credit failed, by C's webhook, and not on B by reconcile", async () => {
    emulator.setWebhook({ url: `${c.url}/stripe402/webhook`, secret: webhookSecretC, retryDelaysMs: [50, 100, 200] });
    try {
      // Only the engine's credit (which also spends) fails; the webhook's goes through.
      const inner = ledgerC.creditTopUp.bind(ledgerC);
      let failed = false;
      ledgerC.creditTopUp = async (credit) => {
        if (credit.spend && !failed) {
          failed = true;
          ledgerC.failCreditTopUps = 1;
        }
        return inner(credit);
      };
      const lost = await request(`${c.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_mastercard', topUpAmount: 50_000 } });
      delete (ledgerC as { creditTopUp?: unknown }).creditTopUp;
      expect(lost.status).toBe(503);
      const pis = emulator.state.paymentIntents().filter((pi) => pi.metadata?.stripe402_deployment === c.deploymentId);
      expect(pis).toHaveLength(1);
      const clientC = pis[0]!.metadata!.stripe402_client_id!;
      await eventually(() => ledgerC.isCredited(pis[0]!.id));
      expect(await ledgerC.balance({ clientId: clientC, currency: 'usd' })).toBe(50_000);

      const onB = await reconcile({ gateway: b.gateway, ledger: storeB.ledger }, { since, deploymentId: b.deploymentId });
      expect(onB.credited).toEqual([]);
      expect(await storeB.ledger.isCredited(pis[0]!.id)).toBe(false);
    } finally {
      emulator.setWebhook(undefined);
    }
  });

  it('credits a PaymentIntent that names no deployment only through reconcile --include-unlabelled', async () => {
    const clientId = randomBytes(32).toString('hex');
    const legacy = await emulator.stripe().paymentIntents.create({
      amount: 500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      metadata: { stripe402_client_id: clientId, stripe402_units: '50000', stripe402_currency: 'usd' },
    });
    emulator.setWebhook({ url: `${c.url}/stripe402/webhook`, secret: webhookSecretC, retryDelaysMs: [50] });
    try {
      const event = emulator.state.events().find((e) => e.event.type === 'payment_intent.succeeded' && (e.event.data.object as { id: string }).id === legacy.id);
      const resent = await fetch(`${emulator.url}/_emulator/events/${event!.event.id}/resend`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      expect(resent.status).toBe(200);
      expect(await ledgerC.isCredited(legacy.id)).toBe(false);
    } finally {
      emulator.setWebhook(undefined);
    }
    const plain = await reconcile({ gateway: c.gateway, ledger: ledgerC }, { since, deploymentId: c.deploymentId });
    expect(plain.credited).toEqual([]);
    expect(plain.ignored).toContainEqual({ paymentIntentId: legacy.id, reason: expect.stringMatching(/names no deployment/) });
    expect(await ledgerC.isCredited(legacy.id)).toBe(false);

    const opted = await reconcile({ gateway: c.gateway, ledger: ledgerC }, { since, deploymentId: c.deploymentId, includeUnlabelled: true });
    expect(opted.credited).toEqual([legacy.id]);
    expect(await ledgerC.balance({ clientId, currency: 'usd' })).toBe(50_000);
    const twice = await reconcile({ gateway: c.gateway, ledger: ledgerC }, { since, deploymentId: c.deploymentId, includeUnlabelled: true });
    expect(twice.credited).toEqual([]);
  });

  it('leaves no PaymentIntent charged twice or uncredited by the deployment that made it', async () => {
    const pis = emulator.state.paymentIntents().filter((pi) => pi.status === 'succeeded');
    expect(pis.length).toBe(3);
    for (const pi of pis) {
      const owner = pi.metadata!.stripe402_deployment === b.deploymentId ? storeB.ledger : ledgerC;
      expect(await owner.isCredited(pi.id)).toBe(true);
    }
    const byClient = new Map<string, number>();
    for (const pi of pis) byClient.set(pi.metadata!.stripe402_client_id!, (byClient.get(pi.metadata!.stripe402_client_id!) ?? 0) + 1);
    expect([...byClient.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('stripe402 reconcile, the command, with two deployments on one account', () => {
  it('credits the lost top-up of its own deployment and leaves the other deployment\'s alone', async () => {
    const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
    const postgres = await reachablePostgresUrl();
    const schema = `s402_deploy_${process.pid}_${randomBytes(4).toString('hex')}`;
    const ledgerC = new FaultInjectingLedger(await openLedger(postgres, { schema }));
    const ledgerB = await openLedger('pglite:memory');
    const b = await startTestServer(ledgerB, emulator);
    const c = await startTestServer(ledgerC, emulator);
    try {
      const onB = await request(`${b.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_visa', topUpAmount: 50_000 } });
      expect(onB.status).toBe(200);
      ledgerC.failCreditTopUps = 1;
      const lost = await request(`${c.url}/api/joke`, { payment: { ...V, paymentMethodId: 'pm_card_amex', topUpAmount: 50_000 } });
      expect(lost.status).toBe(503);
      const [piB] = paymentIntentsOf(emulator, onB.payment!.clientId);
      const [piC, ...more] = emulator.state.paymentIntents().filter((pi) => pi.metadata?.stripe402_deployment === c.deploymentId);
      expect(more).toHaveLength(0);
      expect(await ledgerC.isCredited(piC!.id)).toBe(false);

      const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [path.join(ROOT, 'bin/stripe402.js'), 'reconcile', '--ledger', postgres, '--ledger-schema', schema, '--stripe-url', emulator.url, '--deployment', c.deploymentId, '--since', '1h', '--json'],
          { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let stdout = '';
        child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
        child.on('exit', (code) => resolve({ code, stdout }));
      });
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout) as { deploymentId: string; credited: string[]; otherDeployments: number };
      expect(report).toMatchObject({ deploymentId: c.deploymentId, credited: [piC!.id] });
      expect(report.otherDeployments).toBeGreaterThanOrEqual(1);
      expect(await ledgerC.isCredited(piC!.id)).toBe(true);
      expect(await ledgerC.isCredited(piB!.id)).toBe(false);
      expect(await ledgerC.balance({ clientId: piC!.metadata!.stripe402_client_id!, currency: 'usd' })).toBe(50_000);
      expect(await ledgerC.balance({ clientId: onB.payment!.clientId, currency: 'usd' })).toBe(0);
      // Every charge credited once, each by its own deployment.
      expect(emulator.state.paymentIntents().filter((pi) => pi.status === 'succeeded')).toHaveLength(2);
      expect(await ledgerB.isCredited(piB!.id)).toBe(true);
    } finally {
      await b.close();
      await c.close();
      await ledgerB.close();
      await ledgerC.close();
      await emulator.close();
      const client = new pg.Client({ connectionString: postgres });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });
});
