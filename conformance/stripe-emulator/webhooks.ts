// Webhook delivery as Stripe does it: each event is POSTed as JSON to the
// configured endpoint with a `Stripe-Signature: t=...,v1=...` header (HMAC-
// SHA256 of `${t}.${payload}` keyed with the whsec_ secret, re-signed on
// every attempt), asynchronously, and retried with a bounded backoff until
// the endpoint answers 2xx. Resends (admin API) deliver an event again on
// demand so tests can deliver twice or out of order.
import { createHmac } from 'node:crypto';
import type { DeliveryAttempt, EventRecord } from './store.ts';

export interface WebhookConfig {
  url: string;
  /** The endpoint's signing secret, `whsec_...`. */
  secret: string;
  /** Event types to deliver; `*` delivers every type. Default: payment_intent.succeeded and payment_intent.payment_failed. */
  enabledEvents?: string[];
  /** Delays before each retry; the number of entries bounds the retries. Default [200, 1000, 5000]. */
  retryDelaysMs?: number[];
  /** Per-attempt timeout. Default 10000. */
  timeoutMs?: number;
}

export const DEFAULT_ENABLED_EVENTS = ['payment_intent.succeeded', 'payment_intent.payment_failed'];
const DEFAULT_RETRY_DELAYS_MS = [200, 1000, 5000];
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_RETRIES = 10;
const MAX_RETRY_DELAY_MS = 60_000;

export function validateWebhookConfig(config: unknown): WebhookConfig {
  if (!config || typeof config !== 'object') throw new TypeError('webhook must be an object with url and secret.');
  const { url, secret, enabledEvents, retryDelaysMs, timeoutMs } = config as Record<string, unknown>;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new TypeError('webhook.url must be an http(s) URL.');
  if (typeof secret !== 'string' || !secret.startsWith('whsec_')) throw new TypeError('webhook.secret must start with whsec_.');
  const out: WebhookConfig = { url, secret };
  if (enabledEvents !== undefined) {
    if (!Array.isArray(enabledEvents) || !enabledEvents.every((e) => typeof e === 'string')) {
      throw new TypeError('webhook.enabledEvents must be an array of event types.');
    }
    out.enabledEvents = enabledEvents as string[];
  }
  if (retryDelaysMs !== undefined) {
    if (
      !Array.isArray(retryDelaysMs) ||
      retryDelaysMs.length > MAX_RETRIES ||
      !retryDelaysMs.every((d) => Number.isFinite(d) && d >= 0 && d <= MAX_RETRY_DELAY_MS)
    ) {
      throw new TypeError(`webhook.retryDelaysMs must be at most ${MAX_RETRIES} delays of 0 to ${MAX_RETRY_DELAY_MS} ms.`);
    }
    out.retryDelaysMs = retryDelaysMs as number[];
  }
  if (timeoutMs !== undefined) {
    if (!(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= 120_000)) throw new TypeError('webhook.timeoutMs must be 1 to 120000.');
    out.timeoutMs = timeoutMs;
  }
  return out;
}

/** The `Stripe-Signature` header value for a payload at time `t` (seconds). */
export function signatureHeader(payload: string, secret: string, timestamp: number): string {
  const signature = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

export class WebhookDispatcher {
  private config: WebhookConfig | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly controller = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(config?: WebhookConfig) {
    this.config = config;
  }

  setConfig(config: WebhookConfig | undefined): void {
    this.config = config;
  }

  get current(): WebhookConfig | undefined {
    return this.config;
  }

  /** Endpoints that will receive an event of this type (0 or 1), Stripe's `pending_webhooks`. */
  endpointsFor(type: string): number {
    return this.config && this.accepts(this.config, type) ? 1 : 0;
  }

  private accepts(config: WebhookConfig, type: string): boolean {
    const enabled = config.enabledEvents ?? DEFAULT_ENABLED_EVENTS;
    return enabled.includes('*') || enabled.includes(type);
  }

  /** Schedules delivery of a new event, off the request path. */
  enqueue(record: EventRecord): void {
    const config = this.config;
    if (this.closed || !config || !this.accepts(config, record.type)) return;
    this.schedule(() => this.deliverWithRetries(record, 0), 0);
  }

  /** Delivers an event again now (retrying like a first delivery) and reports the first attempt. */
  async resend(record: EventRecord): Promise<DeliveryAttempt> {
    const config = this.config;
    if (!config) throw new TypeError('No webhook endpoint is configured.');
    const attempt = await this.track(this.attempt(record, config, true));
    if (!isSuccess(attempt)) this.scheduleRetry(record, 1, true);
    return attempt;
  }

  private schedule(run: () => void, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    this.timers.add(timer);
  }

  private scheduleRetry(record: EventRecord, retry: number, resend = false): void {
    const delays = this.config?.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    const delay = delays[retry - 1];
    if (delay === undefined) return;
    this.schedule(() => void this.deliverWithRetries(record, retry, resend), delay);
  }

  private async deliverWithRetries(record: EventRecord, retry: number, resend = false): Promise<void> {
    const config = this.config;
    if (this.closed || !config) return;
    const attempt = await this.track(this.attempt(record, config, resend));
    if (!isSuccess(attempt)) this.scheduleRetry(record, retry + 1, resend);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }

  private async attempt(record: EventRecord, config: WebhookConfig, resend: boolean): Promise<DeliveryAttempt> {
    const started = Date.now();
    const attempt: DeliveryAttempt = {
      attempt: record.deliveries.length + 1,
      at: started,
      url: config.url,
      durationMs: 0,
      ...(resend ? { resend: true } : {}),
    };
    record.deliveries.push(attempt);
    try {
      const response = await fetch(config.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': signatureHeader(record.payload, config.secret, Math.floor(started / 1000)),
        },
        body: record.payload,
        signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(config.timeoutMs ?? DEFAULT_TIMEOUT_MS)]),
        redirect: 'manual',
      });
      attempt.status = response.status;
      await response.arrayBuffer().catch(() => undefined);
    } catch (error) {
      attempt.error = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    }
    attempt.durationMs = Date.now() - started;
    return attempt;
  }

  /** Waits until no delivery is in flight and none is scheduled (for tests). */
  async idle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.inFlight.size > 0 || this.timers.size > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.controller.abort();
  }
}

function isSuccess(attempt: DeliveryAttempt): boolean {
  return attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
}
