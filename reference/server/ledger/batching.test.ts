/**
 * The throughput changes to group commit, held to the ledger's guarantees:
 * several batches in flight at once, spend batches that PGlite receives as
 * SQL literals (quotes and backslashes in the text must survive, a NUL is
 * refused for its own spend only), and Redis batches that name accounts by
 * their journal keys under a key prefix with multi-byte characters. Every
 * test ends with balance = journal and no balance below zero.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger, openSqlLedger, type Ledger } from './index.ts';
import { deleteRedisPrefix, reachablePostgresUrl } from '../test-helpers.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const tag = `batching_test_${process.pid}_${randomBytes(4).toString('hex')}`;
const cleanUps: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanUp of cleanUps) await cleanUp().catch(() => undefined);
});


async function openKind(kind: 'pglite' | 'postgres' | 'redis', options: { maxBatchesInFlight?: number; keyPrefix?: string } = {}): Promise<Ledger> {
  if (kind === 'pglite') {
    const db = new PGlite();
    cleanUps.push(() => db.close());
    return openSqlLedger({ pgliteInstance: db }, options);
  }
  if (kind === 'postgres') {
    const url = await reachablePostgresUrl();
    const schema = `${tag}_${randomBytes(2).toString('hex')}`;
    cleanUps.push(async () => {
      const client = new pg.Client(url);
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
    return openLedger(url, { ...options, schema });
  }
  const keyPrefix = options.keyPrefix ?? `${tag}:`;
  cleanUps.push(() => deleteRedisPrefix(REDIS_URL, keyPrefix));
  return openLedger(REDIS_URL, { ...options, keyPrefix });
}

async function expectConsistent(ledger: Ledger, accounts: Array<{ clientId: string; currency: string }>): Promise<void> {
  for (const account of accounts) {
    const balance = await ledger.balance(account);
    const journal = await ledger.journal(account);
    expect(balance).toBeGreaterThanOrEqual(0);
    expect(journal.reduce((sum, entry) => sum + entry.delta, 0)).toBe(balance);
  }
}

describe.each(['pglite', 'postgres', 'redis'] as const)('group commit on %s', (kind) => {
  it('with four batches in flight, concurrent spends never overdraw and each reports its own balance', async () => {
    const ledger = await openKind(kind, { maxBatchesInFlight: 4 });
    try {
      const accounts = ['a', 'b', 'c'].map((name) => ({ clientId: `${tag}-${name}`, currency: 'usd' }));
      for (const [index, account] of accounts.entries()) {
        await ledger.creditTopUp({ ...account, paymentIntentId: `pi_${tag}_${kind}_${index}`, units: 50, chargedMinor: 1 });
      }
      // 3 accounts of 50 units, 240 spends of 1 unit arriving over several turns of the event loop.
      const results = await Promise.all(
        Array.from({ length: 240 }, async (_, index) => {
          if (index % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
          const account = accounts[index % 3]!;
          return { account, result: await ledger.spend({ ...account, amount: 1, route: 'GET /x' }) };
        }),
      );
      for (const account of accounts) {
        const mine = results.filter((r) => r.account === account);
        const served = mine.filter((r) => r.result.ok).map((r) => r.result.balance).sort((x, y) => y - x);
        expect(served).toEqual(Array.from({ length: 50 }, (_, k) => 49 - k));
        expect(mine.filter((r) => !r.result.ok).every((r) => r.result.balance === 0)).toBe(true);
        expect(await ledger.balance(account)).toBe(0);
      }
      await expectConsistent(ledger, accounts);
    } finally {
      await ledger.close();
    }
  });

  it("keeps quotes, backslashes and non-ASCII text intact in a batch, and refuses a NUL for that spend alone", async () => {
    const ledger = await openKind(kind);
    try {
      const odd = { clientId: `${tag}-o'hara\\"é€`, currency: 'usd' };
      const plain = { clientId: `${tag}-plain`, currency: 'usd' };
      await ledger.creditTopUp({ ...odd, paymentIntentId: `pi_${tag}_${kind}_odd`, units: 10, chargedMinor: 1 });
      await ledger.creditTopUp({ ...plain, paymentIntentId: `pi_${tag}_${kind}_plain`, units: 10, chargedMinor: 1 });
      const nul = { clientId: `${tag}-nul\u0000`, currency: 'usd' };
      const [first, second, withNul, third] = await Promise.allSettled([
        ledger.spend({ ...odd, amount: 3, route: "GET /it's\\here" }),
        ledger.spend({ ...plain, amount: 4, route: 'GET /plain' }),
        ledger.spend({ ...nul, amount: 1, route: 'GET /plain' }),
        ledger.spend({ ...odd, amount: 2, route: "GET /it's\\here" }),
      ]);
      expect(first).toEqual({ status: 'fulfilled', value: { ok: true, balance: 7 } });
      expect(second).toEqual({ status: 'fulfilled', value: { ok: true, balance: 6 } });
      expect(third).toEqual({ status: 'fulfilled', value: { ok: true, balance: 5 } });
      if (kind === 'redis') {
        // Redis keys are binary-safe: a NUL is just an unknown account there.
        expect(withNul).toEqual({ status: 'fulfilled', value: { ok: false, balance: 0 } });
      } else {
        expect(withNul.status).toBe('rejected');
        expect((withNul as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
      }
      const journal = await ledger.journal(odd);
      expect(journal.filter((entry) => entry.kind === 'spend').map((entry) => entry.route)).toEqual(["GET /it's\\here"]);
      await expectConsistent(ledger, [odd, plain]);
    } finally {
      await ledger.close();
    }
  });
});

describe('the Redis ledger', () => {
  it('batches spends under a key prefix with multi-byte characters', async () => {
    const ledger = await openKind('redis', { keyPrefix: `${tag}:préfixe€:` });
    try {
      const accounts = ['x', 'y'].map((name) => ({ clientId: `${tag}-${name}`, currency: 'eur' }));
      for (const [index, account] of accounts.entries()) {
        await ledger.creditTopUp({ ...account, paymentIntentId: `pi_${tag}_prefix_${index}`, units: 5, chargedMinor: 1 });
      }
      const results = await Promise.all(accounts.flatMap((account) => [1, 2, 3].map(() => ledger.spend({ ...account, amount: 2, route: 'GET /y' }))));
      expect(results.filter((r) => r.ok).length).toBe(4);
      for (const account of accounts) expect(await ledger.balance(account)).toBe(1);
      await expectConsistent(ledger, accounts);
    } finally {
      await ledger.close();
    }
  });
});
