// The emulator's HTTP server (node:http, no framework): Stripe's API under
// /v1 with API-key authentication, idempotency, injected faults and latency,
// and the loopback-only admin API under /_emulator (reset, faults, events,
// webhook endpoint, the card-authentication page). startEmulator() returns
// a handle with an SDK client factory and read-only views of the state.
// A web page open in a developer's browser must not reach the admin API:
// it answers loopback clients only, checks that `Host` names the loopback
// (DNS rebinding), sends no CORS headers, takes changes only as
// `application/json` (which a cross-site form cannot send), and never
// returns the webhook signing secret. The Stripe API under /v1 gets the
// same `Host` check when the emulator listens on loopback, and its CORS
// headers never admit an `Authorization` header, since the emulator
// accepts any secret key.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { findRoute } from './api.ts';
import { stripeClientForUrl } from './client.ts';
import { PaymentEngine, snapshot, type RequestInfo } from './engine.ts';
import { apiError, authenticationError, invalidRequest, StripeApiError, unrecognizedUrl } from './errors.ts';
import { FaultError, Faults, type ArmedFault, type FaultController, type FaultRule } from './faults.ts';
import { parseForm, type FormObject } from './form.ts';
import { canonicalParams, IdempotencyStore } from './idempotency.ts';
import { newRequestId } from './ids.ts';
import { Store, type DeliveryAttempt, type EventRecord } from './store.ts';
import { validateWebhookConfig, WebhookDispatcher, type WebhookConfig } from './webhooks.ts';

export interface EmulatorOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Where to POST events, and the secret to sign them with. */
  webhook?: WebhookConfig;
  /** Latency added to every Stripe API request, in milliseconds. */
  latencyMs?: number;
  /** Answer admin requests (/_emulator) from non-loopback addresses too. Default false. */
  allowRemoteAdmin?: boolean;
}

/** An event the emulator raised, with its webhook delivery attempts. */
export interface EmulatorEvent {
  event: Stripe.Event;
  deliveries: DeliveryAttempt[];
}

/** Read-only copies of the emulator's state, oldest first. */
export interface EmulatorState {
  paymentIntents(): Stripe.PaymentIntent[];
  paymentMethods(): Stripe.PaymentMethod[];
  customers(): Stripe.Customer[];
  charges(): Stripe.Charge[];
  refunds(): Stripe.Refund[];
  events(): EmulatorEvent[];
}

export interface Emulator {
  /** Base URL, e.g. http://127.0.0.1:12111. */
  url: string;
  host: string;
  port: number;
  /** A secret key the emulator accepts (any sk_test_ key is accepted). */
  secretKey: string;
  /** A publishable key the emulator accepts (any pk_test_ key is accepted). */
  publishableKey: string;
  /** An official SDK client for this emulator; `config` is merged over host, port and protocol. */
  stripe(key?: string, config?: Stripe.StripeConfig): Stripe;
  faults: FaultController;
  state: EmulatorState;
  /** Sets or (with undefined or null) removes the webhook endpoint. */
  setWebhook(webhook: WebhookConfig | null | undefined): void;
  /** Clears every object, event, idempotency key and fault (the webhook endpoint stays). */
  reset(): void;
  /** Expires every saved idempotency key now, as if Stripe's 24 hours had passed (objects stay); returns how many. */
  expireIdempotencyKeys(): number;
  /** Resolves when no webhook delivery is in flight or scheduled. */
  webhooksIdle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const SECRET_KEY = 'sk_test_emulator';
const PUBLISHABLE_KEY = 'pk_test_emulator';
const MAX_BODY_BYTES = 1024 * 1024;

const NO_KEY_MESSAGE =
  "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";
const PUBLISHABLE_KEY_MESSAGE =
  'This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.';

interface HttpAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

type KeyKind = 'secret' | 'publishable';

function redactKey(key: string): string {
  const underscore = key.indexOf('_', key.indexOf('_') + 1);
  const prefix = underscore > 0 && underscore < 10 ? key.slice(0, underscore + 1) : key.slice(0, 3);
  return `${prefix}${'*'.repeat(Math.max(0, key.length - prefix.length - 4))}${key.slice(-4)}`;
}

/** Reads the API key from `Authorization: Bearer` or Basic auth, as Stripe accepts both. */
function authenticate(header: string | undefined): { key: string; kind: KeyKind } {
  if (!header) throw authenticationError(NO_KEY_MESSAGE);
  let key: string;
  const space = header.indexOf(' ');
  const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
  const value = space > 0 ? header.slice(space + 1).trim() : header.trim();
  if (scheme === 'bearer') {
    key = value;
  } else if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    key = decoded.split(':')[0] ?? '';
  } else {
    throw authenticationError(NO_KEY_MESSAGE);
  }
  if (key === '') throw authenticationError(NO_KEY_MESSAGE);
  if (/^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key)) return { key, kind: 'secret' };
  if (/^pk_test_[A-Za-z0-9_]+$/.test(key)) return { key, kind: 'publishable' };
  // Live keys and anything else: Stripe's answer to a key it does not know.
  throw authenticationError(`Invalid API Key provided: ${redactKey(key)}`);
}

function errorAnswer(error: StripeApiError, requestId: string): HttpAnswer {
  const body = { ...error.body };
  if (body.type === 'card_error' || body.type === 'invalid_request_error') {
    body.request_log_url = `https://dashboard.stripe.com/test/logs/${requestId}?t=${Math.floor(Date.now() / 1000)}`;
  }
  return { status: error.status, body: JSON.stringify({ error: body }), headers: { ...error.headers } };
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));
}

/** A `Host` header that names the loopback interface (with or without a port). */
function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  const match = /^(\[::1\]|localhost|127(?:\.\d{1,3}){3})(?::\d{1,5})?$/i.exec(hostHeader.trim());
  return match !== null;
}

/** `application/json`, with or without parameters such as a charset. */
function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/json\s*(;|$)/i.test(contentType.trim());
}

const sleep = (ms: number, timers: Set<NodeJS.Timeout>) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(invalidRequest('The request body is too large.', { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? '127.0.0.1';
  const latencyMs = options.latencyMs ?? 0;
  const loopbackOnly = isLoopback(host) || host === 'localhost';
  const store = new Store();
  const faults = new Faults();
  const idempotency = new IdempotencyStore();
  const webhooks = new WebhookDispatcher(options.webhook ? validateWebhookConfig(options.webhook) : undefined);
  const engine = new PaymentEngine(store, (record) => webhooks.enqueue(record), () => (webhooks.current ? 1 : 0));
  const timers = new Set<NodeJS.Timeout>();
  let baseUrl = '';

  function requestBaseUrl(req: http.IncomingMessage): string {
    const hostHeader = req.headers.host;
    return hostHeader && /^[A-Za-z0-9.:[\]-]+$/.test(hostHeader) ? `http://${hostHeader}` : baseUrl;
  }

  // -------------------------------------------------------------------------
  // Stripe API

  async function handleApi(req: http.IncomingMessage, method: string, path: string, query: string, body: string, requestId: string, fault: ArmedFault | undefined): Promise<HttpAnswer> {
    const { key, kind } = authenticate(req.headers.authorization);
    const segments = path.slice('/v1/'.length).split('/').map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    });
    const found = path.startsWith('/v1/') ? findRoute(method, segments) : undefined;
    if (!found) throw unrecognizedUrl(method, path);
    if (kind === 'publishable' && !found.route.publishable) throw authenticationError(PUBLISHABLE_KEY_MESSAGE);
    const params: FormObject = parseForm(query);
    if (method === 'POST') parseForm(body, params);
    const idempotencyKeyHeader = req.headers['idempotency-key'];
    const idempotencyKey = typeof idempotencyKeyHeader === 'string' && method === 'POST' ? idempotencyKeyHeader : undefined;
    const delay = latencyMs + (fault?.kind === 'latency' ? fault.ms : 0);
    const request: RequestInfo = { requestId, idempotencyKey: idempotencyKey ?? null, baseUrl: requestBaseUrl(req) };
    const headers: Record<string, string> = idempotencyKey !== undefined ? { 'Idempotency-Key': idempotencyKey } : {};

    const execute = (): string => {
      engine.beginRequest();
      const result = found.route.handle({ store, engine, params, request }, found.id);
      return engine.serializedFor(result) ?? JSON.stringify(result);
    };
    if (idempotencyKey === undefined) {
      if (delay > 0) await sleep(delay, timers);
      return { status: 200, body: execute(), headers };
    }
    // The saved fingerprint outlives the request: it keeps strings, not the parsed parameters.
    let canonical: string | undefined;
    const fingerprint = {
      raw: `${method} ${path}?${query}\n${body}`,
      canonical: () => (canonical ??= `${method} ${path} ${canonicalParams(parseForm(body, parseForm(query)))}`),
    };
    const decision = idempotency.begin(key, idempotencyKey, fingerprint);
    if (decision.kind === 'replay') {
      if (delay > 0) await sleep(delay, timers);
      return {
        status: decision.saved.status,
        body: decision.saved.body,
        headers: { ...headers, 'Idempotent-Replayed': 'true', 'Original-Request': decision.saved.requestId },
      };
    }
    // The key is held while the request waits, so a concurrent retry sees it in use.
    try {
      if (delay > 0) await sleep(delay, timers);
      const answer: HttpAnswer = { status: 200, body: execute(), headers };
      idempotency.finish(decision.slot, { fingerprint, status: 200, body: answer.body, requestId });
      return answer;
    } catch (error) {
      if (error instanceof StripeApiError) {
        const answer = errorAnswer(error, requestId);
        Object.assign(answer.headers, headers);
        idempotency.finish(decision.slot, error.saved ? { fingerprint, status: answer.status, body: answer.body, requestId } : undefined);
        return answer;
      }
      idempotency.finish(decision.slot, undefined);
      throw error;
    }
  }

  function send(res: http.ServerResponse, answer: HttpAnswer, requestId?: string): void {
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(answer.body),
      'Cache-Control': 'no-cache, no-store',
      // Only Stripe API answers carry CORS headers; admin answers never do.
      ...(requestId
        ? { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Request-Id, Stripe-Version, Idempotency-Key, Idempotent-Replayed, Original-Request' }
        : {}),
      ...answer.headers,
    };
    if (requestId) {
      headers['Request-Id'] = requestId;
      headers['Stripe-Version'] = Stripe.API_VERSION;
    }
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }

  async function onStripeRequest(req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string, query: string): Promise<void> {
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      // A page that rebinds its own name to 127.0.0.1 is same-origin with the emulator; its Host header gives it away.
      send(res, errorAnswer(invalidRequest('This emulator listens on loopback and answers requests addressed to a loopback name only.', { status: 403 }), newRequestId()));
      return;
    }
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': 'GET, POST, DELETE',
        // No Authorization: any secret key works here, so a page must not be able to send one.
        'Access-Control-Allow-Headers': 'Content-Type, Idempotency-Key, Stripe-Version, Stripe-Account',
        'Access-Control-Max-Age': '300',
      });
      res.end();
      return;
    }
    const fault = faults.take(method, path);
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'timeout') {
      await sleep(fault.ms, timers);
      req.socket.destroy();
      return;
    }
    const requestId = newRequestId();
    let answer: HttpAnswer;
    try {
      const body = method === 'POST' ? await readBody(req) : '';
      if (fault?.kind === 'status500') throw apiError(500, 'An unknown error occurred');
      if (fault?.kind === 'status503') throw apiError(503, 'Stripe is temporarily unavailable. Please try again later.');
      answer = await handleApi(req, method, path, query, body, requestId, fault);
    } catch (error) {
      answer = error instanceof StripeApiError ? errorAnswer(error, requestId) : errorAnswer(apiError(500, 'An unknown error occurred'), requestId);
      if (!(error instanceof StripeApiError)) console.error('stripe emulator: internal error', error);
    }
    if (fault?.kind === 'lose_response') {
      if (fault.ms > 0) await sleep(fault.ms, timers);
      req.socket.destroy();
      return;
    }
    send(res, answer, requestId);
  }

  // -------------------------------------------------------------------------
  // Admin API

  function adminJson(res: http.ServerResponse, status: number, value: unknown): void {
    send(res, { status, body: JSON.stringify(value, null, 2), headers: {} });
  }

  function adminError(res: http.ServerResponse, status: number, message: string): void {
    adminJson(res, status, { error: { type: 'invalid_request_error', message } });
  }

  function eventView(record: EventRecord): EmulatorEvent {
    return { event: JSON.parse(record.payload) as Stripe.Event, deliveries: record.deliveries.map((d) => ({ ...d })) };
  }

  async function readJson(req: http.IncomingMessage): Promise<unknown> {
    const text = await readBody(req);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new TypeError('The request body must be JSON.');
    }
  }

  function authenticationPage(res: http.ServerResponse, req: http.IncomingMessage, intentId: string, message: string, status = 200): void {
    const accept = req.headers.accept ?? '';
    const record = store.paymentIntents.get(intentId);
    if (!accept.includes('text/html')) {
      adminJson(res, status, { payment_intent: intentId, status: record?.object.status ?? null, message });
      return;
    }
    const link = (action: string) => `/_emulator/authenticate/${encodeURIComponent(intentId)}?action=${action}`;
    const pending = record?.object.status === 'requires_action';
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Stripe emulator: card authentication</title></head><body style="font-family:sans-serif;max-width:36em;margin:3em auto">
<h1>Card authentication (test mode)</h1>
<p>${escapeHtml(message)}</p>
${pending ? `<p><a href="${link('complete')}">Complete authentication</a> &nbsp; <a href="${link('fail')}">Fail authentication</a></p>` : ''}
</body></html>`;
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(html) });
    res.end(html);
  }

  function handleAuthentication(req: http.IncomingMessage, res: http.ServerResponse, intentId: string, query: URLSearchParams): void {
    const record = store.paymentIntents.get(intentId);
    if (!record) {
      adminError(res, 404, `No such payment_intent: '${intentId}'`);
      return;
    }
    let action = query.get('action');
    if (action === null) {
      // A person in a browser chooses; a program that simply visits the URL completes authentication.
      if ((req.headers.accept ?? '').includes('text/html')) {
        authenticationPage(res, req, intentId, `PaymentIntent ${intentId} (${record.object.amount} ${record.object.currency}) is ${record.object.status}.`);
        return;
      }
      action = 'complete';
    }
    if (action !== 'complete' && action !== 'fail') {
      adminError(res, 400, 'action must be complete or fail.');
      return;
    }
    const returnUrl = record.object.next_action?.redirect_to_url?.return_url ?? null;
    const repeated =
      (action === 'complete' && record.authentication === 'completed' && record.object.status === 'succeeded') ||
      (action === 'fail' && record.authentication === 'failed' && record.object.status === 'requires_payment_method');
    if (!repeated) {
      try {
        engine.authenticate(record, action, { requestId: null, idempotencyKey: null, baseUrl });
      } catch (error) {
        if (error instanceof StripeApiError) {
          adminError(res, error.status, error.body.message);
          return;
        }
        throw error;
      }
    }
    const intent = record.object;
    if (returnUrl) {
      let location: string;
      try {
        const target = new URL(returnUrl);
        target.searchParams.set('payment_intent', intent.id);
        target.searchParams.set('payment_intent_client_secret', intent.client_secret ?? '');
        target.searchParams.set('redirect_status', intent.status === 'succeeded' ? 'succeeded' : 'failed');
        location = target.toString();
      } catch {
        location = returnUrl;
      }
      res.writeHead(302, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0 });
      res.end();
      return;
    }
    authenticationPage(res, req, intentId, `Authentication ${action === 'complete' ? 'completed' : 'failed'}: PaymentIntent ${intent.id} is ${intent.status}.`);
  }

  async function onAdminRequest(req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string, query: string): Promise<void> {
    if (!options.allowRemoteAdmin && !isLoopback(req.socket.remoteAddress)) {
      adminError(res, 403, 'The emulator admin API answers loopback clients only.');
      return;
    }
    if (!options.allowRemoteAdmin && !isLoopbackHost(req.headers.host)) {
      adminError(res, 403, 'The emulator admin API answers requests addressed to a loopback name only (Host: localhost, 127.0.0.1 or [::1]).');
      return;
    }
    if (method !== 'GET' && method !== 'HEAD' && !isJson(req.headers['content-type'])) {
      adminError(res, 415, 'Emulator admin requests that change state must be sent as Content-Type: application/json.');
      return;
    }
    const parts = path.split('/').slice(2).map((part) => decodeURIComponent(part));
    const [resource, id, action] = parts;
    const search = new URLSearchParams(query);
    try {
      if (resource === 'health' && method === 'GET' && parts.length === 1) {
        adminJson(res, 200, { ok: true, url: baseUrl });
      } else if (resource === 'reset' && method === 'POST' && parts.length === 1) {
        resetState();
        adminJson(res, 200, { ok: true });
      } else if (resource === 'idempotency' && id === 'expire' && parts.length === 2 && method === 'POST') {
        adminJson(res, 200, { ok: true, expired: idempotency.expireAll() });
      } else if (resource === 'faults' && parts.length === 1 && method === 'GET') {
        adminJson(res, 200, { object: 'list', data: faults.list() });
      } else if (resource === 'faults' && parts.length === 1 && method === 'POST') {
        const rule = (await readJson(req)) as FaultRule;
        adminJson(res, 200, faults.arm(rule));
      } else if (resource === 'faults' && method === 'DELETE' && parts.length <= 2) {
        faults.clear(id);
        adminJson(res, 200, { ok: true });
      } else if (resource === 'events' && method === 'GET' && parts.length === 1) {
        const type = search.get('type');
        const data = [...store.events.values()].filter((record) => type === null || record.type === type).map(eventView);
        adminJson(res, 200, { object: 'list', data });
      } else if (resource === 'events' && method === 'GET' && parts.length === 2) {
        const record = store.events.get(id!);
        if (!record) adminError(res, 404, `No such event: '${id}'`);
        else adminJson(res, 200, eventView(record));
      } else if (resource === 'events' && method === 'POST' && parts.length === 3 && action === 'resend') {
        const record = store.events.get(id!);
        if (!record) adminError(res, 404, `No such event: '${id}'`);
        else if (!webhooks.current) adminError(res, 409, 'No webhook endpoint is configured.');
        else adminJson(res, 200, await webhooks.resend(record));
      } else if (resource === 'webhook' && parts.length === 1 && method === 'GET') {
        // The signing secret is never returned: whoever set it knows it.
        const current = webhooks.current;
        adminJson(res, 200, { webhook: current ? webhookView(current) : null });
      } else if (resource === 'webhook' && parts.length === 1 && (method === 'POST' || method === 'PUT')) {
        webhooks.setConfig(validateWebhookConfig(await readJson(req)));
        adminJson(res, 200, { ok: true });
      } else if (resource === 'webhook' && parts.length === 1 && method === 'DELETE') {
        webhooks.setConfig(undefined);
        adminJson(res, 200, { ok: true });
      } else if (resource === 'authenticate' && parts.length === 2 && (method === 'GET' || method === 'POST')) {
        handleAuthentication(req, res, id!, search);
      } else {
        adminError(res, 404, `Unrecognized emulator admin URL (${method}: ${path}).`);
      }
    } catch (error) {
      if (error instanceof FaultError || error instanceof TypeError) adminError(res, 400, error.message);
      else if (error instanceof StripeApiError) adminError(res, error.status, error.body.message);
      else throw error;
    }
  }

  function webhookView(config: WebhookConfig): Omit<WebhookConfig, 'secret'> {
    const { secret: _secret, ...rest } = config;
    return { ...rest };
  }

  function resetState(): void {
    store.clear();
    idempotency.clear();
    faults.clear();
  }

  // -------------------------------------------------------------------------

  const server = http.createServer((req, res) => {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);
    const method = req.method ?? 'GET';
    const handler = path === '/_emulator' || path.startsWith('/_emulator/') ? onAdminRequest : onStripeRequest;
    handler(req, res, method, path, query).catch((error: unknown) => {
      console.error('stripe emulator: internal error', error);
      if (!res.headersSent) adminError(res, 500, 'Internal emulator error.');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  baseUrl = `http://${urlHost}:${port}`;

  const state: EmulatorState = {
    paymentIntents: () => [...store.paymentIntents.values()].map((record) => snapshot(record.object)),
    paymentMethods: () => [...store.paymentMethods.values()].map((record) => snapshot(record.object)),
    customers: () => [...store.customers.values()].map((customer) => snapshot(customer)),
    charges: () => [...store.charges.values()].map((charge) => snapshot(charge)),
    refunds: () => [...store.refunds.values()].map((refund) => snapshot(refund)),
    events: () => [...store.events.values()].map(eventView),
  };

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    host,
    port,
    secretKey: SECRET_KEY,
    publishableKey: PUBLISHABLE_KEY,
    stripe: (key = SECRET_KEY, config = {}) => stripeClientForUrl(baseUrl, key, config),
    faults,
    state,
    setWebhook: (webhook) => webhooks.setConfig(webhook ? validateWebhookConfig(webhook) : undefined),
    reset: resetState,
    expireIdempotencyKeys: () => idempotency.expireAll(),
    webhooksIdle: (timeoutMs) => webhooks.idle(timeoutMs),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        webhooks.close();
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
