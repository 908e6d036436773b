/**
 * Starts reference servers as child processes (test/scale/server-entry.ts):
 * one process, or a cluster of several sharing one port and one ledger, the
 * shape of a scale-out deployment behind a load balancer. The handle knows
 * every worker's pid, so a fault test can `kill -9` one in the middle of
 * the load, and the cluster primary forks a replacement as a supervisor
 * would. Used by the scale and fault suites and by the benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import type { FleetConfig } from './server-entry.ts';
import { ledgerTarget, type LedgerKind, type LedgerTarget } from './services.ts';

export type { FleetConfig };

export const ENTRY = fileURLToPath(new URL('./server-entry.ts', import.meta.url));

export interface Fleet {
  url: string;
  /** Server processes it runs when none has died. */
  size: number;
  /** The process that owns the port: the cluster primary, or the only server. */
  primaryPid: number;
  /** Pids of the live server processes (the only one, or the cluster workers). */
  workers(): number[];
  /** Worker exits seen so far. */
  exits(): Array<{ pid: number; code: number | null; signal: string | null }>;
  /** Waits until `count` workers listen (after a kill, for the replacement). */
  waitForWorkers(count: number, timeoutMs?: number): Promise<void>;
  /** Heap in use after a full GC, in bytes (single-process fleets started with `exposeGc`). */
  heapUsed(): Promise<number>;
  /** CPU time (user + system, seconds) the server processes have used so far: per-request cost independent of machine load. */
  cpuSeconds(): number;
  /** Whether the server process is still running. */
  alive(): boolean;
  stop(): Promise<void>;
}

export interface FleetEnvironment {
  serverSecret: string;
  stripeSecretKey?: string;
  stripePublishableKey?: string;
  /** Start the server with --expose-gc and an IPC channel (heapUsed). */
  exposeGc?: boolean;
  /** More Node options for the server processes (e.g. --cpu-prof for profiling). */
  nodeOptions?: string[];
  /** Forward the servers' stderr (default: kept, shown only if start-up fails). */
  inheritStderr?: boolean;
}

export async function startFleet(config: FleetConfig, env: FleetEnvironment): Promise<Fleet> {
  const execArgv = ['--import', 'tsx', ...(env.exposeGc ? ['--expose-gc'] : []), ...(env.nodeOptions ?? [])];
  const child: ChildProcess = spawn(process.execPath, [...execArgv, ENTRY], {
    stdio: ['pipe', 'pipe', env.inheritStderr ? 'inherit' : 'pipe', ...(env.exposeGc ? (['ipc'] as const) : [])],
    env: {
      ...process.env,
      STRIPE402_FLEET_CONFIG: JSON.stringify(config),
      STRIPE_SECRET_KEY: env.stripeSecretKey ?? 'sk_test_emulator',
      STRIPE_PUBLISHABLE_KEY: env.stripePublishableKey ?? 'pk_test_emulator',
      STRIPE402_SERVER_SECRET: env.serverSecret,
    },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8_000);
  });
  const workers = new Set<number>();
  const exits: Array<{ pid: number; code: number | null; signal: string | null }> = [];
  let url: string | undefined;
  let buffered = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      let event: { event?: string; url?: string; pid?: number; code?: number | null; signal?: string | null };
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (event.event === 'worker' && event.pid) workers.add(event.pid);
      if (event.event === 'exit' && event.pid) {
        workers.delete(event.pid);
        exits.push({ pid: event.pid, code: event.code ?? null, signal: event.signal ?? null });
      }
      if (event.event === 'listening') {
        url = event.url;
        if (config.workers <= 1 && event.pid) workers.add(event.pid);
      }
      for (const listener of listeners) listener();
    }
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('the servers did not start within 60 s')), 60_000);
    const onExit = (code: number | null) => fail(new Error(`the servers exited during start-up (code ${code})`));
    const fail = (error: Error) => {
      clearTimeout(timer);
      listeners.delete(check);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${stderr}`));
    };
    const check = () => {
      if (url === undefined) return;
      clearTimeout(timer);
      listeners.delete(check);
      child.off('exit', onExit);
      resolve();
    };
    listeners.add(check);
    child.once('exit', onExit);
  });

  const waitFor = (condition: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (condition()) return resolve();
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
    });

  return {
    url: url!,
    size: Math.max(1, config.workers),
    primaryPid: child.pid!,
    workers: () => [...workers],
    exits: () => [...exits],
    waitForWorkers: (count, timeoutMs = 30_000) => waitFor(() => workers.size >= count, timeoutMs, `${count} workers did not listen`),
    cpuSeconds: () => [...new Set([child.pid!, ...workers])].reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
    alive: () => child.exitCode === null && child.signalCode === null,
    heapUsed: async () => {
      if (!child.send) throw new Error('heapUsed needs a fleet started with exposeGc');
      const reply = new Promise<number>((resolve) => {
        const onMessage = (message: { type?: string; heapUsed?: number }) => {
          if (message?.type !== 'heap') return;
          child.off('message', onMessage);
          resolve(message.heapUsed!);
        };
        child.on('message', onMessage);
      });
      child.send({ type: 'heap' });
      return reply;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(timer);
      // Workers of a killed primary leave when their IPC channel closes; make sure.
      for (const pid of workers) killIfOurs(pid);
    },
  };
}

/** A fleet with an in-process emulator and a ledger of its own, under a fresh server secret. */
export interface Stack {
  emulator: Emulator;
  target: LedgerTarget;
  serverSecret: string;
  fleet: Fleet;
  /** Stops the fleet and the emulator, then removes the ledger's data. */
  stop(): Promise<void>;
}

/** Stands up a Stack: `config` is the fleet's configuration but for its ledger and Stripe, which the stack provides. */
export async function startStack(
  kind: LedgerKind,
  config: Omit<FleetConfig, 'ledger' | 'ledgerSchema' | 'ledgerKeyPrefix' | 'stripeUrl'>,
  env: Omit<FleetEnvironment, 'serverSecret'> = {},
): Promise<Stack> {
  const emulator = await startEmulator({ port: 0 });
  const target = await ledgerTarget(kind);
  const serverSecret = randomBytes(32).toString('hex');
  let fleet: Fleet;
  try {
    fleet = await startFleet({ ...config, ...target.fleetLedger, stripeUrl: emulator.url }, { ...env, serverSecret });
  } catch (error) {
    await emulator.close();
    await target.dispose();
    throw error;
  }
  return {
    emulator,
    target,
    serverSecret,
    fleet,
    stop: async () => {
      await fleet.stop();
      await emulator.close();
      await target.dispose();
    },
  };
}

/** SIGKILLs a server process of ours, checking first that the pid still runs our entry (pids get reused). */
export function killIfOurs(pid: number): boolean {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server-entry')) return false;
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** utime + stime of a live process from /proc, in seconds (0 when it is gone or /proc is missing). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces, start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
