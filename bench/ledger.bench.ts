/**
 * Ledger spend throughput, with group commit against the baseline of one
 * ledger round trip per spend (one conditional UPDATE, or one EVALSHA),
 * measured in the same run on the same store for PGlite, PostgreSQL and
 * Redis. 64 concurrent async callers (like 64 in-flight paid requests) spend
 * 1 unit from 1,000 accounts. Each phase stops after 20,000 spends or 6
 * seconds, whichever comes first, so the whole run stays under a minute.
 *
 *   npx tsx bench/ledger.bench.ts [pglite|postgres|redis ...]
 */

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { PGlite } from '@electric-sql/pglite';
import { openLedger, openSqlLedger, type Ledger, type LedgerOptions } from '@stripe402/server/ledger';
import { reachablePostgresUrl } from '../reference/server/test-helpers.ts';
import { rate, runWhenScript } from './harness.ts';

const SPENDS = 20_000;
const PHASE_LIMIT_MS = 6_000;
const WORKERS = 64;
const ACCOUNTS = 1_000;
const STARTING_BALANCE = 1_000_000_000;

interface Backend {
  name: string;
  /** Opens a ledger on this backend's store; every call shares the same data. */
  open(options: LedgerOptions): Promise<Ledger>;
  cleanUp(): Promise<void>;
}


async function backends(selected: string[]): Promise<Backend[]> {
  const tag = `bench_${randomBytes(4).toString('hex')}`;
  const all: Backend[] = [];
  if (selected.includes('pglite')) {
    // One in-process database, shared by the batched and the baseline ledger.
    const db = new PGlite();
    all.push({
      name: 'pglite',
      open: (options) => openSqlLedger({ pgliteInstance: db }, options),
      cleanUp: () => db.close(),
    });
  }
  if (selected.includes('postgres')) {
    const url = await reachablePostgresUrl();
    all.push({
      name: 'postgres',
      open: (options) => openLedger(url, { ...options, schema: tag }),
      cleanUp: async () => {
        const client = new pg.Client(url);
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${tag}" CASCADE`);
        await client.end();
      },
    });
  }
  if (selected.includes('redis')) {
    const url = 'redis://127.0.0.1:6379';
    all.push({
      name: 'redis',
      open: (options) => openLedger(url, { ...options, keyPrefix: `${tag}:` }),
      cleanUp: async () => {
        const redis = new Redis(url);
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 1000);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== '0');
        await redis.quit();
      },
    });
  }
  return all;
}

const clientIds = Array.from({ length: ACCOUNTS }, (_, index) => `bench-client-${index.toString().padStart(4, '0')}`);

/** Runs spends from concurrent workers; returns how many ran, how many succeeded and the elapsed time. */
async function spendLoad(ledger: Ledger, spends: number, limitMs: number) {
  let next = 0;
  let served = 0;
  const started = performance.now();
  const deadline = started + limitMs;
  const worker = async (): Promise<void> => {
    while (next < spends && performance.now() < deadline) {
      const index = next++;
      const result = await ledger.spend({
        clientId: clientIds[index % ACCOUNTS]!,
        currency: 'usd',
        amount: 1,
        route: 'GET /bench',
      });
      if (result.ok) served++;
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return { attempted: next, served, seconds: (performance.now() - started) / 1000 };
}

async function totalBalance(ledger: Ledger): Promise<number> {
  return (await ledger.accounts()).reduce((sum, account) => sum + account.balance, 0);
}

async function benchBackend(backend: Backend) {
  try {
    const batched = await backend.open({});
    const unbatched = await backend.open({ groupCommit: false });
    try {
      await Promise.all(
        clientIds.map((clientId, index) =>
          batched.creditTopUp({
            clientId,
            currency: 'usd',
            paymentIntentId: `pi_bench_${index}`,
            units: STARTING_BALANCE,
            chargedMinor: 10_000,
          }),
        ),
      );
      const before = await totalBalance(batched);
      const warmUp = [await spendLoad(unbatched, 300, 1_000), await spendLoad(batched, 300, 1_000)];
      const baseline = await spendLoad(unbatched, SPENDS, PHASE_LIMIT_MS);
      const grouped = await spendLoad(batched, SPENDS, PHASE_LIMIT_MS);
      // Every served spend must show in the balances, or the figures mean nothing.
      const served = [...warmUp, baseline, grouped].reduce((sum, phase) => sum + phase.served, 0);
      const dropped = before - (await totalBalance(batched));
      if (dropped !== served) throw new Error(`${backend.name}: balances dropped by ${dropped}, but ${served} spends were served`);
      return { baseline, grouped };
    } finally {
      await unbatched.close();
      await batched.close();
    }
  } finally {
    await backend.cleanUp();
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const selected = argv.length > 0 ? argv : ['pglite', 'postgres', 'redis'];
  console.log(
    `ledger spends: ${WORKERS} concurrent callers, ${ACCOUNTS} accounts, up to ${SPENDS} spends or ${PHASE_LIMIT_MS / 1000} s per phase\n`,
  );
  console.log('backend    one round trip/spend   group commit   ratio');
  for (const backend of await backends(selected)) {
    const { baseline, grouped } = await benchBackend(backend);
    const baselineRate = baseline.attempted / baseline.seconds;
    const groupedRate = grouped.attempted / grouped.seconds;
    console.log(
      `${backend.name.padEnd(10)} ${`${rate(baselineRate)}/s`.padStart(20)}   ${`${rate(groupedRate)}/s`.padStart(12)}   ${(groupedRate / baselineRate).toFixed(1)}x`,
    );
  }
}

runWhenScript(import.meta.url, main);
