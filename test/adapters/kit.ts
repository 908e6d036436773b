/**
 * Test kit of the adapter tests: a payment stack (the project's emulator,
 * an in-memory PGlite ledger, the engine with the demo's price list and a
 * webhook secret), the demo API written once per framework (the same
 * routes, bodies and CORS as the reference server's Hono app), and one
 * conformance run at level `all` against a real port.
 */
import { DEMO_ROUTES } from 'stripe402';
import { runConformance } from '@stripe402/conformance';
import type { ConformanceReport } from '@stripe402/core';
import { createStripeClient, deploymentIdOf, EXPOSED_HEADERS, PaymentEngine, StripeSdkGateway } from '@stripe402/server';
import { openLedger, type Ledger } from '@stripe402/server/ledger';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';

export interface Stack {
  emulator: Emulator;
  ledger: Ledger;
  engine: PaymentEngine;
  serverSecret: string;
  webhookSecret: string;
  /** Points the emulator's webhooks at a listening app. */
  listen(url: string): void;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const emulator = await startEmulator({ port: 0 });
  const ledger = await openLedger('pglite:memory');
  const serverSecret = 'adapter test server secret, at least 32 bytes';
  const webhookSecret = 'whsec_adapter_test_secret';
  const engine = new PaymentEngine({
    ledger,
    // The deployment id lets the webhook tell this deployment's PaymentIntents from another's (LEDG-9).
    gateway: new StripeSdkGateway(createStripeClient(emulator.secretKey, { apiUrl: emulator.url }), { deploymentId: deploymentIdOf(serverSecret) }),
    serverSecret,
    publishableKey: emulator.publishableKey,
    routes: DEMO_ROUTES,
  });
  return {
    emulator,
    ledger,
    engine,
    serverSecret,
    webhookSecret,
    listen: (url) => emulator.setWebhook({ url: `${url}/stripe402/webhook`, secret: webhookSecret }),
    async close() {
      await ledger.close();
      await emulator.close();
    },
  };
}

/** The conformance suite at level `all`, as `conformance --level all` runs it. */
export function conformanceAll(url: string, stack: Stack): Promise<ConformanceReport> {
  return runConformance({
    target: url,
    level: 'all',
    failingRoute: '/api/fail',
    serverSecret: stack.serverSecret,
    stripeUrl: stack.emulator.url,
    stripeKey: stack.emulator.secretKey,
  });
}

/**
 * What a run found wrong, judged against the reference server's run: a
 * failed check of any severity, and a check skipped that the reference did
 * not skip (a skip the reference has too is one the suite makes of every
 * server like it: an extension's rule for servers without the extension).
 */
export function problems(report: ConformanceReport, reference: ConformanceReport): string[] {
  const skippedByReference = new Set(reference.checks.filter((c) => c.status === 'skipped').map((c) => c.id));
  return report.checks
    .filter((c) => c.status === 'failed' || (c.status === 'skipped' && !skippedByReference.has(c.id)))
    .map((c) => `${c.id}: ${c.actual ?? c.reason}`);
}

/** The demo API's answers, framework-free: each app below only wires them. */
export const demo = {
  joke: () => ({ joke: 'A SQL query walks into a bar, sees two tables and asks: may I join you?' }),
  weather: (city: string | undefined) => {
    const name = (city ?? 'Paris').slice(0, 64);
    return { city: name, temperatureC: 12 + (name.length % 15), conditions: 'sunny' };
  },
  fortune: () => ({ fortune: 'A small payment brings great rewards.' }),
  fail: () => ({ error: 'this resource always fails' }),
  notFound: () => ({ error: 'not_found' }),
  cors: {
    'access-control-allow-origin': '*',
    'access-control-expose-headers': EXPOSED_HEADERS,
  } as Record<string, string>,
  preflight: {
    'access-control-allow-methods': 'GET,HEAD,POST,OPTIONS',
    'access-control-allow-headers': 'payment,content-type',
    'access-control-max-age': '600',
  } as Record<string, string>,
};
