/**
 * One reference server in a child process, or several behind Node's cluster
 * module sharing one port, for the scale-out and fault suites and the
 * benchmarks. It goes through `startServer`, the same public entry point as
 * `stripe402 serve`, so what runs here is the server a deployment runs.
 *
 * Configuration comes as JSON in STRIPE402_FLEET_CONFIG (see FleetConfig);
 * the Stripe keys and the server secret come from the usual environment
 * variables. Every process prints JSON lines on stdout: the cluster primary
 * (or the single server) prints `{"event":"listening","url",...}`, each
 * worker `{"event":"worker","pid"}` once it listens. With an IPC channel,
 * the message `{"type":"heap"}` answers the heap in use after a full GC
 * (start with --expose-gc), for the memory check of the fuzz suite.
 */
import cluster from 'node:cluster';
import { startServer, type RunningServer } from 'stripe402';
import type { PaidRouteConfig } from '@stripe402/server';
import { openLedger, type LedgerOptions } from '@stripe402/server/ledger';

export interface FleetConfig {
  /** Ledger URL (postgres://, redis://, pglite:DIR). */
  ledger: string;
  ledgerSchema?: string;
  ledgerKeyPrefix?: string;
  stripeUrl: string;
  webhookSecret?: string;
  routes?: PaidRouteConfig[];
  /** Server processes; 1 runs without cluster. */
  workers: number;
  /** Port to share; 0 picks one. */
  port: number;
  /** Fork a new worker when one dies (as a process supervisor would). Default true. */
  respawn?: boolean;
  stripeTimeoutMs?: number;
  topUpLockTtlMs?: number;
  /** Ledger tuning (group commit on or off, batch limits); given, the process opens the ledger itself. */
  ledgerOptions?: Pick<LedgerOptions, 'groupCommit' | 'maxBatchSize' | 'maxBatchesInFlight' | 'poolSize'>;
}

const config = JSON.parse(process.env.STRIPE402_FLEET_CONFIG ?? '{}') as FleetConfig;

// The parent holds our stdin open: when it goes (even killed), so do we, and
// cluster workers follow their primary.
if (cluster.isPrimary) {
  process.stdin.resume();
  process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

async function serveOne(port: number): Promise<RunningServer> {
  const env = process.env;
  const ledger = config.ledgerOptions
    ? await openLedger(config.ledger, {
        ...config.ledgerOptions,
        ...(config.ledgerSchema ? { schema: config.ledgerSchema } : {}),
        ...(config.ledgerKeyPrefix ? { keyPrefix: config.ledgerKeyPrefix } : {}),
      })
    : config.ledger;
  const server = await startServer({
    port,
    host: '127.0.0.1',
    ledger,
    ...(config.ledgerSchema ? { ledgerSchema: config.ledgerSchema } : {}),
    ...(config.ledgerKeyPrefix ? { ledgerKeyPrefix: config.ledgerKeyPrefix } : {}),
    stripeUrl: config.stripeUrl,
    stripeSecretKey: env.STRIPE_SECRET_KEY ?? 'sk_test_emulator',
    stripePublishableKey: env.STRIPE_PUBLISHABLE_KEY ?? 'pk_test_emulator',
    ...(env.STRIPE402_SERVER_SECRET ? { serverSecret: env.STRIPE402_SERVER_SECRET } : {}),
    ...(config.webhookSecret ? { webhookSecret: config.webhookSecret } : {}),
    ...(config.routes ? { routes: config.routes } : {}),
    ...(config.stripeTimeoutMs ? { stripeTimeoutMs: config.stripeTimeoutMs } : {}),
    ...(config.topUpLockTtlMs ? { topUpLockTtlMs: config.topUpLockTtlMs } : {}),
    log: false,
  });
  if (typeof ledger === 'string') return server;
  // A ledger we opened is ours to close, after the server.
  return { ...server, close: async () => { await server.close(); await ledger.close(); } };
}

function answerHeapQueries(): void {
  process.on('message', (message: { type?: string }) => {
    if (message?.type !== 'heap') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    process.send?.({ type: 'heap', heapUsed: process.memoryUsage().heapUsed, collected: gc !== undefined });
  });
}

async function stopOn(server: RunningServer): Promise<void> {
  const stop = () => {
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (config.workers <= 1) {
  const server = await serveOne(config.port);
  answerHeapQueries();
  await stopOn(server);
  emit({ event: 'listening', url: server.url, port: server.port, pid: process.pid });
} else if (cluster.isPrimary) {
  // The kernel spreads connections over the workers (no hand-off through the
  // primary). Every worker listens on config.port, 0 included: the cluster
  // hands them all the same socket, respawned workers too.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let announced = false;
  let listening = 0;
  let stopping = false;
  const fork = (): void => {
    const worker = cluster.fork();
    worker.on('message', (message: { event?: string; port?: number; pid?: number }) => {
      if (message?.event !== 'listening') return;
      emit({ event: 'worker', pid: message.pid, port: message.port });
      if (!announced && ++listening >= config.workers) {
        announced = true;
        emit({ event: 'listening', url: `http://127.0.0.1:${message.port}`, port: message.port, pid: process.pid });
      }
    });
  };
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    emit({ event: 'exit', pid: worker.process.pid, code, signal });
    if (!stopping && config.respawn !== false) fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    const force = setTimeout(() => process.exit(1), 6_000);
    force.unref();
    const check = setInterval(() => {
      if (Object.values(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 20);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  const server = await serveOne(config.port);
  await stopOn(server);
  process.send?.({ event: 'listening', port: server.port, pid: process.pid });
}
