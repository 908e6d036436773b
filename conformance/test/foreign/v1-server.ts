/**
 * A server that behaves as stripe402 v1 does, written from v1's public
 * documentation (the Express middleware's payment flow, its Stripe service
 * and its stores) and from Table 15.2 of the spec, in this project's own
 * words: a target for the conformance suite that the suite has never seen.
 * It imitates Express on node:http: the paywall compares `METHOD /path`
 * strings before routing while the router ignores letter case and a
 * trailing slash and answers HEAD with the GET handler; errors go to an
 * error handler that prints the stack. The wire is v1's: lax base64, error
 * 402s whose body is a PaymentResponse with no header fields, no
 * `payment-response` on `insufficient_credits`, no idempotency key, no
 * metadata on PaymentIntents (the Customer carries the client id).
 *
 * v1's known defects are switches (`defects`), each one of the bugs the
 * conformance suite must name; with none switched on this is a defect-free
 * v1 server, which differs from the spec only where Table 15.2 says v1 does.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/** v1's money and safety defects; each is a switch. */
export const V1_DEFECTS = {
  /** PAY-1, PAY-2: `/api/joke/`, `/API/JOKE` and `HEAD /api/joke` reach the handler without payment. */
  paywallVariants: 'a trailing slash, another letter case or HEAD reaches the paid handler free',
  /** UNIT-2: the charge is ceil(units / 100) whatever the currency (yen charged 100 times too much). */
  centsForEveryCurrency: 'every currency is charged as if it had two decimals',
  /** PROC-10: the spend stands when the handler answers 5xx. */
  noRestoreOn5xx: 'no credit restored when the handler answers 5xx',
  /** ERR-6: a payment header of JSON `null` reaches code that reads its members: 500 with a stack trace. */
  nullPayload500: 'a payment header of JSON null answers 500 with a stack trace',
  /** UNIT-4, MSG-3: a fractional topUpAmount is charged, then the store refuses to credit it. */
  fractionalTopUpLost: 'a fractional topUpAmount is charged and never credited',
  /** PROC-7: concurrent top-ups for one card each charge it. */
  concurrentTopUps: 'concurrent top-ups with one card each charge it',
  /** ERR-4: Stripe's and the store's error text (with Stripe's request id) is sent to the client. */
  internalErrorText: 'Stripe and store error text in error bodies',
} as const;

export type V1Defect = keyof typeof V1_DEFECTS;

/** v1's RouteConfig: amount, currency (default usd), minTopUp (default 50000), description. */
export interface V1Route {
  amount: number;
  currency?: string;
  minTopUp?: number;
  description?: string;
  /** The handler answers 500 (a test route, not part of v1's config). */
  fails?: boolean;
}

export interface V1ServerOptions {
  stripeUrl: string;
  stripeSecretKey: string;
  publishableKey: string;
  serverSecret: string;
  /** `METHOD /path` to its price, as v1 configures routes. */
  routes: Record<string, V1Route>;
  /** Which defects to switch on; `all` is stripe402 v1 as deployed. Default none. */
  defects?: V1Defect[] | 'all';
  port?: number;
}

export interface V1Server {
  url: string;
  close(): Promise<void>;
}

const DEFAULT_MIN_TOP_UP = 50_000;
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** A thrown error that carries what v1's catch block reports. */
class HandledError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An in-memory stand-in for v1's Redis store, with Redis's integer rules (HINCRBY refuses a fraction). */
class V1Store {
  private readonly balances = new Map<string, number>();

  deductBalance(clientId: string, amount: number): number | null {
    const balance = this.balances.get(clientId) ?? 0;
    if (balance < amount) return null;
    this.balances.set(clientId, balance - amount);
    return balance - amount;
  }

  addBalance(clientId: string, amount: number): number {
    if (!Number.isInteger(amount)) throw new Error('ERR value is not an integer or out of range');
    const balance = (this.balances.get(clientId) ?? 0) + amount;
    this.balances.set(clientId, balance);
    return balance;
  }
}

export async function startV1Server(options: V1ServerOptions): Promise<V1Server> {
  const defects = new Set<V1Defect>(options.defects === 'all' ? (Object.keys(V1_DEFECTS) as V1Defect[]) : (options.defects ?? []));
  const stripeUrl = new URL(options.stripeUrl);
  const stripe = new Stripe(options.stripeSecretKey, {
    host: stripeUrl.hostname,
    port: Number(stripeUrl.port || 443),
    protocol: stripeUrl.protocol === 'https:' ? 'https' : 'http',
  });
  const store = new V1Store();
  const locks = new Map<string, Promise<unknown>>();

  const routes = new Map(Object.entries(options.routes).map(([key, route]) => [key, route]));

  /** The app's router, Express's defaults: case-insensitive, a trailing slash optional, HEAD served by GET. */
  function routeOf(method: string, path: string): [string, V1Route] | undefined {
    const wantedMethod = method === 'HEAD' ? 'GET' : method;
    const wantedPath = path.length > 1 ? path.replace(/\/$/, '').toLowerCase() : path;
    for (const [key, route] of routes) {
      const [m, p] = key.split(' ') as [string, string];
      if (m === wantedMethod && p.toLowerCase() === wantedPath) return [key, route];
    }
    return undefined;
  }

  /** The paywall: v1 compares `${req.method} ${req.path}` before routing; the fixed one after. */
  function paidRouteOf(method: string, path: string): [string, V1Route] | undefined {
    if (defects.has('paywallVariants')) {
      const route = routes.get(`${method} ${path}`);
      return route ? [`${method} ${path}`, route] : undefined;
    }
    return routeOf(method, path);
  }

  function chargeOf(units: number, currency: string): number {
    if (defects.has('centsForEveryCurrency')) return Math.ceil(units / 100);
    const e = ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
    return Number((BigInt(Math.ceil(units)) * 10n ** BigInt(e) + 9999n) / 10000n);
  }

  function challenge(route: V1Route, path: string, error?: string): object {
    return {
      stripe402Version: 1,
      resource: { url: path, ...(route.description ? { description: route.description } : {}) },
      accepts: [
        {
          scheme: 'stripe',
          currency: route.currency ?? 'usd',
          amount: route.amount,
          minTopUp: route.minTopUp ?? DEFAULT_MIN_TOP_UP,
          publishableKey: options.publishableKey,
          ...(route.description ? { description: route.description } : {}),
        },
      ],
      ...(error ? { error } : {}),
    };
  }

  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64');

  function json(res: http.ServerResponse, status: number, body: unknown, head: boolean): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
    res.end(head ? undefined : text);
  }

  /** v1's error 402: a PaymentResponse body, no header field. */
  function paymentError(res: http.ServerResponse, code: string, message: string, head: boolean): void {
    json(res, 402, { success: false, error: message, errorCode: code, clientId: '', creditsRemaining: 0 }, head);
  }

  /** What v1's catch block tells the client: the error's own text, or a fixed message once fixed. */
  function messageOf(error: unknown, fixed: string): string {
    if (!defects.has('internalErrorText')) return fixed;
    const e = error as { message?: string; requestId?: string };
    return `${e.message ?? String(error)}${e.requestId ? ` (request ${e.requestId})` : ''}`;
  }

  async function findOrCreateCustomer(clientId: string, paymentMethodId: string): Promise<string> {
    const found = await stripe.customers.search({ query: `metadata["stripe402_client_id"]:"${clientId}"` });
    if (found.data[0]) return found.data[0].id;
    const created = await stripe.customers.create({ payment_method: paymentMethodId, metadata: { stripe402_client_id: clientId } });
    return created.id;
  }

  /** Path 4: charge the card for a top-up, credit it, spend the price. */
  async function topUp(clientId: string, paymentMethodId: string, units: number, route: V1Route): Promise<{ chargeId: string; remaining: number } | { remaining: number }> {
    const covered = store.deductBalance(clientId, route.amount);
    if (covered !== null) return { remaining: covered };
    const currency = route.currency ?? 'usd';
    let intent: Stripe.PaymentIntent;
    try {
      const customer = await findOrCreateCustomer(clientId, paymentMethodId);
      intent = await stripe.paymentIntents.create({
        amount: chargeOf(units, currency),
        currency,
        customer,
        payment_method: paymentMethodId,
        confirm: true,
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      });
    } catch (error) {
      const card = (error as { type?: string }).type === 'StripeCardError';
      throw new HandledError(card ? 'card_declined' : 'payment_failed', messageOf(error, card ? 'The card was declined.' : 'The payment did not succeed.'));
    }
    if (intent.status !== 'succeeded') {
      if (intent.status === 'requires_action') await stripe.paymentIntents.cancel(intent.id).catch(() => undefined);
      throw new HandledError('payment_failed', `Payment failed with status: ${intent.status}`);
    }
    try {
      store.addBalance(clientId, units);
    } catch (error) {
      throw new HandledError('payment_failed', messageOf(error, 'The payment could not be recorded.'));
    }
    const remaining = store.deductBalance(clientId, route.amount);
    if (remaining === null) throw new HandledError('insufficient_credits', 'Insufficient credits after top-up.');
    return { chargeId: intent.id, remaining };
  }

  /** PROC-7 once fixed: one top-up per client id at a time, the balance checked again after waiting. */
  function serialized<T>(clientId: string, task: () => Promise<T>): Promise<T> {
    if (defects.has('concurrentTopUps')) return task();
    const before = locks.get(clientId) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(task);
    locks.set(clientId, mine);
    void mine.finally(() => {
      if (locks.get(clientId) === mine) locks.delete(clientId);
    }).catch(() => undefined);
    return mine;
  }

  /** The middleware; `next` runs the route's handler. */
  async function middleware(req: http.IncomingMessage, res: http.ServerResponse, route: V1Route, path: string, next: () => void): Promise<void> {
    const head = req.method === 'HEAD';
    const header = req.headers.payment;
    if (header === undefined || Array.isArray(header)) {
      const body = challenge(route, path);
      res.setHeader('payment-required', encode(body));
      json(res, 402, body, head);
      return;
    }
    let payload: { clientId?: string; paymentMethodId?: string; topUpAmount?: number } | null;
    try {
      // Lax like Buffer's base64 decoder: junk characters are skipped, data after padding ignored.
      payload = JSON.parse(Buffer.from(header, 'base64').toString('utf-8'));
    } catch {
      paymentError(res, 'invalid_payment', 'Invalid payment header', head);
      return;
    }
    if (payload === null && defects.has('nullPayload500')) {
      // v1 reads members of whatever JSON.parse returned; Express's error handler prints the TypeError.
      (payload as unknown as { clientId: string }).clientId.toString();
    }
    // Any other JSON value has no members: v1 finds neither and sends the first challenge below.
    if (payload === null || typeof payload !== 'object') payload = {};
    if (!defects.has('fractionalTopUpLost') && payload.topUpAmount !== undefined && !(Number.isSafeInteger(payload.topUpAmount) && payload.topUpAmount > 0)) {
      paymentError(res, 'invalid_payment', 'Invalid payment header', head);
      return;
    }
    const respond = (response: object) => res.setHeader('payment-response', encode(response));
    // Path 3: spend with the client id.
    if (typeof payload.clientId === 'string' && payload.clientId !== '') {
      const remaining = store.deductBalance(payload.clientId, route.amount);
      if (remaining !== null) {
        respond({ success: true, creditsRemaining: remaining, clientId: payload.clientId });
        return serve(res, route, payload.clientId, next);
      }
      if (!payload.paymentMethodId) {
        const body = challenge(route, path, 'insufficient_credits');
        res.setHeader('payment-required', encode(body));
        json(res, 402, body, head);
        return;
      }
    }
    if (!payload.paymentMethodId) {
      // Neither member: v1 answers with the first challenge.
      const body = challenge(route, path);
      res.setHeader('payment-required', encode(body));
      json(res, 402, body, head);
      return;
    }
    // Path 4.
    const minTopUp = route.minTopUp ?? DEFAULT_MIN_TOP_UP;
    const units = payload.topUpAmount ?? minTopUp;
    if (units < minTopUp) {
      paymentError(res, 'top_up_below_minimum', `Top-up amount must be at least ${minTopUp} units`, head);
      return;
    }
    let clientId: string;
    try {
      const method = await stripe.paymentMethods.retrieve(payload.paymentMethodId);
      if (!method.card?.fingerprint) throw new Error('PaymentMethod does not have a card fingerprint');
      clientId = createHmac('sha256', options.serverSecret).update(method.card.fingerprint).digest('hex');
    } catch (error) {
      paymentError(res, 'payment_failed', messageOf(error, 'The payment method cannot be used.'), head);
      return;
    }
    try {
      const outcome = await serialized(clientId, () => topUp(clientId, payload.paymentMethodId!, units, route));
      respond({ success: true, ...('chargeId' in outcome ? { chargeId: outcome.chargeId } : {}), creditsRemaining: outcome.remaining, clientId });
      return serve(res, route, clientId, next);
    } catch (error) {
      if (error instanceof HandledError && error.code === 'insufficient_credits') {
        const body = challenge(route, path, 'insufficient_credits');
        res.setHeader('payment-required', encode(body));
        json(res, 402, body, head);
        return;
      }
      if (error instanceof HandledError) return paymentError(res, error.code, error.message, head);
      throw error;
    }
  }

  /** The handler ran after the middleware set payment-response; a 5xx gives the spend back once fixed. */
  function serve(res: http.ServerResponse, route: V1Route, clientId: string, next: () => void): void {
    if (route.fails && !defects.has('noRestoreOn5xx')) {
      const restored = store.addBalance(clientId, route.amount);
      const current = JSON.parse(Buffer.from(String(res.getHeader('payment-response')), 'base64').toString('utf-8')) as object;
      res.setHeader('payment-response', encode({ ...current, creditsRemaining: restored }));
    }
    next();
  }

  function handler(req: http.IncomingMessage, res: http.ServerResponse, route: V1Route, path: string): void {
    if (route.fails) return json(res, 500, { error: 'Something went wrong' }, req.method === 'HEAD');
    json(res, 200, { data: `paid content of ${path}`, price: route.amount }, req.method === 'HEAD');
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume();
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const routed = routeOf(method, path);
    const paid = paidRouteOf(method, path);
    if (!routed) {
      res.writeHead(404, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(method === 'HEAD' ? undefined : `<pre>Cannot ${method} ${path}</pre>`);
      return;
    }
    const run = () => handler(req, res, routed[1], path);
    if (!paid) return run();
    await middleware(req, res, paid[1], path, run);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      // Express's default error handler outside production: the stack, as HTML.
      if (res.headersSent) return res.destroy();
      res.removeHeader('payment-response');
      res.writeHead(500, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(`<pre>${String(error.stack).replace(/\n/g, '<br>')}</pre>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
