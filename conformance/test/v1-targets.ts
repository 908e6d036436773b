/**
 * Test fixture: stripe402 v1 targets for the `--profile v1` tests. The v1
 * server is the imitation the client tests use (written from the v1 wire
 * description, with v1's lax decoding and v1 error bodies); in front of it
 * a proxy that passes one request at a time turns it into a v1 server
 * without the concurrent-top-up defect, the way a v1 deployment with a
 * single-threaded lock around its store would behave; and `lenientRouting`
 * plants the paywall defect of deployed v1 servers on Express: the paywall
 * middleware matches the exact method and path, while the router behind it
 * ignores letter case and a trailing slash and answers HEAD with the GET
 * handler, so those variants reach the handler without payment. `hardened`
 * removes the v1 server's own defects instead: top-ups serialized, a JSON
 * `null` payload answered with v1's invalid_payment body instead of a crash,
 * and a paid `/api/fail` whose handler answers 500 and gives the spend back.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { V1_ROUTES, startV1Server, type RunningV1Server, type V1Route } from '../../reference/client/test/v1-server.ts';

export interface V1Target {
  /** The paid resource to test. */
  url: string;
  /** A paid route whose handler answers 500 (hardened targets only). */
  failingRoute?: string;
  stripeUrl: string;
  stripeKey: string;
  server: RunningV1Server;
  close(): Promise<void>;
}

/** The handler a lenient router reaches for a variant the exact-match paywall missed, or undefined. */
function unpaidHandler(method: string, url: string, paid: readonly string[]): string | undefined {
  const pathname = url.split('?', 1)[0]!;
  const normalized = pathname.length > 1 ? pathname.toLowerCase().replace(/\/+$/, '') : pathname;
  const asGet = method === 'HEAD' ? 'GET' : method;
  const key = `${asGet} ${normalized}`;
  const exact = `${method} ${pathname}`;
  return paid.includes(key) && !paid.includes(exact) ? key : undefined;
}

/** What a hardened v1 deployment adds in front of the v1 server. */
interface Hardening {
  balances: Map<string, number>;
  /** The price of `/api/fail`, which costs what `/api/joke` costs. */
  amount: number;
}

/** v1's lax decoding of a payment header: base64 as Buffer reads it, then JSON.parse. */
function laxPayload(header: string | string[] | undefined): { value: unknown } | undefined {
  if (typeof header !== 'string') return undefined;
  try {
    return { value: JSON.parse(Buffer.from(header, 'base64').toString('utf8')) };
  } catch {
    return undefined;
  }
}

/** A v1 error 402: a PaymentResponse body and no payment headers. */
function v1Error(res: http.ServerResponse, errorCode: string, error: string): void {
  res.writeHead(402, { 'content-type': 'application/json' }).end(JSON.stringify({ success: false, creditsRemaining: 0, clientId: '', error, errorCode }));
}

/** A pass-through proxy that forwards one request at a time, in arrival order, optionally with Express's lenient routing or a hardened deployment's fixes. */
export async function startSerializingProxy(
  upstream: string,
  options: { lenientRouting?: readonly string[]; hardening?: Hardening } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(upstream);
  let queue: Promise<void> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      queue = queue.then(
        () =>
          new Promise<void>((done) => {
            if (options.lenientRouting && unpaidHandler(req.method ?? 'GET', req.url ?? '/', options.lenientRouting)) {
              res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ joke: 'A v1 server walks into a bar.' }));
              done();
              return;
            }
            const hardening = options.hardening;
            if (hardening && laxPayload(req.headers.payment)?.value === null) {
              v1Error(res, 'invalid_payment', 'Malformed payment header');
              done();
              return;
            }
            const failing = hardening !== undefined && req.method === 'GET' && (req.url ?? '').split('?')[0] === '/api/fail';
            const path = failing ? '/api/joke' : req.url;
            const forwarded = http.request({ hostname: target.hostname, port: target.port, method: req.method, path, headers: req.headers }, (answer) => {
              if (failing && answer.statusCode === 200 && typeof answer.headers['payment-response'] === 'string') {
                // The handler failed after the payment step: give the spend back and say so (PROC-10).
                answer.resume();
                const paid = JSON.parse(Buffer.from(answer.headers['payment-response'], 'base64').toString('utf8')) as { clientId: string; creditsRemaining: number };
                const restored = (hardening.balances.get(paid.clientId) ?? 0) + hardening.amount;
                hardening.balances.set(paid.clientId, restored);
                const response = Buffer.from(JSON.stringify({ success: true, creditsRemaining: restored, clientId: paid.clientId })).toString('base64');
                res.writeHead(500, { 'content-type': 'application/json', 'payment-response': response }).end('{"error":"the handler failed"}');
                answer.on('end', done);
                return;
              }
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              answer.pipe(res);
              answer.on('end', done);
              answer.on('error', done);
            });
            forwarded.on('error', () => {
              res.destroy();
              done();
            });
            forwarded.end(Buffer.concat(chunks));
          }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
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

/** The v1 server on a fresh emulator; `serialized`, `lenientRouting` and `hardened` put the one-request-at-a-time proxy in front of it. */
export async function startV1Target(options: { serialized: boolean; lenientRouting?: boolean; hardened?: boolean; routes?: Record<string, V1Route> }): Promise<V1Target> {
  const emulator: Emulator = await startEmulator({ port: 0 });
  const server = await startV1Server({
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    publishableKey: emulator.publishableKey,
    serverSecret: 'a v1 server secret of any length',
    ...(options.routes ? { routes: options.routes } : {}),
  });
  const routes = options.routes ?? V1_ROUTES;
  const joke = routes['GET /api/joke'];
  const proxyOptions = {
    ...(options.lenientRouting ? { lenientRouting: Object.keys(routes) } : {}),
    ...(options.hardened && joke ? { hardening: { balances: server.balances, amount: joke.amount } } : {}),
  };
  const proxy = options.serialized || options.lenientRouting || options.hardened ? await startSerializingProxy(server.url, proxyOptions) : undefined;
  return {
    url: `${proxy?.url ?? server.url}/api/joke`,
    ...(options.hardened ? { failingRoute: '/api/fail' } : {}),
    stripeUrl: emulator.url,
    stripeKey: emulator.secretKey,
    server,
    async close() {
      await proxy?.close();
      await server.close();
      await emulator.close();
    },
  };
}
