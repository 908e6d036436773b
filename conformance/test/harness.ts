/**
 * Test fixture: the reference server on the project's emulator, started
 * in-process with an in-memory ledger, so the conformance tests (which may
 * import the server; the CLI never does) have a conforming target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmulator } from '@stripe402/stripe-emulator';
import { startServer } from 'stripe402';

export interface ReferenceTarget {
  /** Base URL of the reference server. */
  url: string;
  stripeUrl: string;
  stripeKey: string;
  serverSecret: string;
  close(): Promise<void>;
}

/** Starts the emulator and the reference server on free loopback ports. */
export async function startReferenceTarget(): Promise<ReferenceTarget> {
  const emulator = await startEmulator({ port: 0 });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stripe402-conformance-'));
  const serverSecret = 'conformance test server secret, 32+ bytes long';
  const server = await startServer({
    port: 0,
    ledger: 'pglite:memory',
    dataDir,
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    stripePublishableKey: emulator.publishableKey,
    serverSecret,
    log: false,
  });
  return {
    url: server.url,
    stripeUrl: emulator.url,
    stripeKey: emulator.secretKey,
    serverSecret,
    async close() {
      await server.close();
      await emulator.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A pass-through HTTP proxy in front of a target that can rewrite each
 * request's headers: a way to make a conforming server wrong in one precise
 * way for a test, without touching its code.
 */
export async function startProxy(
  upstream: string,
  rewrite: (headers: http.IncomingHttpHeaders) => http.IncomingHttpHeaders,
): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const forwarded = http.request(
      { hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: rewrite({ ...req.headers }) },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
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
