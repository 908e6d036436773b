/**
 * Shared set-up for the server's integration tests: real ledgers isolated
 * per test file (PGlite in memory, a fresh PostgreSQL schema, a fresh Redis
 * key prefix), a fault-injecting decorator that makes the real ledger fail
 * on cue, and small HTTP helpers that speak the wire format through the
 * core codec. Not a test file itself (no `.test.ts`), and not part of the
 * server's public API.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { decodePaymentRequiredHeader, decodePaymentResponseHeader, encodeHeader } from '@stripe402/core';
import type { PaymentRequiredResponse, PaymentResponse } from '@stripe402/core';
import { openLedger } from './ledger/index.ts';
import type { Emulator } from '@stripe402/stripe-emulator';
import type Stripe from 'stripe';
import { startServer, type RunningServer, type ServerOptions } from 'stripe402';
import type { PaidRouteConfig } from './routes.ts';
import { LedgerUnavailableError, type Account, type Ledger, type RestoreRequest, type SpendRequest, type KeyedTopUp, type StartedTopUp, type TopUpCredit } from './ledger/types.ts';

export const POSTGRES_URL = process.env.STRIPE402_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.STRIPE402_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let reachablePostgres: string | undefined;

/**
 * A PostgreSQL URL that answers on loopback: STRIPE402_TEST_POSTGRES_URL when
 * set, otherwise database `test` as user postgres, then root (as Debian's
 * trust set-up and CI's differ). Throws when none answers.
 */
export async function reachablePostgresUrl(): Promise<string> {
  if (reachablePostgres) return reachablePostgres;
  const candidates = process.env.STRIPE402_TEST_POSTGRES_URL
    ? [process.env.STRIPE402_TEST_POSTGRES_URL]
    : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
  for (const url of candidates) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.end();
      return (reachablePostgres = url);
    } catch {
      await client.end().catch(() => undefined);
    }
  }
  throw new Error('PostgreSQL is not reachable on 127.0.0.1:5432 as postgres or root');
}

/** Deletes every Redis key under a prefix: how a test's or a run's Redis ledger is removed. */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export type LedgerKind = 'pglite' | 'postgres' | 'redis';
export const LEDGER_KINDS: readonly LedgerKind[] = ['pglite', 'postgres', 'redis'];

export interface TestLedger {
  kind: LedgerKind;
  ledger: Ledger;
  /**
   * Makes the ledger unreachable for real: the TCP proxy in front of
   * PostgreSQL or Redis is cut; the embedded PGlite is closed under the server.
   */
  cut(): Promise<void>;
  /** Closes the ledger and removes its schema or keys. */
  dispose(): Promise<void>;
}

/** A real ledger of one kind, isolated from every other test file, reached through a TCP proxy that `cut()` severs. */
export async function openTestLedger(kind: LedgerKind): Promise<TestLedger> {
  const tag = `${process.pid}_${randomBytes(4).toString('hex')}`;
  if (kind === 'pglite') {
    const ledger = await openLedger('pglite:memory');
    let closed = false;
    const close = async () => {
      if (!closed) await ledger.close();
      closed = true;
    };
    return { kind, ledger, cut: close, dispose: close };
  }
  const target = new URL(kind === 'postgres' ? POSTGRES_URL : REDIS_URL);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || (kind === 'postgres' ? 5432 : 6379)));
  const viaProxy = new URL(target);
  viaProxy.port = String(proxy.port);
  if (kind === 'postgres') {
    const schema = `s402_test_${tag}`;
    const ledger = await openLedger(viaProxy.toString(), { schema, connectTimeoutMs: 1_000 });
    return {
      kind,
      ledger,
      cut: () => proxy.cut(),
      dispose: async () => {
        await ledger.close().catch(() => {});
        await proxy.cut();
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await client.end();
        }
      },
    };
  }
  const keyPrefix = `s402test:${tag}:`;
  const ledger = await openLedger(viaProxy.toString(), { keyPrefix, connectTimeoutMs: 1_000 });
  return {
    kind,
    ledger,
    cut: () => proxy.cut(),
    dispose: async () => {
      await ledger.close().catch(() => {});
      await proxy.cut();
      await deleteRedisPrefix(REDIS_URL, keyPrefix);
    },
  };
}

/**
 * The real ledger, plus switches that make the next calls fail the way an
 * unreachable store does (LedgerUnavailableError). Everything not switched
 * off goes to the real ledger, so balances, journal and locks stay real.
 */
export class FaultInjectingLedger implements Ledger {
  /** Fail this many upcoming creditTopUp calls. */
  failCreditTopUps = 0;
  /** Fail this many upcoming restore calls before they reach the store. */
  failRestores = 0;
  /** Apply this many upcoming restores, then fail them as a dropped connection would: done, answer lost. */
  loseRestoreAnswers = 0;
  /** Fail every call, as if the store were unreachable. */
  unreachable = false;
  /** Calls made, by method, to check that a request never reached the ledger. */
  readonly calls: Record<string, number> = {};

  constructor(readonly inner: Ledger) {}

  private enter(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    if (this.unreachable) throw new LedgerUnavailableError('injected: the ledger is unreachable');
  }

  totalCalls(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  async spend(request: SpendRequest) {
    this.enter('spend');
    return this.inner.spend(request);
  }
  async creditTopUp(credit: TopUpCredit) {
    this.enter('creditTopUp');
    if (this.failCreditTopUps > 0) {
      this.failCreditTopUps--;
      throw new LedgerUnavailableError('injected: creditTopUp failed');
    }
    return this.inner.creditTopUp(credit);
  }
  async restore(request: RestoreRequest) {
    this.enter('restore');
    if (this.failRestores > 0) {
      this.failRestores--;
      throw new LedgerUnavailableError('injected: restore failed');
    }
    const result = await this.inner.restore(request);
    if (this.loseRestoreAnswers > 0) {
      this.loseRestoreAnswers--;
      throw new LedgerUnavailableError('injected: the answer to a restore was lost');
    }
    return result;
  }
  async balance(account: Account) {
    this.enter('balance');
    return this.inner.balance(account);
  }
  async isCredited(paymentIntentId: string) {
    this.enter('isCredited');
    return this.inner.isCredited(paymentIntentId);
  }
  async recordTopUp(topUp: StartedTopUp) {
    this.enter('recordTopUp');
    return this.inner.recordTopUp(topUp);
  }
  async startedTopUp(paymentIntentId: string) {
    this.enter('startedTopUp');
    return this.inner.startedTopUp(paymentIntentId);
  }
  async beginKeyedTopUp(topUp: KeyedTopUp) {
    this.enter('beginKeyedTopUp');
    return this.inner.beginKeyedTopUp(topUp);
  }
  async keyedTopUpCharged(account: Account, idempotencyKey: string, paymentIntentId: string) {
    this.enter('keyedTopUpCharged');
    return this.inner.keyedTopUpCharged(account, idempotencyKey, paymentIntentId);
  }
  async customerOf(clientId: string) {
    this.enter('customerOf');
    return this.inner.customerOf(clientId);
  }
  async recordCustomer(clientId: string, customerId: string) {
    this.enter('recordCustomer');
    return this.inner.recordCustomer(clientId, customerId);
  }
  async withTopUpLock<T>(account: Account, fn: () => Promise<T>, ttlMs?: number) {
    this.enter('withTopUpLock');
    return this.inner.withTopUpLock(account, fn, ttlMs);
  }
  async journal(account: Account) {
    return this.inner.journal(account);
  }
  async accounts() {
    return this.inner.accounts();
  }
  async close() {
    return this.inner.close();
  }
}

/** A fresh server secret, so every test derives its own client ids from the same test cards. */
export function freshSecret(): string {
  return randomBytes(32).toString('hex');
}

/** A `payment` header value, encoded as senders must (ENC-2). */
export function paymentHeader(payload: Record<string, unknown>): string {
  return encodeHeader(payload);
}

export interface PaidResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The decoded `payment-response`, if the response carried one. */
  payment?: PaymentResponse;
  /** The decoded `payment-required`, if the response carried one. */
  required?: PaymentRequiredResponse;
}

/** Sends a request, with a `payment` header when a payload (or a raw header value) is given, and decodes the stripe402 headers. */
export async function request(
  url: string,
  options: { method?: string; payment?: Record<string, unknown> | string; body?: string; headers?: Record<string, string> } = {},
): Promise<PaidResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.payment !== undefined) headers.payment = typeof options.payment === 'string' ? options.payment : paymentHeader(options.payment);
  const response = await fetch(url, { method: options.method ?? 'GET', headers, ...(options.body === undefined ? {} : { body: options.body }) });
  const text = await response.text();
  const result: PaidResponse = { status: response.status, headers: response.headers, text };
  const pr = response.headers.get('payment-response');
  if (pr !== null) {
    const decoded = decodePaymentResponseHeader(pr);
    if (!decoded.ok) throw new Error(`the server sent an invalid payment-response: ${decoded.error.detail}`);
    result.payment = decoded.value;
  }
  const required = response.headers.get('payment-required');
  if (required !== null) {
    const decoded = decodePaymentRequiredHeader(required);
    if (!decoded.ok) throw new Error(`the server sent an invalid payment-required: ${decoded.error.detail}`);
    result.required = decoded.value;
  }
  return result;
}

// ---- servers under test ----

/**
 * The demo's paths at test-friendly prices: a top-up of minTopUp pays for
 * exactly 5 jokes or 20 weather reports, so tests reach zero in a few
 * requests. Every minTopUp still meets Stripe's minimum charge.
 */
export const TEST_ROUTES: readonly PaidRouteConfig[] = [
  { method: 'GET', path: '/api/joke', amount: 10_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 200_000, description: 'A joke' },
  { method: 'GET', path: '/api/weather', amount: 2_500, currency: 'usd', minTopUp: 50_000, maxTopUp: 200_000 },
  { method: 'POST', path: '/api/echo', amount: 50, currency: 'usd', minTopUp: 50_000 },
  {
    method: 'GET',
    path: '/api/fortune',
    accepts: [
      { currency: 'jpy', amount: 10_000, minTopUp: 1_000_000 },
      { currency: 'eur', amount: 100, minTopUp: 50_000 },
      // Three decimals, charged in steps of 10 fils (UNIT-7).
      { currency: 'kwd', amount: 100, minTopUp: 50_000 },
    ],
  },
  { method: 'GET', path: '/api/fail', amount: 10_000, currency: 'usd', minTopUp: 50_000 },
];

/** A server on `ledger` and `emulator` with a fresh server secret (so fresh client ids), on a free loopback port. */
export function startTestServer(ledger: Ledger, emulator: Emulator, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  return startServer({
    port: 0,
    host: '127.0.0.1',
    ledger,
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    stripePublishableKey: emulator.publishableKey,
    serverSecret: freshSecret(),
    routes: TEST_ROUTES,
    log: false,
    stripeTimeoutMs: 5_000,
    ...options,
  });
}

/** The PaymentIntents the emulator holds for one client id, by the metadata the spec fixes (PROC-6). */
export function paymentIntentsOf(emulator: Emulator, clientId: string): Stripe.PaymentIntent[] {
  return emulator.state.paymentIntents().filter((pi) => pi.metadata?.stripe402_client_id === clientId);
}

/** How many objects of every kind the emulator holds: unchanged means Stripe was not changed. */
export function emulatorFootprint(emulator: Emulator): Record<string, number> {
  const s = emulator.state;
  return {
    paymentIntents: s.paymentIntents().length,
    paymentMethods: s.paymentMethods().length,
    customers: s.customers().length,
    charges: s.charges().length,
    events: s.events().length,
  };
}

/**
 * Counts every Stripe API request the emulator receives from now on, with
 * a zero-delay latency rule matching everything (its hit counter is the
 * emulator's own request count). Call the result to read it.
 */
export function countStripeRequests(emulator: Emulator): () => number {
  const rule = emulator.faults.arm({ match: { path: '/v1/' }, kind: 'latency', ms: 0, times: 'unlimited' });
  return () => emulator.faults.list().find((r) => r.id === rule.id)?.hits ?? 0;
}

/** Polls until `check` returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ---- raw HTTP and real faults ----

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request with the exact bytes given: the path is not normalized (fetch
 * would resolve dot segments) and header lines are sent as listed, so a
 * header can appear twice.
 */
export function rawRequest(baseUrl: string, method: string, path: string, headerLines: Array<[string, string]> = []): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    // Raw header arrays get no default Host header; HTTP/1.1 requires one.
    const headers = [['host', `${hostname}:${port}`], ...headerLines].flat();
    const req = http.request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A TCP proxy to a real service (PostgreSQL, Redis): `cut()` closes it and
 * every connection through it, which is what an unreachable ledger looks
 * like to the server.
 */
export async function startTcpProxy(targetHost: string, targetPort: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    cut: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
