/**
 * The ledger contract (spec section 11), run against every store on real
 * services: PGlite in memory, PostgreSQL on 127.0.0.1:5432 in a schema of its
 * own, Redis on 127.0.0.1:6379 under a key prefix of its own, and a Redis
 * Cluster of three primaries and three replicas started on free loopback
 * ports for this file. "Two ledgers" stand for two server processes sharing
 * one store. Outages are real too: a
 * closed port, or a TCP proxy in front of the real service that the test
 * cuts.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LedgerUnavailableError,
  MAX_BALANCE,
  TopUpLockTimeoutError,
  openLedger,
  openSqlLedger,
  type Account,
  type Ledger,
  type LedgerOptions,
} from './index.ts';
import { reachablePostgresUrl } from '../test-helpers.ts';
import { startRedisCluster, type RedisCluster } from '../../../test/scale/redis-cluster.ts';
import { accountKeys, parseClusterUrl, paymentIntentOwnerKey } from './redis.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const runTag = `ledger_test_${randomBytes(4).toString('hex')}`;


interface Backend {
  name: 'pglite' | 'postgres' | 'redis' | 'redis-cluster';
  setUp(): Promise<void>;
  /** Opens a ledger on this backend's store; every ledger opened shares the same data. */
  open(options?: LedgerOptions): Promise<Ledger>;
  tearDown(): Promise<void>;
}

function pgliteBackend(): Backend {
  let db: PGlite | undefined;
  return {
    name: 'pglite',
    setUp: async () => {
      db = new PGlite();
      await db.waitReady;
    },
    open: (options = {}) => openSqlLedger({ pgliteInstance: db! }, options),
    tearDown: async () => db?.close(),
  };
}

function postgresBackend(): Backend {
  let url = '';
  return {
    name: 'postgres',
    setUp: async () => {
      url = await reachablePostgresUrl();
    },
    open: (options = {}) => openLedger(url, { ...options, schema: runTag }),
    tearDown: async () => {
      const client = new pg.Client(url);
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${runTag}" CASCADE`);
      await client.end();
    },
  };
}

async function deleteRedisKeys(pattern: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

function redisBackend(): Backend {
  const keyPrefix = `${runTag}:`;
  return {
    name: 'redis',
    setUp: async () => undefined,
    open: (options = {}) => openLedger(REDIS_URL, { ...options, keyPrefix }),
    tearDown: () => deleteRedisKeys(`${keyPrefix}*`),
  };
}

function redisClusterBackend(): Backend {
  let cluster: RedisCluster | undefined;
  return {
    name: 'redis-cluster',
    setUp: async () => {
      cluster = await startRedisCluster();
    },
    open: (options = {}) => openLedger(cluster!.url, { ...options, keyPrefix: `${runTag}:` }),
    tearDown: async () => cluster?.dispose(),
  };
}

/** A fresh account per test, so tests sharing one store never see each other's data. */
function freshAccount(currency = 'usd'): Account {
  return { clientId: randomBytes(32).toString('hex'), currency };
}

let paymentIntentCounter = 0;
const freshPaymentIntent = (): string => `pi_${runTag}_${++paymentIntentCounter}`;

const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);

/** A TCP proxy to a real service, which a test can cut to simulate the service going away. */
async function startProxy(targetPort: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    cut: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

async function expectUnavailableQuickly(operation: () => Promise<unknown>): Promise<LedgerUnavailableError> {
  const started = Date.now();
  const error = await operation().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(Date.now() - started).toBeLessThan(3_000);
  expect(error).toBeInstanceOf(LedgerUnavailableError);
  const unavailable = error as LedgerUnavailableError;
  // The driver's text stays in `cause`, for logs; the message is ours.
  expect(unavailable.message).toBe('the ledger is unavailable');
  expect(unavailable.cause).toBeDefined();
  return unavailable;
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const PGLITE_START_TIMEOUT_MS = 180_000;

describe.each([pgliteBackend(), postgresBackend(), redisBackend(), redisClusterBackend()])('the $name ledger', (backend) => {
  const opened: Ledger[] = [];
  let ledger: Ledger;

  async function open(options?: LedgerOptions): Promise<Ledger> {
    const instance = await backend.open(options);
    opened.push(instance);
    return instance;
  }

  async function funded(units: number, account = freshAccount(), on = ledger): Promise<Account> {
    const result = await on.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units, chargedMinor: 1 });
    expect(result).toEqual({ credited: true, spent: false, balance: units });
    return account;
  }

  // Starting PGlite runs initdb in WebAssembly: seconds, or tens of seconds on a busy machine.
  beforeAll(async () => {
    await backend.setUp();
    ledger = await open();
  }, PGLITE_START_TIMEOUT_MS);

  afterEach(async () => {
    // Every test's extra ledgers close; the main one stays for the next test.
    await Promise.all(opened.splice(1).map((extra) => extra.close()));
  });

  afterAll(async () => {
    await Promise.all(opened.map((instance) => instance.close()));
    await backend.tearDown();
  });

  it('fails a spend on an unknown account and reports a balance of 0', async () => {
    const account = freshAccount();
    expect(await ledger.spend({ ...account, amount: 1, route: 'GET /joke' })).toEqual({ ok: false, balance: 0 });
    expect(await ledger.balance(account)).toBe(0);
    expect(await ledger.journal(account)).toEqual([]);
  });

  it('credits a top-up and lets later spends deduct from it', async () => {
    const account = await funded(100);
    expect(await ledger.spend({ ...account, amount: 30, route: 'GET /joke' })).toEqual({ ok: true, balance: 70 });
    expect(await ledger.spend({ ...account, amount: 80, route: 'GET /joke' })).toEqual({ ok: false, balance: 70 });
    expect(await ledger.spend({ ...account, amount: 70, route: 'GET /joke' })).toEqual({ ok: true, balance: 0 });
    expect(await ledger.balance(account)).toBe(0);
  });

  it("spends the request's price in the same transaction as the credit", async () => {
    const account = freshAccount();
    const paymentIntentId = freshPaymentIntent();
    const result = await ledger.creditTopUp({
      ...account,
      paymentIntentId,
      units: 50_000,
      chargedMinor: 500,
      spend: { amount: 100, route: 'GET /joke' },
    });
    expect(result).toEqual({ credited: true, spent: true, balance: 49_900 });
    const journal = await ledger.journal(account);
    expect(journal.map(({ kind, delta, count, route, paymentIntentId: pi, chargedMinor }) => ({ kind, delta, count, route, pi, chargedMinor }))).toEqual([
      { kind: 'topup', delta: 50_000, count: 1, route: undefined, pi: paymentIntentId, chargedMinor: 500 },
      { kind: 'spend', delta: -100, count: 1, route: 'GET /joke', pi: undefined, chargedMinor: undefined },
    ]);
    expect(journal.every((entry) => entry.createdAt instanceof Date && !Number.isNaN(entry.createdAt.getTime()))).toBe(true);
  });

  it('credits but does not spend when the credit cannot cover the price', async () => {
    const account = freshAccount();
    const result = await ledger.creditTopUp({
      ...account,
      paymentIntentId: freshPaymentIntent(),
      units: 10,
      chargedMinor: 1,
      spend: { amount: 11, route: 'GET /joke' },
    });
    expect(result).toEqual({ credited: true, spent: false, balance: 10 });
  });

  it('credits a PaymentIntent once even when it is credited ten times concurrently', async () => {
    const account = freshAccount();
    const paymentIntentId = freshPaymentIntent();
    expect(await ledger.isCredited(paymentIntentId)).toBe(false);
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        ledger.creditTopUp({ ...account, paymentIntentId, units: 500, chargedMinor: 5, spend: { amount: 1, route: 'GET /joke' } }),
      ),
    );
    expect(results.filter((result) => result.credited)).toEqual([{ credited: true, spent: true, balance: 499 }]);
    expect(results.filter((result) => !result.credited).every((result) => !result.spent)).toBe(true);
    expect(await ledger.balance(account)).toBe(499);
    expect(await ledger.isCredited(paymentIntentId)).toBe(true);
    expect((await ledger.journal(account)).filter((entry) => entry.kind === 'topup')).toHaveLength(1);
  });

  it('never credits a PaymentIntent again, even for another account', async () => {
    const paymentIntentId = freshPaymentIntent();
    const first = freshAccount();
    const second = freshAccount();
    await ledger.creditTopUp({ ...first, paymentIntentId, units: 20, chargedMinor: 1 });
    const retried = await ledger.creditTopUp({ ...second, paymentIntentId, units: 20, chargedMinor: 1 });
    expect(retried).toEqual({ credited: false, spent: false, balance: 0 });
    expect(await ledger.balance(second)).toBe(0);
  });

  it('serves exactly 20 of 50 concurrent spends of 1 on a balance of 20 and ends at 0', async () => {
    const account = await funded(20);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => ledger.spend({ ...account, amount: 1, route: 'GET /joke' })),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(20);
    expect(results.every((result) => result.balance >= 0)).toBe(true);
    expect(await ledger.balance(account)).toBe(0);
  });

  it('applies the spends of one batch in arrival order', async () => {
    const account = await funded(5);
    const results = await Promise.all(
      [3, 4, 2].map((amount) => ledger.spend({ ...account, amount, route: 'GET /joke' })),
    );
    expect(results).toEqual([
      { ok: true, balance: 2 },
      { ok: false, balance: 2 },
      { ok: true, balance: 0 },
    ]);
  });

  it('journals the spends of one batch as one entry per route, with their count and total', async () => {
    const account = await funded(100);
    const other = await funded(100);
    await Promise.all([
      ...Array.from({ length: 10 }, () => ledger.spend({ ...account, amount: 2, route: 'GET /joke' })),
      ...Array.from({ length: 5 }, () => ledger.spend({ ...account, amount: 1, route: 'GET /quote' })),
      ...Array.from({ length: 3 }, () => ledger.spend({ ...other, amount: 7, route: 'GET /joke' })),
    ]);
    const spends = (await ledger.journal(account)).filter((entry) => entry.kind === 'spend');
    expect(spends.map(({ route, count, delta }) => ({ route, count, delta })).sort((a, b) => a.route!.localeCompare(b.route!))).toEqual([
      { route: 'GET /joke', count: 10, delta: -20 },
      { route: 'GET /quote', count: 5, delta: -5 },
    ]);
    expect((await ledger.journal(other)).filter((entry) => entry.kind === 'spend')).toMatchObject([
      { route: 'GET /joke', count: 3, delta: -21 },
    ]);
  });

  it('keeps spending correctly without group commit', async () => {
    const unbatched = await open({ groupCommit: false });
    const account = await funded(20, freshAccount(), unbatched);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => unbatched.spend({ ...account, amount: 1, route: 'GET /joke' })),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(20);
    expect(await unbatched.spend({ ...account, amount: 1, route: 'GET /joke' })).toEqual({ ok: false, balance: 0 });
    expect(sum((await unbatched.journal(account)).map((entry) => entry.delta))).toBe(0);
  });

  it('never overdraws when two ledgers sharing one store spend concurrently', async () => {
    const other = await open();
    const account = await funded(20);
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, index) =>
        (index % 2 === 0 ? ledger : other).spend({ ...account, amount: 1, route: 'GET /joke' }),
      ),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(20);
    expect(results.every((result) => result.balance >= 0)).toBe(true);
    expect(await ledger.balance(account)).toBe(0);
    expect(await other.balance(account)).toBe(0);
    expect(sum((await other.journal(account)).map((entry) => entry.delta))).toBe(0);
  });

  it('never deadlocks or overdraws when three ledgers spend concurrently across many shared accounts', async () => {
    const ledgers = [ledger, await open(), await open()];
    const accounts = await Promise.all(Array.from({ length: 20 }, () => funded(50)));
    // Each ledger meets the accounts in its own order, round after round, so
    // concurrent batches would lock rows in conflicting orders if they could.
    const orders = [
      accounts,
      [...accounts].reverse(),
      accounts.map((_, index) => accounts[(index * 7) % accounts.length]!),
    ];
    let served = 0;
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        ledgers.flatMap((on, index) =>
          orders[index]!.map((account) => on.spend({ ...account, amount: 2, route: 'GET /joke' })),
        ),
      );
      served += results.filter((result) => result.ok).length;
    }
    expect(served).toBe(500);
    for (const account of accounts) {
      expect(await ledger.balance(account)).toBe(0);
      expect(sum((await ledger.journal(account)).map((entry) => entry.delta))).toBe(0);
    }
  });

  it('keeps every balance equal to the sum of its journal after any mix of concurrent operations', async () => {
    const other = await open();
    const operation = fc.oneof(
      fc.record({
        type: fc.constant('credit' as const),
        account: fc.nat(1),
        paymentIntent: fc.nat(3),
        units: fc.integer({ min: 1, max: 50 }),
        spend: fc.nat(10),
        viaOther: fc.boolean(),
      }),
      fc.record({
        type: fc.constant('spend' as const),
        account: fc.nat(1),
        amount: fc.integer({ min: 1, max: 20 }),
        route: fc.constantFrom('GET /a', 'GET /b'),
        viaOther: fc.boolean(),
      }),
      fc.record({
        type: fc.constant('restore' as const),
        account: fc.nat(1),
        amount: fc.integer({ min: 1, max: 10 }),
        viaOther: fc.boolean(),
      }),
    );
    // Operations in one group run concurrently; groups run one after another.
    const groups = fc.array(fc.array(operation, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 });

    await fc.assert(
      fc.asyncProperty(groups, async (plan) => {
        const accounts = [freshAccount('usd'), freshAccount('eur')];
        const paymentIntents = Array.from({ length: 4 }, freshPaymentIntent);
        const expected = accounts.map(() => ({ balance: 0, spends: 0, spent: 0 }));
        let creditedIntents = 0;
        for (const group of plan) {
          await Promise.all(
            group.map(async (op) => {
              const on = op.viaOther ? other : ledger;
              const account = accounts[op.account]!;
              const tally = expected[op.account]!;
              if (op.type === 'credit') {
                const result = await on.creditTopUp({
                  ...account,
                  paymentIntentId: paymentIntents[op.paymentIntent]!,
                  units: op.units,
                  chargedMinor: op.units,
                  ...(op.spend > 0 ? { spend: { amount: op.spend, route: 'GET /a' } } : {}),
                });
                expect(result.balance).toBeGreaterThanOrEqual(0);
                if (result.credited) {
                  creditedIntents++;
                  tally.balance += op.units;
                }
                if (result.spent) {
                  tally.balance -= op.spend;
                  tally.spends++;
                  tally.spent += op.spend;
                }
              } else if (op.type === 'spend') {
                const result = await on.spend({ ...account, amount: op.amount, route: op.route });
                expect(result.balance).toBeGreaterThanOrEqual(0);
                if (result.ok) {
                  tally.balance -= op.amount;
                  tally.spends++;
                  tally.spent += op.amount;
                }
              } else {
                const result = await on.restore({ ...account, amount: op.amount, route: 'GET /a', restoreId: randomUUID() });
                expect(result.balance).toBeGreaterThanOrEqual(op.amount);
                tally.balance += op.amount;
              }
            }),
          );
        }
        const attemptedIntents = new Set(plan.flat().flatMap((op) => (op.type === 'credit' ? [op.paymentIntent] : []))).size;
        expect(creditedIntents).toBe(attemptedIntents);
        for (const [index, account] of accounts.entries()) {
          const tally = expected[index]!;
          const balance = await ledger.balance(account);
          const journal = await other.journal(account);
          const spendEntries = journal.filter((entry) => entry.kind === 'spend');
          expect(balance).toBeGreaterThanOrEqual(0);
          expect(balance).toBe(tally.balance);
          expect(sum(journal.map((entry) => entry.delta))).toBe(balance);
          expect(sum(spendEntries.map((entry) => entry.count))).toBe(tally.spends);
          expect(sum(spendEntries.map((entry) => -entry.delta))).toBe(tally.spent);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('records a keyed top-up once: the first record wins, and its PaymentIntent is set once', async () => {
    const account = freshAccount();
    const key = `key-${freshPaymentIntent()}`;
    const topUp = { ...account, idempotencyKey: key, stripeIdempotencyKey: `stripe402:${account.clientId}:${key}`, units: 50_000 };
    const first = await ledger.beginKeyedTopUp(topUp);
    expect(first).toMatchObject({ created: true, predatesRecords: false, record: { ...topUp, paymentIntentId: null } });
    // The same key for another amount: the earlier record holds, unchanged.
    const again = await ledger.beginKeyedTopUp({ ...topUp, units: 70_000, stripeIdempotencyKey: 'other' });
    expect(again).toMatchObject({ created: false, record: { ...topUp, paymentIntentId: null } });
    expect(again.record.recordedAt.getTime()).toBe(first.record.recordedAt.getTime());
    const paymentIntentId = freshPaymentIntent();
    await ledger.keyedTopUpCharged(account, key, paymentIntentId);
    await ledger.keyedTopUpCharged(account, key, freshPaymentIntent());
    expect((await ledger.beginKeyedTopUp(topUp)).record.paymentIntentId).toBe(paymentIntentId);
    // Keys are per client id.
    const other = freshAccount();
    expect((await ledger.beginKeyedTopUp({ ...topUp, clientId: other.clientId })).created).toBe(true);
  });

  it('records a keyed top-up once when ten begin it concurrently', async () => {
    const account = freshAccount();
    const key = `key-${freshPaymentIntent()}`;
    const begun = await Promise.all(
      Array.from({ length: 10 }, (_, i) => ledger.beginKeyedTopUp({ ...account, idempotencyKey: key, stripeIdempotencyKey: `s-${i}`, units: 1 + i })),
    );
    expect(begun.filter((b) => b.created)).toHaveLength(1);
    const winner = begun.find((b) => b.created)!.record;
    for (const b of begun) expect(b.record).toEqual(winner);
  });

  it('records the Customer of a client id once', async () => {
    const { clientId } = freshAccount();
    expect(await ledger.customerOf(clientId)).toBeNull();
    await ledger.recordCustomer(clientId, 'cus_first');
    await ledger.recordCustomer(clientId, 'cus_second');
    expect(await ledger.customerOf(clientId)).toBe('cus_first');
  });

  it('restores a deduction as one journal entry', async () => {
    const account = await funded(10);
    await ledger.spend({ ...account, amount: 4, route: 'GET /joke' });
    expect(await ledger.restore({ ...account, amount: 4, route: 'GET /joke', restoreId: randomUUID() })).toEqual({ balance: 10 });
    const journal = await ledger.journal(account);
    expect(journal.at(-1)).toMatchObject({ kind: 'restore', delta: 4, count: 1, route: 'GET /joke' });
    expect(sum(journal.map((entry) => entry.delta))).toBe(10);
  });

  it('applies a restore id once, however often and however concurrently it is sent', async () => {
    const account = await funded(10);
    await ledger.spend({ ...account, amount: 4, route: 'GET /joke' });
    await ledger.spend({ ...account, amount: 3, route: 'GET /joke' });
    const first = { ...account, amount: 4, route: 'GET /joke', restoreId: randomUUID() };
    const results = await Promise.all([first, first, first].map((request) => ledger.restore(request)));
    // Every answer reports the balance with the restore applied once.
    expect(results).toEqual([{ balance: 7 }, { balance: 7 }, { balance: 7 }]);
    expect(await ledger.restore(first)).toEqual({ balance: 7 });
    // Another id is another restore.
    expect(await ledger.restore({ ...first, amount: 3, restoreId: randomUUID() })).toEqual({ balance: 10 });
    const journal = await ledger.journal(account);
    expect(journal.filter((entry) => entry.kind === 'restore').map((entry) => entry.delta)).toEqual([4, 3]);
    expect(sum(journal.map((entry) => entry.delta))).toBe(10);
  });

  it('keeps balances apart by currency', async () => {
    const usd = await funded(10, freshAccount('usd'));
    const eur = { clientId: usd.clientId, currency: 'eur' };
    expect(await ledger.spend({ ...eur, amount: 1, route: 'GET /joke' })).toEqual({ ok: false, balance: 0 });
    expect(await ledger.balance(usd)).toBe(10);
  });

  it('lists every account with its balance', async () => {
    const first = await funded(7);
    const second = await funded(9, freshAccount('jpy'));
    await ledger.spend({ ...second, amount: 9, route: 'GET /joke' });
    const accounts = await ledger.accounts();
    expect(accounts).toContainEqual({ ...first, balance: 7 });
    expect(accounts).toContainEqual({ ...second, balance: 0 });
  });

  it('admits one holder of a top-up lock at a time across two ledgers', async () => {
    const other = await open();
    const account = freshAccount();
    let inside = 0;
    let mostInside = 0;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        (index % 2 === 0 ? ledger : other).withTopUpLock(account, async () => {
          inside++;
          mostInside = Math.max(mostInside, inside);
          await sleep(15);
          inside--;
          return index;
        }),
      ),
    );
    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(mostInside).toBe(1);
  });

  it('releases a top-up lock when its holder throws', async () => {
    const account = freshAccount();
    await expect(ledger.withTopUpLock(account, async () => Promise.reject(new Error('card declined')))).rejects.toThrow(
      'card declined',
    );
    const impatient = await open({ lockWaitMs: 200 });
    expect(await impatient.withTopUpLock(account, async () => 'free again')).toBe('free again');
  });

  it('lets a top-up lock expire after its TTL, and a late holder cannot release its successor', async () => {
    const other = await open();
    const impatient = await open({ lockWaitMs: 150 });
    const account = freshAccount();
    const stuck = deferred();
    const firstInside = deferred();
    const first = ledger.withTopUpLock(
      account,
      async () => {
        firstInside.resolve();
        await stuck.promise;
      },
      300,
    );
    await firstInside.promise;
    const started = Date.now();
    await expect(impatient.withTopUpLock(account, async () => 'too early')).rejects.toBeInstanceOf(TopUpLockTimeoutError);

    const successorInside = deferred();
    const successorDone = deferred();
    const successor = other.withTopUpLock(account, async () => {
      successorInside.resolve();
      await successorDone.promise;
    });
    await successorInside.promise;
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);

    stuck.resolve(); // the first holder wakes up late and releases
    await first;
    await expect(impatient.withTopUpLock(account, async () => 'stolen')).rejects.toBeInstanceOf(TopUpLockTimeoutError);
    successorDone.resolve();
    await successor;
    expect(await impatient.withTopUpLock(account, async () => 'free')).toBe('free');
  });

  it('rejects amounts that are not safe positive integers before touching the store', async () => {
    const account = freshAccount();
    for (const amount of [1.5, 0, -1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, '5', 5n, null]) {
      await expect(ledger.spend({ ...account, amount: amount as number, route: 'GET /joke' })).rejects.toBeInstanceOf(TypeError);
      await expect(ledger.restore({ ...account, amount: amount as number, route: 'GET /joke', restoreId: randomUUID() })).rejects.toBeInstanceOf(
        TypeError,
      );
      await expect(
        ledger.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: amount as number, chargedMinor: 1 }),
      ).rejects.toBeInstanceOf(TypeError);
      await expect(
        ledger.creditTopUp({
          ...account,
          paymentIntentId: freshPaymentIntent(),
          units: 10,
          chargedMinor: 1,
          spend: { amount: amount as number, route: 'GET /joke' },
        }),
      ).rejects.toBeInstanceOf(TypeError);
    }
    await expect(
      ledger.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 10, chargedMinor: 0.5 }),
    ).rejects.toBeInstanceOf(TypeError);
    for (const restoreId of [undefined, '', 'x'.repeat(65), 7]) {
      await expect(ledger.restore({ ...account, amount: 1, route: 'GET /joke', restoreId: restoreId as string })).rejects.toBeInstanceOf(TypeError);
    }
    await expect(ledger.spend({ clientId: account.clientId, currency: 'USD', amount: 1, route: 'GET /joke' })).rejects.toBeInstanceOf(
      TypeError,
    );
    expect(await ledger.journal(account)).toEqual([]);
    expect(await ledger.balance(account)).toBe(0);
  });

  it('refuses a credit that would take a balance past 2^53-1', async () => {
    const account = await funded(MAX_BALANCE);
    await expect(
      ledger.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 1, chargedMinor: 1 }),
    ).rejects.toBeInstanceOf(RangeError);
    await expect(ledger.restore({ ...account, amount: 1, route: 'GET /joke', restoreId: randomUUID() })).rejects.toBeInstanceOf(RangeError);
    expect(await ledger.balance(account)).toBe(MAX_BALANCE);
    expect(await ledger.spend({ ...account, amount: MAX_BALANCE, route: 'GET /joke' })).toEqual({ ok: true, balance: 0 });
  });

  it('finishes queued spends on close and refuses work afterwards', async () => {
    const closing = await open();
    const account = await funded(3, freshAccount(), closing);
    const pending = [1, 1].map(() => closing.spend({ ...account, amount: 1, route: 'GET /joke' }));
    await closing.close();
    expect(await Promise.all(pending)).toEqual([
      { ok: true, balance: 2 },
      { ok: true, balance: 1 },
    ]);
    await expect(closing.spend({ ...account, amount: 1, route: 'GET /joke' })).rejects.toBeInstanceOf(LedgerUnavailableError);
    await expect(closing.balance(account)).rejects.toBeInstanceOf(LedgerUnavailableError);
  });
});

describe('opening a ledger', () => {
  it('refuses a URL of an unknown kind', async () => {
    await expect(openLedger('mysql://127.0.0.1/test')).rejects.toBeInstanceOf(TypeError);
  });

  it('keeps a PGlite data directory across restarts and migrates it once', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'stripe402-ledger-'));
    try {
      const account = freshAccount();
      const first = await openLedger(`pglite:${join(directory, 'data')}`);
      await first.creditTopUp({ ...account, paymentIntentId: 'pi_persisted', units: 42, chargedMinor: 1 });
      await first.close();
      const second = await openLedger(`pglite:${join(directory, 'data')}`);
      expect(await second.balance(account)).toBe(42);
      expect(await second.isCredited('pi_persisted')).toBe(true);
      await second.close();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }, PGLITE_START_TIMEOUT_MS);

  it('opens an in-memory PGlite ledger from pglite:memory', async () => {
    const memory = await openLedger('pglite:memory');
    const account = await (async () => {
      const fresh = freshAccount();
      await memory.creditTopUp({ ...fresh, paymentIntentId: 'pi_memory', units: 5, chargedMinor: 1 });
      return fresh;
    })();
    expect(await memory.spend({ ...account, amount: 5, route: 'GET /joke' })).toEqual({ ok: true, balance: 0 });
    await memory.close();
  }, PGLITE_START_TIMEOUT_MS);
});

describe('the PostgreSQL ledger, specifically', () => {
  let url = '';
  const schema = `${runTag}_pg`;
  let admin: pg.Client;

  beforeAll(async () => {
    url = await reachablePostgresUrl();
    admin = new pg.Client(url);
    await admin.connect();
  });

  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('records each migration once, however many processes open the schema together', async () => {
    const ledgers = await Promise.all([1, 2, 3].map(() => openLedger(url, { schema })));
    await Promise.all(ledgers.map((opened) => opened.close()));
    const { rows } = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(rows.map((row) => row.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('says which accounts predate its keyed top-up records when migrated over a journal written before them', async () => {
    const upgraded = `${schema}_upgrade`;
    try {
      const before = await openLedger(url, { schema: upgraded });
      const old = freshAccount();
      await before.creditTopUp({ ...old, paymentIntentId: freshPaymentIntent(), units: 3, chargedMinor: 1 });
      await before.close();
      // The schema as the version before keyed top-ups left it: migration 4 not applied.
      await admin.query(`DROP TABLE "${upgraded}".keyed_topups, "${upgraded}".customers, "${upgraded}".keyed_topups_since`);
      await admin.query(`DELETE FROM "${upgraded}".schema_migrations WHERE version = 4`);
      const after = await openLedger(url, { schema: upgraded });
      const fresh = freshAccount();
      await after.creditTopUp({ ...fresh, paymentIntentId: freshPaymentIntent(), units: 3, chargedMinor: 1 });
      const keyed = (account: Account) => ({ ...account, idempotencyKey: 'k1', stripeIdempotencyKey: 's1', units: 1 });
      expect((await after.beginKeyedTopUp(keyed(old))).predatesRecords).toBe(true);
      expect((await after.beginKeyedTopUp(keyed(fresh))).predatesRecords).toBe(false);
      await after.close();
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${upgraded}" CASCADE`);
    }
  });

  it('keeps the balance audit view consistent with the journal', async () => {
    const opened = await openLedger(url, { schema });
    const account = freshAccount();
    await opened.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 9, chargedMinor: 1 });
    await Promise.all([1, 2, 3].map((amount) => opened.spend({ ...account, amount, route: 'GET /joke' })));
    await opened.close();
    const { rows } = await admin.query(
      `SELECT balance::int, journal_total::int, consistent FROM "${schema}".balance_audit WHERE client_id = $1`,
      [account.clientId],
    );
    expect(rows).toEqual([{ balance: 3, journal_total: 3, consistent: true }]);
  });

  it('refuses to drive a balance below zero even in SQL written by hand', async () => {
    const opened = await openLedger(url, { schema });
    const account = await (async () => {
      const fresh = freshAccount();
      await opened.creditTopUp({ ...fresh, paymentIntentId: freshPaymentIntent(), units: 1, chargedMinor: 1 });
      return fresh;
    })();
    await opened.close();
    await expect(
      admin.query(`UPDATE "${schema}".balances SET balance = balance - 2 WHERE client_id = $1`, [account.clientId]),
    ).rejects.toThrow(/balance_within_safe_range/);
  });

  it('is unavailable, quickly, when PostgreSQL cannot be reached', async () => {
    await expectUnavailableQuickly(() =>
      openLedger(url.replace(':5432/', ':1/'), { schema, connectTimeoutMs: 1_000 }),
    );
  });

  it('is unavailable, quickly, when the connection to PostgreSQL is lost', async () => {
    const proxy = await startProxy(5432);
    const opened = await openLedger(url.replace(':5432/', `:${proxy.port}/`), { schema, connectTimeoutMs: 1_000 });
    const account = freshAccount();
    expect(await opened.spend({ ...account, amount: 1, route: 'GET /joke' })).toEqual({ ok: false, balance: 0 });
    await proxy.cut();
    await expectUnavailableQuickly(() => opened.spend({ ...account, amount: 1, route: 'GET /joke' }));
    await expectUnavailableQuickly(() => opened.balance(account));
    await opened.close();
  });
});

describe('the Redis ledger, specifically', () => {
  const keyPrefix = `${runTag}:redis:`;

  afterAll(() => deleteRedisKeys(`${keyPrefix}*`));

  it('is unavailable, quickly, when Redis cannot be reached', async () => {
    await expectUnavailableQuickly(() => openLedger('redis://127.0.0.1:1', { keyPrefix, connectTimeoutMs: 1_000 }));
  });

  it('is unavailable, quickly, when the connection to Redis is lost', async () => {
    const proxy = await startProxy(6379);
    const opened = await openLedger(`redis://127.0.0.1:${proxy.port}`, { keyPrefix, connectTimeoutMs: 1_000 });
    const account = freshAccount();
    expect(await opened.spend({ ...account, amount: 1, route: 'GET /joke' })).toEqual({ ok: false, balance: 0 });
    await proxy.cut();
    await expectUnavailableQuickly(() => opened.spend({ ...account, amount: 1, route: 'GET /joke' }));
    await expectUnavailableQuickly(() =>
      opened.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 1, chargedMinor: 1 }),
    );
    await opened.close();
  });

  it('keeps its keys under the configured prefix', async () => {
    const opened = await openLedger(REDIS_URL, { keyPrefix });
    const account = freshAccount();
    const paymentIntentId = freshPaymentIntent();
    await opened.creditTopUp({ ...account, paymentIntentId, units: 3, chargedMinor: 1 });
    await opened.spend({ ...account, amount: 1, route: 'GET /joke' });
    await opened.close();
    const redis = new Redis(REDIS_URL);
    const keys = (await redis.keys(`${keyPrefix}*`)).sort();
    await redis.quit();
    const expected = accountKeys(keyPrefix, account);
    expect(keys).toEqual([expected.balance, expected.credits, expected.journal, paymentIntentOwnerKey(keyPrefix, paymentIntentId), `${keyPrefix}keyed-topups-since`].sort());
  });

  it('says which accounts predate its keyed top-up records when opened over balances written before them', async () => {
    const upgraded = `${keyPrefix}upgrade:`;
    const before = await openLedger(REDIS_URL, { keyPrefix: upgraded });
    const old = freshAccount();
    await before.creditTopUp({ ...old, paymentIntentId: freshPaymentIntent(), units: 3, chargedMinor: 1 });
    await before.close();
    // The ledger as a version without keyed top-ups left it: no record of since when they are kept.
    const redis = new Redis(REDIS_URL);
    await redis.del(`${upgraded}keyed-topups-since`);
    await redis.quit();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after = await openLedger(REDIS_URL, { keyPrefix: upgraded });
    const fresh = freshAccount();
    await after.creditTopUp({ ...fresh, paymentIntentId: freshPaymentIntent(), units: 3, chargedMinor: 1 });
    const keyed = (account: Account) => ({ ...account, idempotencyKey: 'k1', stripeIdempotencyKey: 's1', units: 1 });
    expect((await after.beginKeyedTopUp(keyed(old))).predatesRecords).toBe(true);
    expect((await after.beginKeyedTopUp(keyed(fresh))).predatesRecords).toBe(false);
    await after.close();
  });
});

describe('the Redis ledger on a cluster, specifically', () => {
  let cluster: RedisCluster;
  const keyPrefix = `${runTag}:cluster:`;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  });

  afterAll(async () => cluster?.dispose());

  it("spreads accounts over every primary, each account's keys in one slot", async () => {
    const opened = await openLedger(cluster.url, { keyPrefix });
    const accounts = Array.from({ length: 24 }, () => freshAccount());
    await Promise.all(accounts.map((account) => opened.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 5, chargedMinor: 1 })));
    await Promise.all(accounts.map((account) => opened.spend({ ...account, amount: 2, route: 'GET /joke' })));
    await opened.close();
    const holders = new Set<number>();
    for (const account of accounts) {
      const keys = accountKeys(keyPrefix, account);
      const slots = new Set(
        await Promise.all([keys.balance, keys.journal, keys.credits].map(async (key) => {
          const probe = new Redis(cluster.nodes[0]!.port, '127.0.0.1');
          try {
            return Number(await probe.call('CLUSTER', 'KEYSLOT', key));
          } finally {
            probe.disconnect();
          }
        })),
      );
      expect(slots.size).toBe(1);
      holders.add(await cluster.primaryOf([...slots][0]!));
    }
    expect(holders.size).toBe(3);
  });

  it('acknowledges a credit only once a replica holds it, and its retry credits once', async () => {
    const account = freshAccount();
    const paymentIntentId = freshPaymentIntent();
    // Each primary has one replica: waiting for two can never be satisfied.
    const demanding = await openLedger(cluster.url, { keyPrefix, creditReplicas: 2, replicaWaitMs: 200 });
    await expect(demanding.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).rejects.toBeInstanceOf(LedgerUnavailableError);
    await demanding.close();

    const opened = await openLedger(cluster.url, { keyPrefix });
    expect(await opened.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).toEqual({ credited: true, spent: false, balance: 40 });
    expect(await opened.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).toEqual({ credited: false, spent: false, balance: 40 });
    expect(await opened.isCredited(paymentIntentId)).toBe(true);
    const credit = await opened.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 2, chargedMinor: 1 });
    expect(credit).toEqual({ credited: true, spent: false, balance: 42 });
    await opened.close();

    // An acknowledged credit is on the replica already.
    const slot = await (async () => {
      const probe = new Redis(cluster.nodes[0]!.port, '127.0.0.1');
      try {
        return Number(await probe.call('CLUSTER', 'KEYSLOT', accountKeys(keyPrefix, account).balance));
      } finally {
        probe.disconnect();
      }
    })();
    const replica = new Redis(await cluster.replicaOf(await cluster.primaryOf(slot)), '127.0.0.1');
    try {
      await replica.call('READONLY');
      expect(await replica.get(accountKeys(keyPrefix, account).balance)).toBe('42');
    } finally {
      replica.disconnect();
    }
  });

  it('acknowledges a credit, restore or charged key that another connection wrote only once a replica holds it', async () => {
    // WAIT counts replicas up to this connection's own last write: a claim
    // that finds the work done by another connection (the webhook on another
    // process) must not be acknowledged while that write is on the primary only.
    const account = freshAccount();
    const paymentIntentId = freshPaymentIntent();
    const restore = { ...account, amount: 3, route: 'GET /joke', restoreId: randomUUID() };
    const idempotencyKey = randomUUID();
    const writer = await openLedger(cluster.url, { keyPrefix, creditReplicas: 0 });
    const confirmer = await openLedger(cluster.url, { keyPrefix, creditReplicas: 1, replicaWaitMs: 150 });
    const roles = await Promise.all(
      cluster.nodes.map(async (node) => {
        const probe = new Redis(node.port, '127.0.0.1');
        try {
          return (await probe.role())[0];
        } finally {
          probe.disconnect();
        }
      }),
    );
    const stopped = cluster.nodes.filter((_, i) => roles[i] === 'slave').map((node) => node.process);
    expect(stopped).toHaveLength(3);
    for (const replica of stopped) replica.kill('SIGSTOP');
    try {
      expect(await writer.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).toEqual({ credited: true, spent: false, balance: 40 });
      await expect(confirmer.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).rejects.toBeInstanceOf(LedgerUnavailableError);
      expect(await writer.restore(restore)).toEqual({ balance: 43 });
      await expect(confirmer.restore(restore)).rejects.toBeInstanceOf(LedgerUnavailableError);
      await writer.keyedTopUpCharged(account, idempotencyKey, paymentIntentId);
      await expect(confirmer.keyedTopUpCharged(account, idempotencyKey, paymentIntentId)).rejects.toBeInstanceOf(LedgerUnavailableError);
    } finally {
      for (const replica of stopped) replica.kill('SIGCONT');
    }
    // Once the replicas hold it (the default wait, so a replica just resumed has time to catch up), the same claims are acknowledged, and change nothing.
    const patient = await openLedger(cluster.url, { keyPrefix, creditReplicas: 1 });
    expect(await patient.creditTopUp({ ...account, paymentIntentId, units: 40, chargedMinor: 1 })).toEqual({ credited: false, spent: false, balance: 43 });
    expect(await patient.restore(restore)).toEqual({ balance: 43 });
    await patient.keyedTopUpCharged(account, idempotencyKey, paymentIntentId);
    expect(await patient.journal(account)).toHaveLength(2);
    await Promise.all([writer.close(), confirmer.close(), patient.close()]);
  });

  it('answers spends only once a replica holds them when spendReplicas asks it', async () => {
    const account = freshAccount();
    const waiting = await openLedger(cluster.url, { keyPrefix, spendReplicas: 1 });
    await waiting.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 10, chargedMinor: 1 });
    const results = await Promise.all(Array.from({ length: 12 }, () => waiting.spend({ ...account, amount: 1, route: 'GET /joke' })));
    expect(results.filter((result) => result.ok)).toHaveLength(10);
    await waiting.close();
    const demanding = await openLedger(cluster.url, { keyPrefix, creditReplicas: 1, spendReplicas: 2, replicaWaitMs: 200 });
    await demanding.creditTopUp({ ...account, paymentIntentId: freshPaymentIntent(), units: 1, chargedMinor: 1 });
    await expect(demanding.spend({ ...account, amount: 1, route: 'GET /joke' })).rejects.toBeInstanceOf(LedgerUnavailableError);
    await demanding.close();
  });

  it('refuses a cluster URL it cannot parse and a key prefix with a hash tag', async () => {
    await expect(openLedger('redis-cluster://')).rejects.toBeInstanceOf(TypeError);
    await expect(openLedger('redis-cluster://127.0.0.1:99999')).rejects.toBeInstanceOf(TypeError);
    await expect(openLedger(cluster.url, { keyPrefix: 'app{x}:' })).rejects.toBeInstanceOf(TypeError);
    expect(parseClusterUrl('redis-cluster://app:p%40ss@10.0.0.1:7000,redis-b:7001')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
      ],
      username: 'app',
      password: 'p@ss',
    });
  });

  it('is unavailable, quickly, when no node of the cluster can be reached', async () => {
    await expectUnavailableQuickly(() => openLedger('redis-cluster://127.0.0.1:1,127.0.0.1:2', { keyPrefix, connectTimeoutMs: 1_000 }));
  });
});

describe('a Redis ledger written in the first key layout (one balances hash, one credits hash)', () => {
  const keyPrefix = `${runTag}:v1:`;

  afterAll(() => deleteRedisKeys(`${keyPrefix}*`));

  /** Writes what the first layout's scripts wrote: a balance field, a credit record and journal entries per account. */
  async function writeFirstLayout(redis: Redis, account: Account, journal: Array<Record<string, unknown>>, credits: string[]): Promise<number> {
    const field = `${account.currency}:${account.clientId}`;
    const balance = sum(journal.map((entry) => entry.delta as number));
    await redis.hset(`${keyPrefix}balances`, field, String(balance));
    await redis.rpush(`${keyPrefix}journal:${field}`, ...journal.map((entry) => JSON.stringify(entry)));
    for (const paymentIntentId of credits) {
      await redis.hset(`${keyPrefix}credits`, paymentIntentId, JSON.stringify({ account: field, units: 100, chargedMinor: 1, at: 1_700_000_000_000 }));
    }
    return balance;
  }

  it('keeps every balance, journal and credit when an upgraded server opens it, and can be opened again', async () => {
    const redis = new Redis(REDIS_URL);
    const accounts = Array.from({ length: 30 }, (_, index) => freshAccount(index % 3 === 0 ? 'eur' : 'usd'));
    const expected = new Map<string, { balance: number; entries: number; credits: string[] }>();
    try {
      for (const [index, account] of accounts.entries()) {
        const credits = [freshPaymentIntent(), freshPaymentIntent()];
        const journal = [
          { kind: 'topup', delta: 100, count: 1, at: 1_700_000_000_000, paymentIntentId: credits[0], chargedMinor: 1 },
          { kind: 'topup', delta: 100, count: 1, at: 1_700_000_000_001, paymentIntentId: credits[1], chargedMinor: 1 },
          { kind: 'spend', delta: -(index + 1), count: index + 1, at: 1_700_000_000_002, route: 'GET /joke' },
          { kind: 'restore', delta: 1, count: 1, at: 1_700_000_000_003, route: 'GET /joke' },
        ];
        expected.set(account.clientId + account.currency, { balance: await writeFirstLayout(redis, account, journal, credits), entries: journal.length, credits });
      }
    } finally {
      await redis.quit();
    }

    // Two servers upgrading at once: each migrates what the other has not.
    const [first, second] = await Promise.all([openLedger(REDIS_URL, { keyPrefix }), openLedger(REDIS_URL, { keyPrefix })]);
    try {
      for (const account of accounts) {
        const { balance, entries, credits } = expected.get(account.clientId + account.currency)!;
        expect(await first.balance(account)).toBe(balance);
        const journal = await second.journal(account);
        expect(journal).toHaveLength(entries);
        expect(sum(journal.map((entry) => entry.delta))).toBe(balance);
        expect(journal[0]).toMatchObject({ kind: 'topup', paymentIntentId: credits[0], chargedMinor: 1 });
        for (const paymentIntentId of credits) {
          expect(await first.isCredited(paymentIntentId)).toBe(true);
          // Migrated credits still credit once, ever, for any account.
          expect(await second.creditTopUp({ ...account, paymentIntentId, units: 100, chargedMinor: 1 })).toMatchObject({ credited: false });
          expect(await second.creditTopUp({ ...freshAccount(), paymentIntentId, units: 100, chargedMinor: 1 })).toMatchObject({ credited: false, balance: 0 });
        }
        expect(await first.spend({ ...account, amount: balance, route: 'GET /joke' })).toEqual({ ok: true, balance: 0 });
      }
      const listed = await first.accounts();
      for (const account of accounts) expect(listed).toContainEqual({ ...account, balance: 0 });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }

    const check = new Redis(REDIS_URL);
    try {
      expect(await check.exists(`${keyPrefix}balances`, `${keyPrefix}credits`)).toBe(0);
      expect(await check.keys(`${keyPrefix}journal:*`)).toEqual([]);
    } finally {
      await check.quit();
    }
    const reopened = await openLedger(REDIS_URL, { keyPrefix });
    expect(await reopened.balance(accounts[0]!)).toBe(0);
    await reopened.close();
  });
});
