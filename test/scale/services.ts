/**
 * The real services the scale suites and benchmarks use, each isolated per
 * run: a fresh PostgreSQL schema (reached with a per-run application_name,
 * so a fault can terminate exactly this run's connections), a fresh Redis
 * key prefix, a Redis Cluster of the run's own (redis-cluster.ts), a
 * PGlite data directory under the system temp directory, and a private
 * redis-server on its own port for the restart fault. Plus the
 * test cards: the emulator gives each card number its own fingerprint, so
 * distinct client ids come from distinct succeeding test card numbers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { deleteRedisPrefix, reachablePostgresUrl } from '../../reference/server/test-helpers.ts';
import { openLedger, type Ledger } from '@stripe402/server/ledger';
import type { FleetConfig } from './server-entry.ts';
import { startRedisCluster, type RedisCluster } from './redis-cluster.ts';

export type LedgerKind = 'pglite' | 'postgres' | 'redis' | 'redis-cluster';

export const REDIS_URL = process.env.STRIPE402_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every succeeding test card the emulator knows: one client id each (per server secret). */
export const SUCCEEDING_CARD_NUMBERS: readonly string[] = [
  '4242424242424242',
  '4000056655665556',
  '4000000000000077',
  '5555555555554444',
  '2223003122003222',
  '5200828282828210',
  '5105105105105100',
  '378282246310005',
  '371449635398431',
  '6011111111111117',
  '6011000990139424',
  '3056930009020004',
  '36227206271667',
  '3566002020360505',
  '6200000000000005',
];

export function freshTag(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** A PostgreSQL URL that answers on loopback, or throws. */
export const postgresUrl = reachablePostgresUrl;

/** Runs one statement on the shared PostgreSQL (outside any ledger). */
export async function postgresQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: await postgresUrl() });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Where one run keeps its ledger, and how to remove it afterwards. */
export interface LedgerTarget {
  kind: LedgerKind;
  /** The URL servers open (for PostgreSQL it names this run's application_name). */
  url: string;
  schema?: string;
  keyPrefix?: string;
  /** PostgreSQL: the application_name of this run's connections. */
  applicationName?: string;
  /** Redis Cluster: the cluster this run started (its nodes, for the failover fault). */
  cluster?: RedisCluster;
  /** The ledger part of a fleet's configuration: spread it into `startFleet`'s config. */
  fleetLedger: Pick<FleetConfig, 'ledger' | 'ledgerSchema' | 'ledgerKeyPrefix'>;
  /** Opens the ledger the servers share, from outside them (to read it, or to reconcile). */
  openLedger(): Promise<Ledger>;
  dispose(): Promise<void>;
}

export async function ledgerTarget(kind: LedgerKind, tag = freshTag('s402scale'), redisUrl = REDIS_URL): Promise<LedgerTarget> {
  if (kind === 'postgres') {
    const base = new URL(await postgresUrl());
    base.searchParams.set('application_name', tag);
    const schema = tag.toLowerCase();
    return {
      kind,
      url: base.toString(),
      schema,
      applicationName: tag,
      fleetLedger: { ledger: base.toString(), ledgerSchema: schema },
      openLedger: () => openLedger(base.toString(), { schema }),
      dispose: async () => void (await postgresQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
    };
  }
  if (kind === 'redis-cluster') {
    // A cluster of this run's own: three primaries, three replicas, on free loopback ports.
    const cluster = await startRedisCluster();
    const keyPrefix = `${tag}:`;
    return {
      kind,
      url: cluster.url,
      keyPrefix,
      cluster,
      fleetLedger: { ledger: cluster.url, ledgerKeyPrefix: keyPrefix },
      openLedger: () => openLedger(cluster.url, { keyPrefix }),
      dispose: () => cluster.dispose(),
    };
  }
  if (kind === 'redis') {
    const keyPrefix = `${tag}:`;
    return {
      kind,
      url: redisUrl,
      keyPrefix,
      fleetLedger: { ledger: redisUrl, ledgerKeyPrefix: keyPrefix },
      openLedger: () => openLedger(redisUrl, { keyPrefix }),
      dispose: () => deleteRedisPrefix(redisUrl, keyPrefix),
    };
  }
  const dir = mkdtempSync(path.join(tmpdir(), `${tag}-`));
  const url = `pglite:${path.join(dir, 'ledger')}`;
  return { kind, url, fleetLedger: { ledger: url }, openLedger: () => openLedger(url), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** Terminates every PostgreSQL connection of one application_name (this run's ledger connections only). */
export async function terminatePostgresConnections(applicationName: string): Promise<number> {
  const rows = await postgresQuery<{ terminated: boolean }>(
    'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
    [applicationName],
  );
  return rows.filter((row) => row.terminated).length;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A redis-server of our own on its own port, never the shared one: the
 * restart fault shuts it down. Durable like a production ledger must be
 * (append-only file, fsync on every write), so a restart loses nothing
 * that was acknowledged.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** Crashes it without saving (`SHUTDOWN NOSAVE`; the append-only file survives). */
  shutdown(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

export async function startPrivateRedis(options: { port?: number; durable?: boolean } = {}): Promise<PrivateRedis> {
  const chosen = options.port ?? (await freePort());
  // Durable by default; the benchmarks' copy matches the shared server's settings (no persistence).
  const persistence = options.durable === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always'];
  const dir = mkdtempSync(path.join(tmpdir(), 's402redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--daemonize', 'no', '--logfile', ''],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(chosen, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        // A restarted server answers LOADING until its append-only file is read.
        if ((await probe.ping()) === 'PONG') {
          probe.disconnect();
          return;
        }
      } catch {
        probe.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${chosen}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const shutdown = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    const admin = new Redis(chosen, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
    } finally {
      admin.disconnect();
    }
    const timer = setTimeout(() => child?.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    shutdown,
    start,
    dispose: async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The Stripe emulator in a process of its own (`stripe402 emulator`), for
 * measurements where the server and the bench both reach it across
 * processes, as they would reach Stripe. Faults are armed and read through
 * its admin API.
 */
export interface EmulatorProcess {
  url: string;
  armFault(rule: { match?: { method?: string; path?: string }; kind: string; ms?: number; times?: number | 'unlimited' }): Promise<string>;
  faultHits(): Promise<Map<string, number>>;
  clearFaults(): Promise<void>;
  close(): Promise<void>;
}

export async function startEmulatorProcess(): Promise<EmulatorProcess> {
  const port = await freePort();
  const bin = new URL('../../bin/stripe402.js', import.meta.url);
  const child = spawn(process.execPath, [bin.pathname, 'emulator', '--port', String(port)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${url}/_emulator/health`).then((r) => r.ok, () => false);
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the emulator process did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${url}/_emulator/${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }).then(
      (r) => r.json() as Promise<unknown>,
    );
  return {
    url,
    armFault: async (rule) => ((await admin('POST', 'faults', rule)) as { id: string }).id,
    faultHits: async () => new Map(((await admin('GET', 'faults')) as { data: Array<{ id: string; hits: number }> }).data.map((rule) => [rule.id, rule.hits])),
    clearFaults: async () => void (await admin('DELETE', 'faults')),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
