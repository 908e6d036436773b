/**
 * @stripe402/express: the stripe402 paywall as Express middleware (Express 4
 * and 5), a thin shell over the payment engine of @stripe402/server with the
 * same options, behaviour and errors as the Hono middleware. Register it
 * once, at the app level, before the routes:
 *
 *   app.use(stripe402({ engine }));
 *   app.get('/api/joke', (req, res) => res.json({ joke }));   // paid: listed in the engine's routes
 *
 * It never reads a paid request's body, so a body parser mounted before or
 * after it works as usual. The payment-response header has to be on the
 * handler's response, and the settlement that produces it (a ledger call
 * when the handler fails) is asynchronous, so the first write of the
 * response (writeHead, write or end) is held until the settlement is known,
 * then replayed with the header set.
 *
 * @module @stripe402/express
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HEADER_PAYMENT } from '@stripe402/core';
import { createPaywall, pathnameOf, readBounded, type Grant, type PaymentEngine, type Stripe402Options } from '@stripe402/server';

export { DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES, EXPOSED_HEADERS, type Stripe402Options } from '@stripe402/server';

/** The request as the middleware reads it: Node's, with Express's `originalUrl` when mounted. */
export type Stripe402Request = IncomingMessage & { originalUrl?: string; body?: unknown; stripe402?: Stripe402Record };
/** What the middleware leaves on `req.stripe402` for loggers; ids unredacted, redact before logging. */
export type Stripe402Record = Record<string, unknown> & { paid: boolean; restored?: boolean };
/** An Express middleware, typed with Node's request and response so it needs no @types/express. */
export type Stripe402Middleware = (req: Stripe402Request, res: ServerResponse, next: (error?: unknown) => void) => void;

/** The paywall middleware factory. Throws PaywallConfigError at once on bad options. */
export function stripe402(options: Stripe402Options): Stripe402Middleware {
  const paywall = createPaywall(options, 'express');
  const { engine } = paywall;

  return function stripe402Paywall(req, res, next) {
    const method = req.method ?? 'GET';
    const route = paywall.route(method, pathnameOf(req.originalUrl ?? req.url ?? '/'));
    if (route.kind === 'free') return next();
    if (route.kind === 'discovery') {
      send(res, method, paywall.discovery.status, paywall.discovery.headers, paywall.discovery.body);
      return;
    }
    if (route.kind === 'webhook') {
      rawBody(req, paywall.webhookMaxBytes)
        .then(async (body) => {
          if (body === undefined) {
            // The rest of the body is never read: close the connection rather than drain it.
            const { status, headers, body: answer } = paywall.webhookTooLarge;
            return send(res, method, status, headers, answer);
          }
          const result = await paywall.webhook(body, headerOf(req, 'stripe-signature'));
          send(res, method, result.status, { 'content-type': 'application/json' }, JSON.stringify(result.body));
        })
        .catch(next);
      return;
    }
    engine
      .handle(route.match, headerOf(req, HEADER_PAYMENT), paywall.sourceOf(req.socket?.remoteAddress, headerOf(req, 'x-forwarded-for')))
      .then((decision) => {
        const record = decision.context as Stripe402Record;
        if (decision.kind === 'respond') {
          record.paid = false;
          req.stripe402 = record;
          send(res, method, decision.status, decision.headers, decision.body);
          return;
        }
        holdFirstWrite(res, engine, decision.grant, record);
        req.stripe402 = record;
        next();
      })
      .catch(next);
  };
}

function headerOf(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  // Node joins repeated lines of an unknown field with ", ", which the codec rejects (ENC-9).
  return typeof value === 'string' ? value : value.join(', ');
}

function send(res: ServerResponse, method: string, status: number, headers: Record<string, string>, body: string): void {
  res.statusCode = status;
  for (const name in headers) res.setHeader(name, headers[name]!);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(method === 'HEAD' ? undefined : body);
}

/**
 * The exact bytes of a webhook delivery (Stripe signs them). A body parser
 * mounted before the paywall may have read the stream already: its
 * `req.body` is used when it is the raw text or bytes (express.raw,
 * express.text); a parsed object can no longer be verified.
 */
async function rawBody(req: Stripe402Request, maxBytes: number): Promise<string | undefined> {
  // Read already by a parser ahead of the paywall: then only its size is checked.
  if (typeof req.body === 'string') return Buffer.byteLength(req.body) > maxBytes ? undefined : req.body;
  if (Buffer.isBuffer(req.body)) return req.body.byteLength > maxBytes ? undefined : req.body.toString('utf8');
  if (req.readableEnded || (req.body !== undefined && req.body !== null && typeof req.body === 'object' && Object.keys(req.body).length > 0)) {
    // Parsed already: the signature cannot be checked against re-serialized JSON, and the delivery is refused.
    return '';
  }
  return readBounded(req, headerOf(req, 'content-length'), maxBytes);
}

type Call = { method: 'writeHead' | 'write' | 'end'; args: unknown[] };

/**
 * Holds the response's first writeHead/write/end until the grant is
 * settled with the status the handler chose, sets the settlement's headers
 * (replacing the handler's, ENC-15), then replays the held calls in order.
 */
function holdFirstWrite(res: ServerResponse, engine: PaymentEngine, grant: Grant, record: Stripe402Record): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  const held: Call[] = [];
  let settling = false;
  let settled = false;

  const restore = () => {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
  };
  const replay = (headers: Record<string, string>) => {
    settled = true;
    restore();
    if (!res.headersSent) for (const name in headers) res.setHeader(name, headers[name]!);
    for (const call of held) {
      if (call.method === 'writeHead') {
        const [status, ...rest] = call.args as [number, ...unknown[]];
        // writeHead's own header object wins over setHeader: take the settlement's names out of it.
        const last = rest[rest.length - 1];
        if (last && typeof last === 'object' && !Array.isArray(last)) {
          const copy: Record<string, unknown> = { ...(last as Record<string, unknown>) };
          for (const key of Object.keys(copy)) if (key.toLowerCase() in headers) delete copy[key];
          rest[rest.length - 1] = copy;
        }
        (original.writeHead as (...args: unknown[]) => unknown).call(res, status, ...rest);
      } else {
        (original[call.method] as (...args: unknown[]) => unknown).apply(res, call.args);
      }
    }
  };
  const start = (status: number) => {
    settling = true;
    engine.settle(grant, status).then(
      (settlement) => {
        record.paid = !settlement.restored;
        record.restored = settlement.restored;
        replay(settlement.headers);
      },
      () => replay({}),
    );
  };
  const hold = (method: Call['method']) =>
    function held_(this: ServerResponse, ...args: unknown[]) {
      if (settled) return (original[method] as (...a: unknown[]) => unknown).apply(res, args);
      held.push({ method, args });
      if (!settling) start(method === 'writeHead' ? Number(args[0]) : res.statusCode);
      return method === 'write' ? true : res;
    };
  res.writeHead = hold('writeHead') as typeof res.writeHead;
  res.write = hold('write') as typeof res.write;
  res.end = hold('end') as typeof res.end;
}
