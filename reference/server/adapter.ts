/**
 * What every HTTP adapter shares (Hono, Express, Fastify and the Fetch-API
 * handler): the options, checked once when the paywall is built so that a
 * misconfigured app fails at start-up rather than at its first paying
 * request; the discovery response (DISC-1); and the Stripe webhook
 * (LEDG-6). An adapter only translates its framework's request and
 * response to these calls and to the engine's `match`, `handle` and
 * `settle`, so every adapter behaves the same on the wire.
 */
import { DISCOVERY_PATH } from '@stripe402/core';
import type { PaymentEngine } from './engine.ts';
import { handleWebhook, type WebhookResult } from './recovery.ts';
import type { RouteMatch } from './routes.ts';

/** Where the paywall receives Stripe webhooks unless told otherwise. */
export const DEFAULT_WEBHOOK_PATH = '/stripe402/webhook';

/** The options of every adapter: `stripe402({ engine, ... })`. */
export interface Stripe402Options {
  /** The payment engine (its route table says which requests pay). */
  engine: PaymentEngine;
  /** Serve GET /.well-known/stripe402 (DISC-1); default true. */
  discovery?: boolean;
  /** Receive Stripe webhooks, verified with this signing secret (`whsec_...`). */
  webhookSecret?: string;
  /** Where the webhook is received; default `/stripe402/webhook`. */
  webhookPath?: string;
}

/** A paywall option that cannot work, reported when the paywall is built. */
export class PaywallConfigError extends TypeError {
  override readonly name = 'PaywallConfigError';
}

/** What the paywall does with a request, decided from its method and path alone. */
export type PaywallRoute =
  | { kind: 'discovery' }
  | { kind: 'webhook' }
  | { kind: 'paid'; match: RouteMatch }
  | { kind: 'free' };

/** The checked options with what every adapter derives from them once. */
export interface Paywall {
  readonly engine: PaymentEngine;
  readonly webhookPath: string;
  /** The discovery response: fixed with the route table, which is fixed at construction. */
  readonly discovery: { status: 200; headers: Record<string, string>; body: string };
  route(method: string, path: string): PaywallRoute;
  /** Verifies and applies a webhook delivery; `rawBody` is the exact bytes Stripe signed. */
  webhook(rawBody: string, signature: string | null | undefined): Promise<WebhookResult>;
}

const OPTION_NAMES = ['engine', 'discovery', 'webhookSecret', 'webhookPath'];

/**
 * Checks the options and prepares the paywall. `adapter` names the caller
 * in error messages (`stripe402 (express): ...`). Throws PaywallConfigError.
 */
export function createPaywall(options: Stripe402Options, adapter: string): Paywall {
  const fail = (message: string): never => {
    throw new PaywallConfigError(`stripe402 (${adapter}): ${message}`);
  };
  if (options === null || typeof options !== 'object') fail('options must be an object: stripe402({ engine })');
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.includes(name)) fail(`unknown option '${name}'; the options are ${OPTION_NAMES.join(', ')}`);
  }
  const engine = options.engine as Partial<PaymentEngine> | undefined;
  if (engine === null || typeof engine !== 'object' || typeof engine.match !== 'function' || typeof engine.handle !== 'function' || typeof engine.settle !== 'function') {
    fail('options.engine must be a PaymentEngine (new PaymentEngine({ ledger, gateway, serverSecret, publishableKey, routes }))');
  }
  if (options.discovery !== undefined && typeof options.discovery !== 'boolean') fail('options.discovery must be a boolean');
  const webhookSecret = options.webhookSecret;
  if (webhookSecret !== undefined && (typeof webhookSecret !== 'string' || webhookSecret.trim() === '')) {
    fail('options.webhookSecret must be the endpoint\'s signing secret (whsec_...)');
  }
  const webhookPath = options.webhookPath ?? DEFAULT_WEBHOOK_PATH;
  if (typeof webhookPath !== 'string' || !/^\/[^?#\s]*$/.test(webhookPath)) fail('options.webhookPath must be a path starting with /');
  if (webhookPath === DISCOVERY_PATH) fail(`options.webhookPath cannot be ${DISCOVERY_PATH}`);

  const paymentEngine = options.engine;
  const serveDiscovery = options.discovery ?? true;
  const discovery = {
    status: 200 as const,
    headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' },
    body: JSON.stringify(paymentEngine.discovery()),
  };
  return {
    engine: paymentEngine,
    webhookPath,
    discovery,
    route(method, path) {
      if (serveDiscovery && (method === 'GET' || method === 'HEAD') && path === DISCOVERY_PATH) return { kind: 'discovery' };
      if (webhookSecret !== undefined && method === 'POST' && path === webhookPath) return { kind: 'webhook' };
      const match = paymentEngine.match(method, path);
      return match ? { kind: 'paid', match } : { kind: 'free' };
    },
    webhook(rawBody, signature) {
      return handleWebhook({ gateway: paymentEngine.gateway, ledger: paymentEngine.ledger }, rawBody, signature, webhookSecret!);
    },
  };
}
