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
import { sourceOf, TrustedProxies } from './limits.ts';
import { handleWebhook, type WebhookResult } from './recovery.ts';
import type { RouteMatch } from './routes.ts';

/** Where the paywall receives Stripe webhooks unless told otherwise. */
export const DEFAULT_WEBHOOK_PATH = '/stripe402/webhook';
/** Stripe's event payloads are a few kilobytes; 256 KiB leaves ample room. */
export const DEFAULT_WEBHOOK_MAX_BYTES = 256 * 1024;

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
  /** The largest webhook body read, in bytes (default 256 KiB); larger ones get 413 unread. */
  webhookMaxBytes?: number;
  /** Proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client for the rate limits; default none (the peer address counts). */
  trustedProxies?: readonly string[];
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
  readonly webhookMaxBytes: number;
  /** The answer to a webhook body over the cap: the rest is never read, so the connection closes. */
  readonly webhookTooLarge: { status: 413; headers: Record<string, string>; body: string };
  /** The discovery response: fixed with the route table, which is fixed at construction. */
  readonly discovery: { status: 200; headers: Record<string, string>; body: string };
  route(method: string, path: string): PaywallRoute;
  /** The network a request came from, for the engine's rate limits: the peer, or behind a trusted proxy the client it names. */
  sourceOf(peer: string | undefined, forwardedFor: string | null | undefined): string;
  /** Verifies and applies a webhook delivery; `rawBody` is the exact bytes Stripe signed. */
  webhook(rawBody: string, signature: string | null | undefined): Promise<WebhookResult>;
}

const OPTION_NAMES = ['engine', 'discovery', 'webhookSecret', 'webhookPath', 'webhookMaxBytes', 'trustedProxies'];

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
  const webhookMaxBytes = options.webhookMaxBytes ?? DEFAULT_WEBHOOK_MAX_BYTES;
  if (!Number.isSafeInteger(webhookMaxBytes) || webhookMaxBytes < 1) fail('options.webhookMaxBytes must be a positive integer');
  let trusted: TrustedProxies | undefined;
  if (options.trustedProxies !== undefined) {
    if (!Array.isArray(options.trustedProxies)) fail('options.trustedProxies must be a list of addresses or CIDR blocks');
    try {
      trusted = options.trustedProxies.length ? new TrustedProxies(options.trustedProxies) : undefined;
    } catch (error) {
      fail(`options.trustedProxies: ${(error as Error).message}`);
    }
  }
  const deploymentId = options.engine.gateway?.deploymentId;
  if (webhookSecret !== undefined && !deploymentId) {
    // Without it every PaymentIntent would be someone else's, or (worse) every one would be ours (LEDG-9).
    fail('the Stripe webhook needs a gateway that names its deployment (StripeSdkGateway option deploymentId)');
  }

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
    webhookMaxBytes,
    webhookTooLarge: { status: 413, headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ received: false, error: 'body too large' }) },
    discovery,
    route(method, path) {
      if (serveDiscovery && (method === 'GET' || method === 'HEAD') && path === DISCOVERY_PATH) return { kind: 'discovery' };
      if (webhookSecret !== undefined && method === 'POST' && path === webhookPath) return { kind: 'webhook' };
      const match = paymentEngine.match(method, path);
      return match ? { kind: 'paid', match } : { kind: 'free' };
    },
    sourceOf(peer, forwardedFor) {
      return sourceOf(peer, trusted && peer !== undefined && trusted.has(peer) ? forwardedFor : undefined, trusted);
    },
    webhook(rawBody, signature) {
      return handleWebhook({ gateway: paymentEngine.gateway, ledger: paymentEngine.ledger, deploymentId: deploymentId! }, rawBody, signature, webhookSecret!);
    },
  };
}

/**
 * A request body as UTF-8 text, or undefined as soon as it is known to
 * exceed `maxBytes`: from its declared length before anything is read, or
 * while it streams in (chunked bodies, lying lengths), never buffering more
 * than the cap. `body` is a Fetch body stream or a Node stream.
 */
export async function readBounded(
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null,
  declaredLength: string | null | undefined,
  maxBytes: number,
): Promise<string | undefined> {
  if (declaredLength !== null && declaredLength !== undefined && !(/^\d{1,15}$/.test(declaredLength) && Number(declaredLength) <= maxBytes)) return undefined;
  if (body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  if ('getReader' in body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        return undefined;
      }
      chunks.push(value);
    }
  } else {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > maxBytes) return undefined;
      chunks.push(chunk);
    }
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}
