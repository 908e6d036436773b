/**
 * The Hono middleware: a thin shell over the payment engine (@stripe402/server),
 * and with the standalone server the only code that imports Hono. Register it once, at
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
import { HEADER_PAYMENT } from '@stripe402/core';
import { createPaywall, EXPOSED_HEADERS, pathnameOf, readBounded, type DecisionContext, type Paywall, type Stripe402Options } from '@stripe402/server';

export { DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES } from '@stripe402/server';

/** The options of every stripe402 adapter (engine, discovery, webhookSecret, webhookPath, webhookMaxBytes, trustedProxies). */
export type Stripe402MiddlewareOptions = Stripe402Options;

/** What the middleware leaves in the context for loggers (`c.get('stripe402')`); ids unredacted, redact before logging. */
export type Stripe402Variables = { stripe402?: DecisionContext & { paid: boolean; restored?: boolean } };

/** The paywall middleware factory. */
export function stripe402(options: Stripe402MiddlewareOptions): MiddlewareHandler {
  // Checks the options now, so a misconfigured app fails at start-up.
  const paywall = createPaywall(options, 'hono');
  const { engine, webhookMaxBytes } = paywall;

  return async function stripe402Paywall(c: Context, next) {
    const method = c.req.method;
    const route = paywall.route(method, pathnameOf(c.req.url));

    if (route.kind === 'discovery') {
      return c.body(paywall.discovery.body, 200, paywall.discovery.headers);
    }
    if (route.kind === 'webhook') {
      // A middleware ahead of this one may have read the body already (Hono keeps a copy): then only its size is checked.
      const body = c.req.raw.bodyUsed
        ? await c.req.text().then((text) => (Buffer.byteLength(text) > webhookMaxBytes ? undefined : text))
        : await readBounded(c.req.raw.body, c.req.raw.headers.get('content-length'), webhookMaxBytes);
      if (body === undefined) {
        // The rest of the body is never read: close the connection rather than drain it.
        const { status, headers, body: answer } = paywall.webhookTooLarge;
        return c.body(answer, status, headers);
      }
      const result = await paywall.webhook(body, c.req.header('stripe-signature'));
      return c.json(result.body, result.status);
    }
    if (route.kind === 'free') return next();

    const decision = await engine.handle(route.match, paymentHeaderOf(c), sourceOfRequest(c, paywall));
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
function sourceOfRequest(c: Context, paywall: Paywall): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return paywall.sourceOf(incoming?.socket?.remoteAddress, c.req.header('x-forwarded-for'));
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
