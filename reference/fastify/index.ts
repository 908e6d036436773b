/**
 * @stripe402/fastify: the stripe402 paywall as a Fastify 5 plugin, a thin
 * shell over the payment engine of @stripe402/server with the same
 * options, behaviour and errors as the Hono middleware. Register it on the
 * root instance, before the routes:
 *
 *   await app.register(stripe402, { engine });
 *   app.get('/api/joke', async () => ({ joke }));   // paid: listed in the engine's routes
 *
 * The plugin is not encapsulated (it applies to every route of the app,
 * including the 404 handler, so a path variant of a paid route pays too,
 * PAY-1 to PAY-3). It decides in an `onRequest` hook, before Fastify reads
 * the body, so the route's body parser sees the body untouched; it settles
 * in `onSend`, which every reply passes, error replies included, before
 * its headers are written. Options are checked when the plugin loads, so a
 * misconfigured app fails at `ready()` / `listen()`.
 *
 * @module @stripe402/fastify
 */
import type { IncomingMessage } from 'node:http';
import { HEADER_PAYMENT } from '@stripe402/core';
import { createPaywall, pathnameOf, readBounded, type Grant, type Stripe402Options } from '@stripe402/server';

export { DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES, EXPOSED_HEADERS, type Stripe402Options } from '@stripe402/server';

/** What the plugin leaves on `request.stripe402` for loggers; ids unredacted, redact before logging. */
export type Stripe402Record = Record<string, unknown> & { paid: boolean; restored?: boolean };

// The Fastify types this file relies on, structurally, so that the plugin's
// declarations need no import of fastify's (the app's own copy decides).
interface Reply {
  statusCode: number;
  code(status: number): Reply;
  header(name: string, value: string): Reply;
  send(payload?: unknown): Reply;
}
interface Request {
  raw: IncomingMessage;
  method: string;
  stripe402?: Stripe402Record;
}
interface Instance {
  addHook(name: 'onRequest', hook: (request: Request, reply: Reply) => Promise<unknown>): unknown;
  addHook(name: 'onSend', hook: (request: Request, reply: Reply, payload: unknown) => Promise<unknown>): unknown;
  decorateRequest(name: string, value: unknown): unknown;
}

/** The plugin: `app.register(stripe402, { engine })`. */
export async function stripe402(fastify: Instance, options: Stripe402Options): Promise<void> {
  // Fastify reads its own keys from the same object (prefix, logLevel, logSerializers): the rest are ours.
  const { prefix: _prefix, logLevel: _logLevel, logSerializers: _logSerializers, ...ours } = (options ?? {}) as Stripe402Options & Record<string, unknown>;
  const paywall = createPaywall(ours as Stripe402Options, 'fastify');
  const grants = new WeakMap<IncomingMessage, Grant>();
  fastify.decorateRequest('stripe402', undefined);

  fastify.addHook('onRequest', async (request, reply) => {
    const method = request.method;
    const route = paywall.route(method, pathnameOf(request.raw.url ?? '/'));
    if (route.kind === 'free') return;
    if (route.kind === 'discovery') {
      return send(reply, method, paywall.discovery.status, paywall.discovery.headers, paywall.discovery.body);
    }
    if (route.kind === 'webhook') {
      // Before Fastify parses it: the exact bytes Stripe signed, capped while they stream in.
      const body = await readBounded(request.raw, headerOf(request.raw, 'content-length'), paywall.webhookMaxBytes);
      if (body === undefined) {
        const { status, headers, body: answer } = paywall.webhookTooLarge;
        return send(reply, method, status, headers, answer);
      }
      const result = await paywall.webhook(body, headerOf(request.raw, 'stripe-signature'));
      return send(reply, method, result.status, { 'content-type': 'application/json' }, JSON.stringify(result.body));
    }
    const decision = await paywall.engine.handle(route.match, headerOf(request.raw, HEADER_PAYMENT), paywall.sourceOf(request.raw.socket?.remoteAddress, headerOf(request.raw, 'x-forwarded-for')));
    const record = decision.context as Stripe402Record;
    request.stripe402 = record;
    if (decision.kind === 'respond') {
      record.paid = false;
      return send(reply, method, decision.status, decision.headers, decision.body);
    }
    grants.set(request.raw, decision.grant);
    return;
  });

  fastify.addHook('onSend', async (request, reply, payload) => {
    const grant = grants.get(request.raw);
    if (grant === undefined) return payload;
    grants.delete(request.raw);
    const settlement = await paywall.engine.settle(grant, reply.statusCode);
    if (request.stripe402) {
      request.stripe402.paid = !settlement.restored;
      request.stripe402.restored = settlement.restored;
    }
    // Replaces the handler's headers of the same name (its cache-control never outlives a payment-response, ENC-15).
    for (const name in settlement.headers) reply.header(name, settlement.headers[name]!);
    return payload;
  });
}

// Not encapsulated: the hooks apply to the whole app (what fastify-plugin does, without the dependency).
(stripe402 as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(stripe402 as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = '@stripe402/fastify';
(stripe402 as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')] = { name: '@stripe402/fastify', fastify: '5.x' };

export default stripe402;

function headerOf(raw: IncomingMessage, name: string): string | null {
  const value = raw.headers[name];
  if (value === undefined) return null;
  // Node joins repeated lines of an unknown field with ", ", which the codec rejects (ENC-9).
  return typeof value === 'string' ? value : value.join(', ');
}

function send(reply: Reply, method: string, status: number, headers: Record<string, string>, body: string): Reply {
  reply.code(status);
  for (const name in headers) reply.header(name, headers[name]!);
  return reply.send(method === 'HEAD' ? undefined : body);
}
