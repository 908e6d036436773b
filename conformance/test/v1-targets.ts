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
 * handler, so those variants reach the handler without payment.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEmulator, type Emulator } from '../stripe-emulator/index.ts';
import { V1_ROUTES, startV1Server, type RunningV1Server, type V1Route } from '../../reference/client/test/v1-server.ts';

export interface V1Target {
  /** The paid resource to test. */
  url: string;
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

/** A pass-through proxy that forwards one request at a time, in arrival order, optionally with Express's lenient routing. */
export async function startSerializingProxy(upstream: string, options: { lenientRouting?: readonly string[] } = {}): Promise<{ url: string; close(): Promise<void> }> {
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
            const forwarded = http.request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
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

/** The v1 server on a fresh emulator; `serialized` puts the one-request-at-a-time proxy in front of it, `lenientRouting` too. */
export async function startV1Target(options: { serialized: boolean; lenientRouting?: boolean; routes?: Record<string, V1Route> }): Promise<V1Target> {
  const emulator: Emulator = await startEmulator({ port: 0 });
  const server = await startV1Server({
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    publishableKey: emulator.publishableKey,
    serverSecret: 'a v1 server secret of any length',
    ...(options.routes ? { routes: options.routes } : {}),
  });
  const paid = Object.keys(options.routes ?? V1_ROUTES);
  const proxy = options.serialized || options.lenientRouting ? await startSerializingProxy(server.url, options.lenientRouting ? { lenientRouting: paid } : {}) : undefined;
  return {
    url: `${proxy?.url ?? server.url}/api/joke`,
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
