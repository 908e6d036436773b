/**
 * The Hono middleware: a thin shell over the payment engine, and with the
 * standalone server the only code that imports Hono. Register it once, at
 * the app level, before the routes:
 *
 *   const engine = new PaymentEngine({ ledger, gateway, serverSecret, publishableKey, routes });
 *   app.use(stripe402({ engine }));
 *   app.get('/api/joke', (c) => c.json({ joke }));   // paid: listed in routes
 *
 * Paid routes are a table (like stripe402 v1's `routes`), not per-handler
 * middleware, because the guard has to see every request: a path or method
 * variant of a paid route (trailing slash, letter case, duplicate slashes,
 * percent-encoding, dot segments, HEAD, a mount prefix) may reach the paid
 * handler or another one (a wildcard, a sub-app), and must pay either way
 * (PAY-1 to PAY-3). The same middleware serves the discovery document
 * (DISC-1) and, given a secret, the Stripe webhook (LEDG-6). The webhook
 * body is the only body the middleware reads; it is capped while it
 * streams in (a declared or actual length over the cap is answered 413
 * before more is read), so a large post costs no memory.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { DISCOVERY_PATH, HEADER_PAYMENT } from '../core/codec.ts';
import { EXPOSED_HEADERS, type DecisionContext, type PaymentEngine } from './engine.ts';
import { sourceOf, TrustedProxies } from './limits.ts';
import { handleWebhook } from './recovery.ts';
import { pathnameOf } from './routes.ts';

export const DEFAULT_WEBHOOK_PATH = '/stripe402/webhook';
/** Stripe's event payloads are a few kilobytes; 256 KiB leaves ample room. */
export const DEFAULT_WEBHOOK_MAX_BYTES = 256 * 1024;

export interface Stripe402MiddlewareOptions {
  engine: PaymentEngine;
  /** Serve GET /.well-known/stripe402 (DISC-1); default true. */
  discovery?: boolean;
  /** Receive Stripe webhooks, verified with this signing secret (`whsec_...`). */
  webhookSecret?: string;
  webhookPath?: string;
  /** Proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client for the rate limits; default none (the peer address counts). */
  trustedProxies?: readonly string[];
  /** The largest webhook body read, in bytes (default 256 KiB); larger ones get 413 unread. */
  webhookMaxBytes?: number;
}

/** What the middleware leaves in the context for loggers (`c.get('stripe402')`); ids unredacted, redact before logging. */
export type Stripe402Variables = { stripe402?: DecisionContext & { paid: boolean; restored?: boolean } };

/** The paywall middleware factory. */
export function stripe402(options: Stripe402MiddlewareOptions): MiddlewareHandler {
  const { engine } = options;
  const serveDiscovery = options.discovery ?? true;
  const webhookPath = options.webhookPath ?? DEFAULT_WEBHOOK_PATH;
  const webhookSecret = options.webhookSecret;
  const trustedProxies = options.trustedProxies?.length ? new TrustedProxies(options.trustedProxies) : undefined;
  const webhookMaxBytes = options.webhookMaxBytes ?? DEFAULT_WEBHOOK_MAX_BYTES;
  const deploymentId = engine.gateway.deploymentId;
  if (webhookSecret !== undefined && !deploymentId) {
    // Without it every PaymentIntent would be someone else's, or (worse) every one would be ours (LEDG-9).
    throw new TypeError('the Stripe webhook needs a gateway that names its deployment (StripeSdkGateway option deploymentId)');
  }
  // The document only changes with the route table, which is fixed at construction.
  const discoveryBody = JSON.stringify(engine.discovery());

  return async function stripe402Paywall(c: Context, next) {
    const method = c.req.method;
    const path = pathnameOf(c.req.url);

    if (serveDiscovery && (method === 'GET' || method === 'HEAD') && path === DISCOVERY_PATH) {
      return c.body(discoveryBody, 200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' });
    }
    if (webhookSecret !== undefined && method === 'POST' && path === webhookPath) {
      // A middleware ahead of this one may have read the body already (Hono keeps a copy): then only its size is checked.
      const body = c.req.raw.bodyUsed ? await c.req.text().then((text) => (Buffer.byteLength(text) > webhookMaxBytes ? undefined : text)) : await readBounded(c.req.raw, webhookMaxBytes);
      if (body === undefined) {
        // The rest of the body is never read: close the connection rather than drain it.
        return c.json({ received: false, error: 'body too large' }, 413, { connection: 'close' });
      }
      const result = await handleWebhook({ gateway: engine.gateway, ledger: engine.ledger, deploymentId: deploymentId! }, body, c.req.header('stripe-signature'), webhookSecret);
      return c.json(result.body, result.status);
    }

    const match = engine.match(method, path);
    if (!match) return next();

    const decision = await engine.handle(match, paymentHeaderOf(c), sourceOfRequest(c, trustedProxies));
    // The decision's context is this request's own object: it becomes the log record as it is.
    const record = decision.context as NonNullable<Stripe402Variables['stripe402']>;
    if (decision.kind === 'respond') {
      record.paid = false;
      c.set('stripe402', record);
      // Hono drops the body of a HEAD response itself.
      return c.body(decision.body, decision.status, decision.headers);
    }

    await next();
    const settlement = await engine.settle(decision.grant, c.res.status);
    record.paid = !settlement.restored;
    record.restored = settlement.restored;
    c.set('stripe402', record);
    setResponseHeaders(c, settlement.headers);
  };
}

/**
 * The request body as UTF-8 text, or undefined as soon as it is known to
 * exceed `maxBytes`: from its Content-Length before anything is read, or
 * while it streams in (chunked bodies, lying lengths), without buffering
 * more than the cap.
 */
async function readBounded(request: Request, maxBytes: number): Promise<string | undefined> {
  const declared = request.headers.get('content-length');
  if (declared !== null && !(/^\d{1,15}$/.test(declared) && Number(declared) <= maxBytes)) return undefined;
  if (request.body === null) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/**
 * The raw `payment` field value. On @hono/node-server, read from Node's
 * parsed request headers: building the Fetch `Headers` of the request only
 * for this costs more than the rest of the lookup. Either way, repeated
 * field lines arrive joined with ", ", which the codec rejects (ENC-9).
 */
function paymentHeaderOf(c: Context): string | null {
  const incoming = (c.env as { incoming?: { headers?: Record<string, string | string[] | undefined> } } | undefined)?.incoming;
  if (incoming?.headers !== undefined) {
    const value = incoming.headers[HEADER_PAYMENT];
    if (value === undefined) return null;
    return typeof value === 'string' ? value : value.join(', ');
  }
  return c.req.raw.headers.get(HEADER_PAYMENT);
}

/** The network a request came from, for the engine's rate limits: the peer on @hono/node-server, behind a trusted proxy the client it names. */
function sourceOfRequest(c: Context, trusted: TrustedProxies | undefined): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  const peer = incoming?.socket?.remoteAddress;
  return sourceOf(peer, trusted && peer !== undefined && trusted.has(peer) ? c.req.header('x-forwarded-for') : undefined, trusted);
}

/**
 * Adds headers to the handler's response in place, replacing any the
 * handler set (its cache-control never outlives a payment-response, ENC-15).
 * `c.header` after the handler would copy the response around a body
 * stream first, which costs more than the payment itself; a response whose
 * headers are immutable (a proxied fetch response) still gets them through
 * that copy.
 */
function setResponseHeaders(c: Context, headers: Record<string, string>): void {
  try {
    const target = c.res.headers;
    for (const name in headers) target.set(name, headers[name]!);
  } catch {
    for (const name in headers) c.header(name, headers[name]!);
  }
}

export { EXPOSED_HEADERS };
