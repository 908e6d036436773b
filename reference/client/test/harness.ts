/**
 * The real stack the client's integration tests pay against: the project's
 * Stripe emulator and the reference server, on one in-memory PGlite ledger,
 * charging through the official SDK. A test card always has the same
 * fingerprint, so each test asks for a fresh server with its own server
 * secret: its client ids, and therefore its balances, start from nothing.
 * Also: helpers to count charges and to decode what a request carried.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { decodeHeaderObject } from '@stripe402/core';
import { openLedger, type Ledger } from '@stripe402/server/ledger';
import type { PaidRouteConfig } from '@stripe402/server';
import { startServer, type RunningServer, type ServerOptions } from 'stripe402';
import type { ProxiedRequest } from './proxy.ts';

export interface Stack {
  emulator: Emulator;
  /** Starts a reference server with a new server secret (so new client ids), closed with the stack. */
  freshServer(routes?: readonly PaidRouteConfig[], options?: Partial<ServerOptions>): Promise<RunningServer>;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const emulator = await startEmulator({ port: 0 });
  const dataDir = await mkdtemp(join(tmpdir(), 'stripe402-client-'));
  // Opened once, eagerly: PGlite takes a while to start on a busy machine, and beforeAll has the time for it.
  const ledger: Ledger = await openLedger('pglite:memory');
  const servers: RunningServer[] = [];
  return {
    emulator,
    async freshServer(routes, options = {}) {
      const server = await startServer({
        port: 0,
        ledger,
        dataDir,
        stripeUrl: emulator.url,
        stripeSecretKey: emulator.secretKey,
        stripePublishableKey: emulator.publishableKey,
        serverSecret: randomBytes(32).toString('hex'),
        log: false,
        ...(routes ? { routes } : {}),
        ...options,
      });
      servers.push(server);
      return server;
    },
    async close() {
      for (const server of servers) await server.close();
      await ledger.close();
      await emulator.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** PaymentIntents that actually took money. */
export function succeededCharges(emulator: Emulator) {
  return emulator.state.paymentIntents().filter((pi) => pi.status === 'succeeded');
}

/** The decoded `payment` header of a recorded request, or undefined when it carried none. */
export function paymentOf(request: ProxiedRequest): Record<string, unknown> | undefined {
  const header = request.headers['payment'];
  if (typeof header !== 'string') return undefined;
  const decoded = decodeHeaderObject(header);
  if (!decoded.ok) throw new Error('the client sent an undecodable payment header');
  return decoded.value;
}
