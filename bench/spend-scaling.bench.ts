/**
 * How the cost of a spend grows with the number of client ids in the
 * ledger: the ledger is seeded directly (SQL generate_series, Redis
 * pipelines) with 1 thousand, then 10 thousand, 100 thousand and 1 million
 * funded accounts, each with its top-up journal entry, and at every size 64
 * concurrent callers spend 1 unit from accounts drawn uniformly at random
 * (the unfriendliest pattern for caches) through the ledger's own spend(),
 * group commit on, for a fixed time. Throughput and latency at each size,
 * and the ratio to the smallest, say whether spends stay O(log n).
 *
 * Redis runs as a private redis-server with the shared one's settings, so
 * a million accounts do not land in a server other work uses; Redis
 * Cluster as three primaries and three replicas of our own on loopback.
 *
 *   npx tsx bench/spend-scaling.bench.ts [redis] [redis-cluster] [postgres] [pglite]
 *   BENCH_SCALE_MAX=100000 BENCH_DURATION=3 npx tsx bench/spend-scaling.bench.ts
 */
import pg from 'pg';
import { Cluster, Redis } from 'ioredis';
import { PGlite } from '@electric-sql/pglite';
import { openLedger, openSqlLedger, type Ledger } from '@stripe402/server/ledger';
import { accountKeys, parseClusterUrl } from '../reference/server/ledger/redis.ts';
import { startRedisCluster } from '../test/scale/redis-cluster.ts';
import { freshTag, postgresUrl, startPrivateRedis, type LedgerKind } from '../test/scale/services.ts';
import { machineLine, table, ledgerArguments, runWhenScript } from './harness.ts';

const CALLERS = 64;
const BALANCE = 1_000_000_000;

export interface ScalingRow {
  ledger: LedgerKind;
  accounts: number;
  seedSeconds: number;
  spendsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** spendsPerSecond / that of the smallest size. */
  ratio: number;
  /** CPU per spend of this process (the ledger's client), in µs: steadier than spends/s on a shared machine. */
  clientCpuUs: number;
  /** CPU per spend of the store's server processes (Redis only, replicas included), in µs. */
  storeCpuUs?: number;
}

interface Store {
  ledger: Ledger;
  /** Seeds accounts [from, to) with BALANCE each and a matching top-up journal entry. */
  seed(from: number, to: number): Promise<void>;
  /** CPU seconds the store's server processes have used so far (Redis: every node, replicas included), when it can tell. */
  storeCpuSeconds?(): Promise<number>;
  close(): Promise<void>;
}

/** used_cpu_user + used_cpu_sys of one redis-server, from INFO. */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
}

const clientId = (index: number) => `scale-${index.toString().padStart(8, '0')}`;

function sqlSeed(schema: string, from: number, to: number): string {
  const id = `'scale-' || lpad(i::text, 8, '0')`;
  return `
    INSERT INTO "${schema}".balances (client_id, currency, balance)
      SELECT ${id}, 'usd', ${BALANCE} FROM generate_series(${from}, ${to - 1}) AS i;
    INSERT INTO "${schema}".journal (client_id, currency, kind, delta, count, payment_intent_id, charged_minor)
      SELECT ${id}, 'usd', 'topup', ${BALANCE}, 1, 'pi_scale_' || i, ${BALANCE / 100} FROM generate_series(${from}, ${to - 1}) AS i;
    ANALYZE "${schema}".balances;
    ANALYZE "${schema}".journal;`;
}

async function openStore(kind: LedgerKind): Promise<Store> {
  const tag = freshTag('s402scaling').toLowerCase();
  if (kind === 'postgres') {
    const url = await postgresUrl();
    const ledger = await openLedger(url, { schema: tag });
    const client = new pg.Client(url);
    await client.connect();
    return {
      ledger,
      seed: async (from, to) => void (await client.query(sqlSeed(tag, from, to))),
      close: async () => {
        await ledger.close();
        await client.query(`DROP SCHEMA "${tag}" CASCADE`);
        await client.end();
      },
    };
  }
  if (kind === 'pglite') {
    const db = new PGlite();
    const ledger = await openSqlLedger({ pgliteInstance: db }, { schema: tag });
    return {
      ledger,
      seed: async (from, to) => void (await db.exec(sqlSeed(tag, from, to))),
      close: async () => {
        await ledger.close();
        await db.close();
      },
    };
  }
  // Redis runs as a private redis-server with the shared one's settings, the
  // cluster as three primaries and three replicas of our own.
  const redisServer = kind === 'redis' ? await startPrivateRedis({ durable: false }) : undefined;
  const cluster = kind === 'redis-cluster' ? await startRedisCluster() : undefined;
  const url = redisServer?.url ?? cluster!.url;
  const prefix = `${tag}:`;
  const ledger = await openLedger(url, { keyPrefix: prefix });
  // Auto-pipelining sends the commands queued in one turn to each node as one write, whatever their slots.
  const redis = cluster
    ? new Cluster(parseClusterUrl(url).nodes, { enableAutoPipelining: true })
    : new Redis(url, { enableAutoPipelining: true });
  return {
    ledger,
    seed: async (from, to) => {
      const now = Date.now();
      for (let start = from; start < to; start += 5_000) {
        const writes: Array<Promise<unknown>> = [];
        for (let i = start; i < Math.min(to, start + 5_000); i++) {
          const account = { clientId: clientId(i), currency: 'usd' };
          const keys = accountKeys(prefix, account);
          writes.push(
            redis.set(keys.balance, String(BALANCE)),
            redis.rpush(keys.journal, `{"kind":"topup","delta":${BALANCE},"count":1,"at":${now},"paymentIntentId":"pi_scale_${i}","chargedMinor":${BALANCE / 100}}`),
          );
        }
        await Promise.all(writes);
      }
    },
    storeCpuSeconds: async () => {
      const nodes = redis instanceof Cluster ? redis.nodes('all') : [redis];
      return (await Promise.all(nodes.map(redisCpuSeconds))).reduce((a, b) => a + b, 0);
    },
    close: async () => {
      await ledger.close();
      redis.disconnect();
      await redisServer?.dispose();
      await cluster?.dispose();
    },
  };
}

async function measure(ledger: Ledger, accounts: number, seconds: number): Promise<{ rate: number; p50: number; p99: number; served: number }> {
  const latencies: number[] = [];
  let served = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (performance.now() < deadline) {
        const begun = performance.now();
        const result = await ledger.spend({ clientId: clientId(Math.floor(Math.random() * accounts)), currency: 'usd', amount: 1, route: 'GET /bench' });
        latencies.push(performance.now() - begun);
        if (result.ok) served++;
        else throw new Error('a seeded account could not pay 1 unit');
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rate: served / ((performance.now() - started) / 1000), p50: latencies[Math.floor(latencies.length / 2)]!, p99: latencies[Math.floor(latencies.length * 0.99)]!, served };
}

export async function main(options: { ledgers?: LedgerKind[]; maxAccounts?: number; seconds?: number; log?: (line: string) => void } = {}): Promise<ScalingRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const maxAccounts = options.maxAccounts ?? (Number(process.env.BENCH_SCALE_MAX) || 1_000_000);
  const seconds = options.seconds ?? (Number(process.env.BENCH_DURATION) || 3);
  const sizes = [1_000, 10_000, 100_000, 1_000_000].filter((size) => size <= maxAccounts);
  log(`spend cost against ledger size: ${CALLERS} concurrent callers, uniformly random accounts, ${seconds} s per size, sizes ${sizes.map((s) => s.toLocaleString('en-US')).join(' / ')}`);
  log(machineLine());
  const rows: ScalingRow[] = [];
  for (const kind of options.ledgers ?? (['redis', 'redis-cluster', 'postgres', 'pglite'] as LedgerKind[])) {
    const store = await openStore(kind);
    try {
      let seeded = 0;
      let first: number | undefined;
      for (const size of sizes) {
        const seedStarted = performance.now();
        await store.seed(seeded, size);
        seeded = size;
        const seedSeconds = (performance.now() - seedStarted) / 1000;
        await measure(store.ledger, size, 0.5); // warm-up
        const cpuBefore = process.cpuUsage();
        const storeBefore = await store.storeCpuSeconds?.();
        const { rate, p50, p99, served } = await measure(store.ledger, size, seconds);
        const cpu = process.cpuUsage(cpuBefore);
        const storeAfter = await store.storeCpuSeconds?.();
        first ??= rate;
        rows.push({
          ledger: kind,
          accounts: size,
          seedSeconds,
          spendsPerSecond: rate,
          p50Ms: p50,
          p99Ms: p99,
          ratio: rate / first,
          clientCpuUs: (cpu.user + cpu.system) / served,
          ...(storeBefore !== undefined && storeAfter !== undefined ? { storeCpuUs: ((storeAfter - storeBefore) * 1e6) / served } : {}),
        });
        log(`  ${kind} ${size.toLocaleString('en-US')} accounts: seeded in ${seedSeconds.toFixed(1)} s, ${Math.round(rate).toLocaleString('en-US')} spends/s`);
      }
      // The spends above are real: every balance must still equal its journal.
      const sample = await Promise.all([0, Math.floor(seeded / 2), seeded - 1].map(async (i) => {
        const account = { clientId: clientId(i), currency: 'usd' };
        const [balance, journal] = await Promise.all([store.ledger.balance(account), store.ledger.journal(account)]);
        return balance === journal.reduce((sum, entry) => sum + entry.delta, 0);
      }));
      if (!sample.every(Boolean)) throw new Error(`${kind}: a balance differs from its journal after the run`);
    } finally {
      await store.close();
    }
  }
  table(
    [
      ['ledger', 'accounts', 'seeded in', 'spends/s', 'p50', 'p99', 'vs 1,000', 'client CPU/spend', 'Redis CPU/spend'],
      ...rows.map((row) => [
        row.ledger,
        row.accounts.toLocaleString('en-US'),
        `${row.seedSeconds.toFixed(1)} s`,
        Math.round(row.spendsPerSecond).toLocaleString('en-US'),
        `${row.p50Ms.toFixed(1)} ms`,
        `${row.p99Ms.toFixed(1)} ms`,
        row.ratio.toFixed(2),
        `${row.clientCpuUs.toFixed(1)} µs`,
        row.storeCpuUs === undefined ? '' : `${row.storeCpuUs.toFixed(1)} µs`,
      ]),
    ],
    log,
  );
  return rows;
}

runWhenScript(import.meta.url, () => {
  const ledgers = ledgerArguments();
  return main(ledgers ? { ledgers } : {});
});
