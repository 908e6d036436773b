/**
 * A real Redis Cluster on loopback for the tests and benchmarks: three
 * primaries and three replicas of the installed `redis-server`, each on a
 * free ephemeral port with its cluster bus on another (`cluster-port`, so
 * the bus never lands on port + 10000 where something else may listen),
 * joined by `redis-cli --cluster create`. Nothing shared is touched: its
 * data lives in a temporary directory removed on dispose.
 *
 * The node timeout is short (1 s), so the failover test sees a replica
 * take over within a few seconds; `cluster-require-full-coverage no` keeps
 * the other shards serving while one fails over, as a production cluster
 * should be set. The replica validity factor stays positive, as it must in
 * production (docs/ledgers.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './services.ts';

export interface RedisClusterNode {
  port: number;
  process: ChildProcess;
  /** The redis-server arguments, to start it again with the same configuration file. */
  args: string[];
}

export interface RedisCluster {
  /** The ledger URL naming every node: `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,...`. */
  url: string;
  nodes: RedisClusterNode[];
  /** The port of the node that is primary for `slot` now. */
  primaryOf(slot: number): Promise<number>;
  /** Kills a node with SIGKILL, as a crash would. */
  kill(port: number): Promise<void>;
  /** Stops a node with SIGSTOP (a stalled host: its connections stay open, it answers nothing) until `resume`. */
  stall(port: number): void;
  resume(port: number): void;
  /** Starts a killed node again and returns once it answers, whatever its role. */
  start(port: number): Promise<void>;
  /** The node's ROLE: `primary`, or `replica` with whether its link to its primary is up. */
  role(port: number): Promise<{ role: 'primary' } | { role: 'replica'; primaryPort: number; linked: boolean }>;
  /** Waits until every slot is served again and `port` (a replica) reports itself primary. */
  waitForPrimary(port: number, timeoutMs?: number): Promise<void>;
  /**
   * Starts a killed node again, as a supervisor would: it rejoins as a
   * replica of the node that took over, and this waits until that primary
   * counts it as a connected, synchronised replica.
   */
  restart(port: number, timeoutMs?: number): Promise<void>;
  /** The replica of the primary on `port`, as the cluster reports it. */
  replicaOf(port: number): Promise<number>;
  dispose(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function admin(port: number): Redis {
  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  return redis;
}

async function ask<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = admin(port);
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

/** `CLUSTER NODES`, parsed: one line per node. */
async function clusterNodes(port: number): Promise<Array<{ id: string; port: number; flags: string[]; primaryId: string; slots: string[] }>> {
  const text = (await ask(port, (redis) => redis.call('CLUSTER', 'NODES'))) as string;
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, primaryId, , , , , ...slots] = line.split(' ');
      return { id: id!, port: Number(address!.split(':')[1]!.split('@')[0]), flags: flags!.split(','), primaryId: primaryId!, slots };
    });
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 's402cluster-'));
  const nodes: RedisClusterNode[] = [];
  const used = new Set<number>();
  const distinctFreePort = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!used.has(port)) {
        used.add(port);
        return port;
      }
    }
  };
  const dispose = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (node) => {
        if (node.process.exitCode !== null || node.process.signalCode !== null) return;
        const exited = once(node.process, 'exit');
        node.process.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < 6; index++) {
      const port = await distinctFreePort();
      const bus = await distinctFreePort();
      const args = [
          '--port', String(port),
          '--cluster-port', String(bus),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '1000',
          // Not 0: with 0 a node restarted empty, still waiting for its first sync, is promoted when
          // its primary stalls past the node timeout (a busy machine), and the shard's data is wiped.
          '--cluster-replica-validity-factor', '10',
          // A rejoining replica syncs at once instead of waiting 5 s for others (shorter empty window, faster tests).
          '--repl-diskless-sync-delay', '0',
          '--cluster-require-full-coverage', 'no',
          // A replica that falls behind a bulk load waits instead of being cut off and fully resynchronised.
          '--client-output-buffer-limit', 'replica 0 0 0',
          '--save', '',
          '--appendonly', 'no',
          '--dir', dir,
          '--daemonize', 'no',
          '--logfile', path.join(dir, `redis-${port}.log`),
      ];
      nodes.push({ port, args, process: spawn('redis-server', args, { stdio: 'ignore' }) });
    }
    for (const node of nodes) {
      const deadline = Date.now() + 10_000;
      while ((await ask(node.port, (redis) => redis.ping()).catch(() => '')) !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${node.port}`);
        await sleep(50);
      }
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await waitUntil(async () => {
      for (const node of nodes) {
        const info = (await ask(node.port, (redis) => redis.call('CLUSTER', 'INFO'))) as string;
        if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:6/.test(info)) return false;
      }
      // Every replica has finished its first sync, so WAIT can count it.
      const all = await clusterNodes(nodes[0]!.port);
      for (const replica of all.filter((node) => node.flags.includes('slave'))) {
        const info = (await ask(replica.port, (redis) => redis.info('replication'))) as string;
        if (!/master_link_status:up/.test(info)) return false;
      }
      return true;
    }, 30_000, 'the cluster did not become ready');
  } catch (error) {
    await dispose();
    throw error;
  }

  return {
    url: `redis-cluster://${nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`,
    nodes,
    primaryOf: async (slot) => {
      for (const node of await clusterNodes(livePort(nodes))) {
        if (!node.flags.includes('master') || node.flags.includes('fail')) continue;
        for (const range of node.slots) {
          const [from, to] = range.split('-').map(Number);
          if (slot >= from! && slot <= (to ?? from!)) return node.port;
        }
      }
      throw new Error(`no primary serves slot ${slot}`);
    },
    replicaOf: async (port) => {
      const all = await clusterNodes(port);
      const primary = all.find((node) => node.port === port)!;
      const replica = all.find((node) => node.primaryId === primary.id);
      if (!replica) throw new Error(`the primary on ${port} has no replica`);
      return replica.port;
    },
    kill: async (port) => {
      const node = nodes.find((candidate) => candidate.port === port)!;
      const exited = once(node.process, 'exit');
      node.process.kill('SIGKILL');
      await exited;
    },
    stall: (port) => void nodes.find((candidate) => candidate.port === port)!.process.kill('SIGSTOP'),
    resume: (port) => void nodes.find((candidate) => candidate.port === port)!.process.kill('SIGCONT'),
    start: async (port) => {
      const node = nodes.find((candidate) => candidate.port === port)!;
      node.process = spawn('redis-server', node.args, { stdio: 'ignore' });
      await waitUntil(async () => (await ask(port, (redis) => redis.ping())) === 'PONG', 10_000, `redis-server did not start on port ${port}`);
    },
    role: async (port) => {
      const role = (await ask(port, (redis) => redis.call('ROLE'))) as unknown[];
      return role[0] === 'master' ? { role: 'primary' } : { role: 'replica', primaryPort: Number(role[2]), linked: role[3] === 'connected' };
    },
    restart: async (port, timeoutMs = 30_000) => {
      const node = nodes.find((candidate) => candidate.port === port)!;
      node.process = spawn('redis-server', node.args, { stdio: 'ignore' });
      await waitUntil(
        async () => {
          const role = (await ask(port, (redis) => redis.call('ROLE'))) as unknown[];
          if (role[0] !== 'slave' || role[3] !== 'connected') return false;
          const primary = (await ask(Number(role[2]), (redis) => redis.call('ROLE'))) as [string, number, Array<[string, string, string]>];
          return primary[2].some(([, replicaPort]) => Number(replicaPort) === port);
        },
        timeoutMs,
        `the node on ${port} did not rejoin as a replica`,
      );
    },
    waitForPrimary: (port, timeoutMs = 30_000) =>
      waitUntil(
        async () => {
          const role = (await ask(port, (redis) => redis.call('ROLE'))) as unknown[];
          const info = (await ask(port, (redis) => redis.call('CLUSTER', 'INFO'))) as string;
          return role[0] === 'master' && /cluster_state:ok/.test(info);
        },
        timeoutMs,
        `the replica on ${port} did not take over`,
      ),
    dispose,
  };
}

function livePort(nodes: RedisClusterNode[]): number {
  const live = nodes.find((node) => node.process.exitCode === null && node.process.signalCode === null);
  if (!live) throw new Error('every cluster node is down');
  return live.port;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(message);
    await sleep(100);
  }
}
