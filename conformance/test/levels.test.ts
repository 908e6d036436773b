/**
 * What a run claims, against the reference server: at the edge prices
 * `amount = minTopUp = maxTopUp` many checks cannot build the balances they
 * need, and the run lists them as unverified, claims no level that holds
 * one, and exits 1; `--card` adds a card to the defaults, so a check that
 * needs several cards still runs, while `--cards-only` leaves it unverified.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '@stripe402/core';
import { startServer, type RunningServer } from 'stripe402';
import { main, type CommandIO } from '../command.ts';
import { exitCodeOf, runConformance } from '../runner.ts';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { startReferenceTarget, type ReferenceTarget } from './harness.ts';

const LEVELS = ['none', 'core', 'ledger', 'extensions'] as const;

function quietIO(): CommandIO & { out: string } {
  const io = { out: '', progress: false, color: false, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.out += t) };
  return io;
}

describe('a run at the edge prices amount = minTopUp = maxTopUp', () => {
  let emulator: Emulator;
  let server: RunningServer;
  let dataDir: string;
  let report: ConformanceReport;
  const secret = 'conformance level test server secret, 32+ bytes';

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    dataDir = mkdtempSync(path.join(tmpdir(), 'stripe402-levels-'));
    const edge = { amount: 50_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 50_000, mimeType: 'application/json' };
    server = await startServer({
      port: 0,
      ledger: 'pglite:memory',
      dataDir,
      stripeUrl: emulator.url,
      stripeSecretKey: emulator.secretKey,
      stripePublishableKey: emulator.publishableKey,
      serverSecret: secret,
      log: false,
      routes: [
        { method: 'GET', path: '/api/joke', ...edge },
        { method: 'GET', path: '/api/fail', ...edge },
      ],
    });
    report = await runConformance({
      target: `${server.url}/api/joke`,
      level: 'all',
      stripeUrl: emulator.url,
      stripeKey: emulator.secretKey,
      serverSecret: secret,
      failingRoute: '/api/fail',
      seed: 15,
      runs: 5,
    });
    const failed = report.checks.filter((c) => c.status === 'failed').map((c) => c.id);
    console.log(`edge prices: ${report.unverified!.length} unverified, ${report.summary.notApplicable} not applicable, failed [${failed.join(', ')}], level reached ${report.levelReached}`);
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await emulator?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists every required check it could not run as unverified, with its reason', () => {
    expect(report.unverified!.length).toBeGreaterThan(0);
    expect(report.summary.unverified).toBe(report.unverified!.length);
    for (const id of report.unverified!) {
      const check = report.checks.find((c) => c.id === id)!;
      expect(check).toMatchObject({ status: 'skipped', skipKind: 'unverified', severity: 'must' });
      expect(check.reason).toBeTruthy();
    }
  });

  it('claims no level that holds an unverified check, and exits 1', () => {
    const reached = LEVELS.indexOf(report.levelReached);
    for (const id of report.unverified!) {
      const level = report.checks.find((c) => c.id === id)!.level;
      expect(reached, `${id} (${level}) is unverified`).toBeLessThan(LEVELS.indexOf(level));
    }
    expect(exitCodeOf(report)).toBe(1);
  });

  it('keeps a skip of a rule that does not apply apart from an unverified one', () => {
    const notApplicable = report.checks.filter((c) => c.skipKind === 'not-applicable').map((c) => c.id);
    // The route offers one currency: the rule that a balance pays in its own currency only does not bind it.
    expect(notApplicable).toContain('5/balance-belongs-to-one-currency');
    expect(notApplicable.filter((id) => report.unverified!.includes(id))).toEqual([]);
  });
});

describe('the cards of a run', () => {
  let target: ReferenceTarget;
  beforeAll(async () => {
    target = await startReferenceTarget();
  });
  afterAll(async () => {
    await target?.close();
  });
  const run = async (...cards: string[]) => {
    const io = quietIO();
    const json = path.join(mkdtempSync(path.join(tmpdir(), 'stripe402-cards-')), 'report.json');
    const code = await main(
      ['--target', `${target.url}/api/joke`, '--stripe-url', target.stripeUrl, '--stripe-key', target.stripeKey, '--level', 'ledger', '--only', '6/different-cards-different-client-ids', '--json', json, ...cards],
      io,
    );
    const { readFileSync } = await import('node:fs');
    const report = JSON.parse(readFileSync(json, 'utf8')) as ConformanceReport;
    rmSync(path.dirname(json), { recursive: true, force: true });
    return { code, check: report.checks[0]!, out: io.out };
  };

  it('adds a --card to the default cards, so a check that needs several cards still runs', async () => {
    const { code, check } = await run('--card', 'pm_card_discover');
    expect(check.status).toBe('passed');
    expect(code).toBe(0);
  }, 60_000);

  it('uses only the given cards with --cards-only, and then reports the check as unverified and exits 1', async () => {
    const { code, check, out } = await run('--cards-only', '--card', 'pm_card_discover');
    expect(check).toMatchObject({ status: 'skipped', skipKind: 'unverified' });
    expect(out).toContain('Unverified (1 required checks did not run');
    expect(code).toBe(1);
  }, 60_000);
});
