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
 * (DISC-1) and, given a secret, the Stripe webhook (LEDG-6).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { DISCOVERY_PATH, HEADER_PAYMENT } from '../core/codec.ts';
import { EXPOSED_HEADERS, type DecisionContext, type PaymentEngine } from './engine.ts';
import { handleWebhook } from './recovery.ts';
import { pathnameOf } from './routes.ts';

export const DEFAULT_WEBHOOK_PATH = '/stripe402/webhook';

export interface Stripe402MiddlewareOptions {
  engine: PaymentEngine;
  /** Serve GET /.well-known/stripe402 (DISC-1); default true. */
  discovery?: boolean;
  /** Receive Stripe webhooks, verified with this signing secret (`whsec_...`). */
  webhookSecret?: string;
  webhookPath?: string;
}

/** What the middleware leaves in the context for loggers (`c.get('stripe402')`); ids unredacted, redact before logging. */
export type Stripe402Variables = { stripe402?: DecisionContext & { paid: boolean; restored?: boolean } };

/** The paywall middleware factory. */
export function stripe402(options: Stripe402MiddlewareOptions): MiddlewareHandler {
  const { engine } = options;
  const serveDiscovery = options.discovery ?? true;
  const webhookPath = options.webhookPath ?? DEFAULT_WEBHOOK_PATH;
  const webhookSecret = options.webhookSecret;
  // The document only changes with the route table, which is fixed at construction.
  const discoveryBody = JSON.stringify(engine.discovery());

  return async function stripe402Paywall(c: Context, next) {
    const method = c.req.method;
    const path = pathnameOf(c.req.url);

    if (serveDiscovery && (method === 'GET' || method === 'HEAD') && path === DISCOVERY_PATH) {
      return c.body(discoveryBody, 200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' });
    }
    if (webhookSecret !== undefined && method === 'POST' && path === webhookPath) {
      const result = await handleWebhook({ gateway: engine.gateway, ledger: engine.ledger }, await c.req.text(), c.req.header('stripe-signature'), webhookSecret);
      return c.json(result.body, result.status);
    }

    const match = engine.match(method, path);
    if (!match) return next();

    // Every field line of `payment`: Headers joins repeated lines with ", ", which the codec rejects (ENC-9).
    const decision = await engine.handle(match, c.req.raw.headers.get(HEADER_PAYMENT));
    if (decision.kind === 'respond') {
      c.set('stripe402', { ...decision.context, paid: false });
      // Hono drops the body of a HEAD response itself.
      return c.body(decision.body, decision.status, decision.headers);
    }

    await next();
    const settlement = await engine.settle(decision.grant, c.res.status);
    c.set('stripe402', { ...decision.context, paid: !settlement.restored, restored: settlement.restored });
    for (const [name, value] of Object.entries(settlement.headers)) c.header(name, value);
  };
}

export { EXPOSED_HEADERS };
