/**
 * The standalone reference server: the demo paid API (or a given route
 * table) on @hono/node-server, a ledger opened from a URL, and Stripe via
 * the official SDK. Without a Stripe secret key it starts the project's
 * emulator in-process and says loudly that this is test mode. `startServer`
 * is what `stripe402 serve`, the tests, the conformance suite's tests and
 * the benchmarks call. It refuses the configurations that would expose
 * money or free content by accident: test mode on a public interface or
 * under NODE_ENV=production, a live key on plain HTTP without a TLS proxy
 * (SEC-1), a live key with a short or patterned server secret (CID-2).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { isStrongServerSecret, SERVER_SECRET_MIN_BYTES } from '@stripe402/core';
import { createDemoApp, DEMO_ROUTES } from './app.ts';
import { PaymentEngine } from '@stripe402/server';
import { createStripeClient, StripeSdkGateway, type StripeGateway } from '@stripe402/server';
import { deploymentIdOf } from '@stripe402/server';
import { proxyList, requireHttpsForPayments } from '@stripe402/server';
import { openLedger } from '@stripe402/server/ledger';
import type { Ledger } from '@stripe402/server/ledger';
import type { RateLimitOptions } from '@stripe402/server';
import { jsonLogger, redact, scrub, type LogSink } from '@stripe402/server';
import { compileRoutes, type PaidRouteConfig } from '@stripe402/server';

export const DEFAULT_PORT = 4021;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './data';

export interface ServerOptions {
  /** Default 4021; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). Test mode binds loopback only, unless `publicTestMode`. */
  host?: string;
  /** Let test mode (no live key) listen on a non-loopback address: a shared demo or staging server that handles no real money. Never with the in-process emulator under NODE_ENV=production. */
  publicTestMode?: boolean;
  /**
   * Addresses (or CIDR blocks) of the reverse proxies in front of this
   * server that terminate TLS. With a live key on a non-loopback address the
   * server refuses to start without one, since it speaks plain HTTP itself;
   * with a live key and proxies, a `payment` header is taken only from a
   * proxy that sends `X-Forwarded-Proto: https`, or from loopback (SEC-1).
   * Their X-Forwarded-For also names the client for the rate limits (SEC-10).
   */
  trustedProxies?: readonly string[];
  /** The process environment consulted for NODE_ENV (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** A ledger URL (`pglite:DIR`, `pglite:memory`, `postgres://...`, `redis://...`) or an open Ledger (then the caller closes it). Default `pglite:<dataDir>/ledger`. */
  ledger?: string | Ledger;
  /** Schema (SQL) or key prefix (Redis) of a ledger opened from a URL. */
  ledgerSchema?: string;
  ledgerKeyPrefix?: string;
  /** Where the embedded ledger and the generated test-mode server secret live; default ./data. */
  dataDir?: string;
  /** `sk_test_...` / `sk_live_...`. Absent (and no stripeUrl): the emulator is started in-process. */
  stripeSecretKey?: string;
  stripePublishableKey?: string;
  /** A Stripe-compatible API base URL (an emulator, stripe-mock); real Stripe when absent. */
  stripeUrl?: string;
  /** Per-request Stripe timeout in ms (default 30 s). */
  stripeTimeoutMs?: number;
  /** At least 32 bytes. Required with a live key; generated and kept in dataDir in test mode. */
  serverSecret?: string;
  /** The paid routes; default the demo's. */
  routes?: readonly PaidRouteConfig[];
  /** Stripe webhook signing secret; enables POST /stripe402/webhook. */
  webhookSecret?: string;
  /** The largest webhook body read (default 256 KiB); larger ones get 413 before they are buffered. */
  webhookMaxBytes?: number;
  /** JSON log lines; default stdout, false for none. */
  log?: LogSink | false;
  /** `return_url` of every PaymentIntent, so Stripe offers a next-action URL for card authentication (AUTH-1). */
  returnUrl?: string;
  /** Check minTopUp against Stripe's minimum charges (default true). */
  enforceStripeMinimums?: boolean;
  retryAfterSeconds?: number;
  /** How long the top-up lock of a process that died holding it blocks that client's top-ups (default 60 s; keep it above the longest Stripe call with its retries). */
  topUpLockTtlMs?: number;
  /** Rate limits (SEC-3, SEC-7, SEC-8); default DEFAULT_RATE_LIMITS of limits.ts, false for none (docs/rate-limits.md). */
  rateLimits?: RateLimitOptions | false;
  /** How long a recorded keyed top-up's Stripe Idempotency-Key is trusted to replay (PROC-12); default 23 hours. For tests of what follows Stripe's window. */
  stripeIdempotencyWindowMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  engine: PaymentEngine;
  ledger: Ledger;
  gateway: StripeGateway;
  /** This deployment's public id, written into every PaymentIntent's metadata (LEDG-9). */
  deploymentId: string;
  /** Set when the emulator was started in-process (test mode). */
  emulator?: { url: string };
  testMode: boolean;
  /** Stops accepting connections, finishes in-flight requests, then closes what this server opened. */
  close(): Promise<void>;
}

/** Starts the server and resolves once it listens. */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const log: LogSink = options.log === false ? () => {} : (options.log ?? jsonLogger());
  const dataDir = path.resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const toClose: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of toClose.reverse()) await close().catch(() => {});
  };

  // Refuse a bad route table before starting anything (MSG-7, UNIT-6); the engine checks it again.
  compileRoutes(options.routes ?? DEMO_ROUTES, { enforceStripeMinimums: options.enforceStripeMinimums ?? true });
  const host = options.host ?? DEFAULT_HOST;
  checkExposure(options, host);
  // A typo in a proxy address would otherwise surface as every payment refused.
  proxyList(options.trustedProxies ?? []);

  try {
    // Stripe: a key and maybe a URL, or the emulator in-process.
    let secretKey = options.stripeSecretKey;
    let publishableKey = options.stripePublishableKey;
    let stripeUrl = options.stripeUrl;
    let webhookSecret = options.webhookSecret;
    let emulator: { url: string; setWebhook?: (webhook: { url: string; secret: string } | null) => void } | undefined;
    if (!secretKey && !stripeUrl) {
      const { startEmulator } = await import('@stripe402/stripe-emulator');
      const started = await startEmulator({ host: '127.0.0.1', port: 0 });
      toClose.push(() => started.close());
      emulator = started as typeof emulator;
      stripeUrl = started.url;
      secretKey = started.secretKey;
      publishableKey = started.publishableKey;
      webhookSecret ??= `whsec_${randomBytes(24).toString('hex')}`;
    }
    if (!secretKey) secretKey = 'sk_test_emulator';
    publishableKey ??= secretKey.startsWith('sk_test_') && stripeUrl ? 'pk_test_emulator' : undefined;
    if (!publishableKey) throw new Error('STRIPE_PUBLISHABLE_KEY is required with a Stripe secret key');
    const live = /^(sk|rk)_live_/.test(secretKey);
    if (live !== publishableKey.startsWith('pk_live_')) throw new Error('the Stripe secret and publishable keys must both be live or both be test keys');

    if (live && !isLoopback(host) && (options.trustedProxies ?? []).length === 0) {
      throw new Error(
        `refusing to serve a live Stripe key over plain HTTP on ${host} (SEC-1): put a reverse proxy that terminates TLS in front of this server and name it with --trusted-proxy, or listen on loopback`,
      );
    }
    const serverSecret = resolveServerSecret(options.serverSecret, live, dataDir, log);
    const deploymentId = deploymentIdOf(serverSecret);
    const gateway = new StripeSdkGateway(createStripeClient(secretKey, { ...(stripeUrl ? { apiUrl: stripeUrl } : {}), timeoutMs: options.stripeTimeoutMs ?? 30_000 }), {
      deploymentId,
    });

    let ledger: Ledger;
    if (typeof options.ledger === 'object' && options.ledger !== null) {
      ledger = options.ledger;
    } else {
      const url = options.ledger ?? `pglite:${path.join(dataDir, 'ledger')}`;
      if (url.startsWith('pglite:') && url !== 'pglite:memory') mkdirSync(path.dirname(path.resolve(url.slice('pglite:'.length))), { recursive: true });
      ledger = await openLedger(url, {
        ...(options.ledgerSchema ? { schema: options.ledgerSchema } : {}),
        ...(options.ledgerKeyPrefix ? { keyPrefix: options.ledgerKeyPrefix } : {}),
      });
      toClose.push(() => ledger.close());
    }

    const engine = new PaymentEngine({
      ledger,
      gateway,
      serverSecret,
      publishableKey,
      routes: options.routes ?? DEMO_ROUTES,
      enforceStripeMinimums: options.enforceStripeMinimums ?? true,
      ...(options.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: options.retryAfterSeconds }),
      ...(options.topUpLockTtlMs === undefined ? {} : { topUpLockTtlMs: options.topUpLockTtlMs }),
      ...(options.returnUrl ? { returnUrl: options.returnUrl } : {}),
      ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
      ...(options.stripeIdempotencyWindowMs === undefined ? {} : { stripeIdempotencyWindowMs: options.stripeIdempotencyWindowMs }),
      onInternalError: (event) =>
        log({ msg: 'internal error', level: 'error', stage: event.stage, route: event.route, clientId: redact(event.clientId), detail: scrub(event.detail) }),
    });
    // Without a log sink, no request logger at all: it would only cost time per request.
    const app = createDemoApp({
      engine,
      ...(options.log === false ? {} : { log }),
      ...(webhookSecret ? { webhookSecret } : {}),
      ...(options.webhookMaxBytes === undefined ? {} : { webhookMaxBytes: options.webhookMaxBytes }),
      ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
      ...(live && (options.trustedProxies ?? []).length > 0 ? { transport: requireHttpsForPayments(options.trustedProxies!) } : {}),
    });

    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: options.port ?? DEFAULT_PORT, hostname: host }, () => resolve(s));
      s.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    if (!live && !isLoopback(host)) log({ msg: `test mode on ${host}, a non-loopback address (--public-test-mode): anyone who reaches it gets paid content with test cards`, level: 'warn' });
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    toClose.push(
      () =>
        new Promise<void>((resolve) => {
          // close() waits for in-flight requests; idle keep-alive sockets would hold it open, so drop those.
          server.close(() => resolve());
          (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }),
    );
    if (emulator?.setWebhook && webhookSecret) emulator.setWebhook({ url: `${url}/stripe402/webhook`, secret: webhookSecret });

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      host,
      engine,
      ledger,
      gateway,
      deploymentId,
      ...(emulator ? { emulator: { url: emulator.url } } : {}),
      testMode: !live,
      close: () => (closing ??= closeAll()),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * The server secret (CID-2): given (and long enough), or in test mode read
 * from, or generated into, `<dataDir>/server-secret`, so client ids survive
 * restarts. A live key never runs on a generated secret.
 */
export function resolveServerSecret(given: string | undefined, live: boolean, dataDir: string, log: LogSink): string {
  if (given !== undefined && given !== '') {
    if (!isStrongServerSecret(given)) throw new Error(`STRIPE402_SERVER_SECRET must be at least ${SERVER_SECRET_MIN_BYTES} bytes`);
    const weakness = live ? secretWeakness(given) : undefined;
    if (weakness) throw new Error(`STRIPE402_SERVER_SECRET ${weakness}: with a live key use ${SERVER_SECRET_MIN_BYTES} random bytes (for example \`openssl rand -hex 32\`)`);
    return given;
  }
  if (live) throw new Error(`a live Stripe key needs STRIPE402_SERVER_SECRET (at least ${SERVER_SECRET_MIN_BYTES} bytes); it derives every client id`);
  const file = path.join(dataDir, 'server-secret');
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (!isStrongServerSecret(secret)) throw new Error(`${file} holds a server secret shorter than ${SERVER_SECRET_MIN_BYTES} bytes`);
    log({ msg: 'test mode: using the server secret kept in ' + file });
    return secret;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  log({ msg: 'test mode: generated a server secret and kept it in ' + file + ' (set STRIPE402_SERVER_SECRET to choose one)' });
  return secret;
}

/**
 * Why a server secret looks chosen rather than random, or undefined. Only
 * the obvious is caught (a repeated pattern, few distinct characters, little
 * entropy by character frequency); a secret that passes is not thereby
 * strong, but one that fails is certainly weak.
 */
export function secretWeakness(secret: string): string | undefined {
  const chars = [...secret];
  for (let period = 1; period <= chars.length / 2; period++) {
    if (chars.every((ch, i) => ch === chars[i % period])) return `repeats a pattern of ${period} character${period === 1 ? '' : 's'}`;
  }
  const counts = new Map<string, number>();
  for (const ch of chars) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  if (counts.size < 8) return `has only ${counts.size} distinct characters`;
  let bits = 0;
  for (const n of counts.values()) bits -= n * Math.log2(n / chars.length);
  // 32 random hex digits estimate at about 110 bits; a word or a keyboard walk far below.
  if (bits < 80) return `looks far from random (about ${Math.round(bits)} bits by character frequency)`;
  return undefined;
}

/**
 * Test mode (no live key) is for loopback and for deployments that say
 * they are public on purpose; the in-process emulator, whose "payments"
 * anyone can make with a test card, never runs under NODE_ENV=production.
 */
function checkExposure(options: ServerOptions, host: string): void {
  const env = options.env ?? process.env;
  const live = /^(sk|rk)_live_/.test(options.stripeSecretKey ?? '');
  if (live) return;
  const inProcessEmulator = !options.stripeSecretKey && !options.stripeUrl;
  if (env.NODE_ENV === 'production' && (inProcessEmulator || !options.publicTestMode)) {
    throw new Error(
      inProcessEmulator
        ? 'NODE_ENV is production but no STRIPE_SECRET_KEY is set: refusing to start the test-mode Stripe emulator in production (set STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY)'
        : 'NODE_ENV is production but the Stripe key is a test key: refusing to start (use live keys, or --public-test-mode for a staging server that handles no real money)',
    );
  }
  if (!isLoopback(host) && !options.publicTestMode) {
    throw new Error(
      `refusing to listen on ${host} in test mode: anyone who reaches it gets paid content with test cards. Listen on 127.0.0.1, set live Stripe keys, or pass --public-test-mode for a shared demo that handles no real money`,
    );
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
