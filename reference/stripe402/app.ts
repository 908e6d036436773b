/**
 * The demo paid API that `npm start` serves: a free health check, paid
 * routes at several prices (one of them in a zero-decimal currency and one
 * that always fails, to watch credits come back), behind the stripe402
 * paywall, with CORS for browser clients and one JSON log line per request.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HEADER_PAYMENT } from '@stripe402/core';
import { EXPOSED_HEADERS, type PaymentEngine } from '@stripe402/server';
import { redact, scrub, type LogSink } from '@stripe402/server';
import { stripe402, type Stripe402Variables } from '@stripe402/hono';
import { pathnameOf, type PaidRouteConfig } from '@stripe402/server';

/** The demo's price list. 1 unit = 1/10,000 of the major unit: 100 units = $0.01, 50,000 = $5.00. */
export const DEMO_ROUTES: readonly PaidRouteConfig[] = Object.freeze([
  { method: 'GET', path: '/api/joke', amount: 100, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'A random joke', mimeType: 'application/json' },
  { method: 'GET', path: '/api/weather', amount: 500, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'Simulated weather for a city (?city=)', mimeType: 'application/json' },
  { method: 'POST', path: '/api/echo', amount: 50, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'Echoes the request body', mimeType: 'application/json' },
  {
    method: 'GET',
    path: '/api/fortune',
    description: 'A fortune, priced in yen (zero-decimal) or in dollars',
    mimeType: 'application/json',
    accepts: [
      { currency: 'jpy', amount: 10_000, minTopUp: 1_000_000, maxTopUp: 100_000_000 },
      { currency: 'usd', amount: 100, minTopUp: 50_000, maxTopUp: 10_000_000 },
    ],
  },
  { method: 'GET', path: '/api/fail', amount: 100, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'Always answers 500: the credits come back', mimeType: 'application/json' },
]);

const JOKES = [
  'There are 10 kinds of people: those who understand binary and those who do not.',
  'A SQL query walks into a bar, sees two tables and asks: may I join you?',
  'HTTP 402 waited 27 years for this joke.',
  'I would tell you a UDP joke, but you might not get it.',
];
const FORTUNES = ['A small payment brings great rewards.', 'Your balance will never go below zero.', 'An idempotency key protects you today.'];

export interface DemoAppOptions {
  engine: PaymentEngine;
  webhookSecret?: string;
  webhookMaxBytes?: number;
  /** Runs before the paywall, for example `requireHttpsForPayments` behind a TLS proxy (SEC-1). */
  transport?: MiddlewareHandler;
  log?: LogSink;
  /** Proxies whose X-Forwarded-For names the client (rate limits, docs/rate-limits.md). */
  trustedProxies?: readonly string[];
}

/**
 * The demo app. Paid routes are plain handlers: the paywall in front of them
 * owns the price list. A demo handler is mounted only when the engine's
 * route table prices its method and path, so a custom table (`--routes`)
 * that leaves a demo route out leaves it unanswered (404), never free.
 */
export function createDemoApp(options: DemoAppOptions): Hono<{ Variables: Stripe402Variables }> {
  const app = new Hono<{ Variables: Stripe402Variables }>();
  const log = options.log;
  if (log) app.use(requestLogger(log));
  if (options.transport) app.use(options.transport);
  app.use(openCors());
  app.use(
    stripe402({
      engine: options.engine,
      ...(options.webhookSecret ? { webhookSecret: options.webhookSecret } : {}),
      ...(options.webhookMaxBytes === undefined ? {} : { webhookMaxBytes: options.webhookMaxBytes }),
      ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    }),
  );
  const priced = (method: string, path: string) => options.engine.match(method, path) !== null;

  app.get('/health', (c) => c.json({ status: 'ok' }));
  if (priced('GET', '/api/joke')) app.get('/api/joke', (c) => c.json({ joke: JOKES[Math.floor(Math.random() * JOKES.length)] }));
  if (priced('GET', '/api/weather')) {
    app.get('/api/weather', (c) => {
      const city = (c.req.query('city') ?? 'Paris').slice(0, 64);
      return c.json({ city, temperatureC: 12 + (hash(city) % 15), conditions: ['sunny', 'cloudy', 'rain', 'windy'][hash(city) % 4] });
    });
  }
  if (priced('POST', '/api/echo')) {
    // The body is read whole to echo it: cap it while it streams (413 beyond 1 MiB).
    app.post('/api/echo', bodyLimit({ maxSize: 1024 * 1024, onError: (c) => c.json({ error: 'body_too_large' }, 413) }), async (c) => {
      const type = c.req.header('content-type') ?? 'application/octet-stream';
      return c.body(await c.req.arrayBuffer(), 200, { 'content-type': type });
    });
  }
  if (priced('GET', '/api/fortune')) app.get('/api/fortune', (c) => c.json({ fortune: FORTUNES[Math.floor(Math.random() * FORTUNES.length)] }));
  if (priced('GET', '/api/fail')) app.get('/api/fail', (c) => c.json({ error: 'this resource always fails' }, 500));

  app.notFound((c) => c.json({ error: 'not_found' }, 404));
  // Never a stack trace to a client (ERR-4); the log keeps the detail.
  app.onError((error, c) => {
    log?.({ msg: 'handler error', level: 'error', path: new URL(c.req.url).pathname, error: scrub(error instanceof Error ? error.message : String(error)) });
    return c.json({ error: 'internal_error' }, 500);
  });
  return app;
}

/**
 * CORS for browser clients: any origin may call the API and read the
 * stripe402 headers (ENC-12); preflights are answered here, free. It sets
 * its headers before the handler runs, through `c.header`, so they travel
 * with the handler's response as it is built. (hono/cors sets them on
 * `c.res` instead, which makes Hono rebuild every response around a body
 * stream, several times the cost of a small JSON answer.)
 */
export function openCors(): MiddlewareHandler {
  const allowMethods = 'GET,HEAD,POST,OPTIONS';
  const allowHeaders = `${HEADER_PAYMENT},content-type`;
  return async function stripe402Cors(c, next) {
    c.header('access-control-allow-origin', '*');
    // One string, so every response spells the list the same way as the paywall does (ENC-12).
    c.header('access-control-expose-headers', EXPOSED_HEADERS);
    if (c.req.method === 'OPTIONS') {
      c.header('access-control-allow-methods', allowMethods);
      c.header('access-control-allow-headers', allowHeaders);
      c.header('access-control-max-age', '600');
      return c.body(null, 204);
    }
    await next();
  };
}

/** One log line per request; ids redacted (SEC-2), no query string (it may hold anything). */
export function requestLogger(log: LogSink) {
  return async function stripe402RequestLogger(c: Context<{ Variables: Stripe402Variables }>, next: () => Promise<void>) {
    const started = performance.now();
    await next();
    const payment = c.get('stripe402');
    const entry: Record<string, unknown> & { msg: string } = {
      msg: 'request',
      method: c.req.method,
      path: pathnameOf(c.req.url),
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (payment) {
      if (payment.clientId) entry.clientId = redact(payment.clientId);
      if (payment.paymentMethodId) entry.paymentMethod = redact(payment.paymentMethodId);
      if (payment.errorCode) entry.errorCode = payment.errorCode;
      if (payment.chargeId) entry.chargeId = payment.chargeId;
      if (payment.restored) entry.restored = true;
      if (payment.limited) entry.limited = payment.limited;
    }
    log(entry);
  };
}

function hash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return h;
}
