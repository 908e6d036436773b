/**
 * The state one conformance run shares between its checks: the target and
 * its paid route, the transport, the optional Stripe backend, and a wallet of
 * test cards whose client ids and balances the suite learns from the
 * target's own answers. Every exchange that carried a payment header is kept,
 * so section 10 can judge every error the run provoked and section 11 can
 * balance every charge the run observed against the backend.
 */
import {
  DISCOVERY_PATH,
  checkDiscoveryDocument,
  decodePaymentHeader,
  encodeHeader,
  isClientId,
  unitsToMinor,
  type DiscoveryDocument,
  type PaymentPayload,
  type PaymentRequiredResponse,
  type PaymentRequirements,
} from '@stripe402/core';
import type { Backend } from './backend.ts';
import { CheckFailure, Prerequisite, SkipCheck } from './checks/types.ts';
import { balanceOf, delivered, describe, errorCodeOf, headerValue, isSuccess, toExchange, type Exchange } from './exchange.ts';
import { TransportError, type HttpTransport } from './http.ts';

/** The test cards the suite pays with. */
export interface Cards {
  /** Cards that succeed, one client each; the first is the probe card. */
  good: string[];
  /** A card the backend declines. */
  declined: string;
  /** A card that needs 3-D Secure authentication. */
  authentication: string;
}

/** Everything a run was asked to do, after defaults. */
export interface ResolvedOptions {
  target: string;
  level: 'core' | 'ledger' | 'extensions' | 'all';
  only: string[];
  strict: boolean;
  runs: number;
  seed: number;
  path?: string;
  commands?: string;
  timeoutMs: number;
  concurrency: number;
  cards: Cards;
  failingRoute?: string;
  serverSecret?: string;
  stripeUrl?: string;
  stripeKey?: string;
}

/** A paid route and its price as the challenge announced it. */
export interface Route {
  method: string;
  path: string;
  challenge: PaymentRequiredResponse;
  /** The accepts entry the suite pays through (the first, unless a currency was chosen). */
  accept: PaymentRequirements;
}

/** What the suite found at the target URL. */
export interface Target {
  url: URL;
  origin: URL;
  method: string;
  path: string;
  /** The first unpaid exchange with the paid route. */
  firstExchange: Exchange;
  /** The paid route, when its challenge decodes. */
  route?: Route;
  discovery: { status?: number; contentType?: string; document?: DiscoveryDocument; error?: string };
}

/** A charge the suite saw the target report, for money conservation (LEDG-5). */
export interface ObservedCharge {
  paymentIntentId: string;
  clientId: string;
  units: number;
  currency: string;
}

/** What a request may carry besides the route defaults. */
export interface SendOptions {
  /** A raw payment header value, or several field lines. */
  payment?: string | string[];
  /** A payload object to encode as the payment header (or, with `payment`, what the raw value means). */
  payload?: object;
  headers?: Record<string, string | string[]>;
  method?: string;
  path?: string;
}

const MAX_DRAIN_REQUESTS = 20_000;

/** The run's shared state and the helpers checks pay and spend with. */
export class RunContext {
  /** Every exchange that carried a payment header, in order. */
  readonly observed: Exchange[] = [];
  /** Charges the target reported (chargeId) or that the suite completed (authentication), by PaymentIntent id. */
  readonly charges = new Map<string, ObservedCharge>();
  /** Client ids the target handed out to the suite. */
  readonly clientsUsed = new Set<string>();
  /** Last balance the target reported, by `clientId|currency`. */
  readonly balances = new Map<string, number>();
  /** Client id of each card, once learned. */
  readonly cardClients = new Map<string, string>();
  private randomState: number;
  private readonly memos = new Map<string, Promise<unknown>>();

  constructor(
    readonly options: ResolvedOptions,
    readonly transport: HttpTransport,
    readonly target: Target,
    readonly backend: Backend | undefined,
  ) {
    this.randomState = options.seed >>> 0 || 1;
  }

  /** The paid route, or a Prerequisite skip when its challenge did not decode. */
  route(): Route {
    if (!this.target.route) {
      throw new Prerequisite('the paid route answered no decodable challenge (see 3/challenge-header-decodes)');
    }
    return this.target.route;
  }

  /** The price of the paid route. */
  get accept(): PaymentRequirements {
    return this.route().accept;
  }

  /** The backend, or a skip that keeps the level from being claimed. */
  requireBackend(): Backend {
    if (!this.backend) throw new SkipCheck('needs access to the Stripe backend (--stripe-url and --stripe-key)');
    return this.backend;
  }

  /**
   * What the run established once about the target (which extensions it
   * implements, CONF-5), shared by every check that needs it. A failed
   * attempt is not kept, so the next check tries again.
   */
  memo<T>(key: string, establish: () => Promise<T>): Promise<T> {
    let known = this.memos.get(key) as Promise<T> | undefined;
    if (!known) {
      known = establish();
      this.memos.set(key, known);
      known.catch(() => this.memos.delete(key));
    }
    return known;
  }

  /** A deterministic pseudo-random number in [0, 1), from the run's seed. */
  random(): number {
    // mulberry32: tiny, seedable, good enough to pick test data.
    let t = (this.randomState = (this.randomState + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A well-formed client id no card produced. */
  randomClientId(): string {
    let id = '';
    while (id.length < 64) id += Math.floor(this.random() * 16).toString(16);
    return id;
  }

  /** A fresh idempotency key (MSG-10); unique across runs, so a rerun never collides with an old key. */
  idempotencyKey(): string {
    return `conformance-${Date.now().toString(36)}-${crypto.randomUUID().replaceAll('-', '')}`.slice(0, 64);
  }

  /** Sends one request to a route (the paid route by default) and records it. */
  async send(options: SendOptions = {}, route: Pick<Route, 'method' | 'path'> & Partial<Route> = this.route()): Promise<Exchange> {
    const method = options.method ?? route.method;
    const headers: Record<string, string | string[]> = { ...options.headers };
    if (options.payment !== undefined) headers.payment = options.payment;
    else if (options.payload !== undefined) headers.payment = encodeHeader(options.payload);
    const paymentName = Object.keys(headers).find((name) => name.toLowerCase() === 'payment');
    const sent = paymentName === undefined ? undefined : headers[paymentName];
    // Learn from whatever was sent, even a raw value: a spend the suite does not account for would leave its balances stale.
    let payload: object | undefined = options.payload;
    if (payload === undefined && sent !== undefined) {
      const decoded = decodePaymentHeader(delivered(sent));
      if (decoded.ok) payload = decoded.value;
    }
    let body: string | undefined;
    if (!['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method)) {
      body = '{}';
      headers['content-type'] ??= 'application/json';
    }
    const request = { method, path: options.path ?? route.path, headers, body };
    let response;
    try {
      response = await this.transport.request(request);
    } catch (error) {
      if (error instanceof TransportError) {
        throw new CheckFailure(
          `an HTTP response to ${method} ${request.path}`,
          error.message,
        );
      }
      throw error;
    }
    const exchange = toExchange(request, response, payload);
    if (sent !== undefined) {
      this.observed.push(exchange);
      // Every answer teaches a balance, also one to an invalid header that a lax target served anyway.
      this.learn(exchange, (payload ?? looseMembers(sent)) as Partial<PaymentPayload>, route.accept);
    }
    return exchange;
  }

  /**
   * Sends a payload to the paid route (or another). A route whose price is
   * not its first accepts entry is paid in that entry's currency, so the
   * payload names it (MSG-11) unless it names a currency itself.
   */
  pay(payload: object, route?: Route): Promise<Exchange> {
    const first = route?.challenge.accepts[0];
    if (route && first && route.accept.currency !== first.currency && !('currency' in payload)) {
      payload = { ...payload, currency: route.accept.currency };
    }
    return this.send({ payload }, route);
  }

  /** The paid route priced in each currency its challenge offers, the first (the route itself) first. */
  routesByCurrency(): Route[] {
    const home = this.route();
    return home.challenge.accepts.map((accept, i) => (i === 0 ? home : { ...home, accept }));
  }

  /** Spends from a client id once. */
  spend(clientId: string, route?: Route, extra: object = {}): Promise<Exchange> {
    return this.pay({ stripe402Version: 1, clientId, ...extra }, route);
  }

  /** Pays with a card; the top-up defaults to the route's minTopUp. */
  payWithCard(card: string, topUpAmount?: number, route?: Route, extra: object = {}): Promise<Exchange> {
    const accept = (route ?? this.route()).accept;
    return this.pay({ stripe402Version: 1, paymentMethodId: card, topUpAmount: topUpAmount ?? accept.minTopUp, ...extra }, route);
  }

  /** The last balance the target reported for a client in the route's currency. */
  knownBalance(clientId: string, route: Route = this.route()): number | undefined {
    return this.balances.get(`${clientId}|${currencyOf(route)}`);
  }

  /**
   * The PaymentIntents of this run charged for a client, or undefined without
   * a backend: those whose metadata names it (PROC-14), and those the target
   * reported as its chargeId, found by id. Matching by metadata alone would
   * miss every charge of a target that omits it, which only
   * 5/top-up-metadata-names-client-and-units may judge.
   */
  async chargedFor(clientId: string): Promise<Set<string> | undefined> {
    if (!this.backend) return undefined;
    const ids = new Set((await this.backend.paymentIntentsFor(clientId)).map((intent) => intent.id));
    for (const charge of this.charges.values()) if (charge.clientId === clientId) ids.add(charge.paymentIntentId);
    return ids;
  }

  /** Records a charge the suite completed itself (a resumed authentication). */
  recordCharge(charge: ObservedCharge): void {
    this.charges.set(charge.paymentIntentId, charge);
  }

  /**
   * The client id of a card and its balance. Pays with the card once when
   * the id is not known yet (which spends, or charges if the balance is short).
   */
  async identify(card: string, route: Route = this.route()): Promise<{ clientId: string; balance: number }> {
    const known = this.cardClients.get(card);
    if (known) {
      const balance = this.knownBalance(known, route);
      if (balance !== undefined) return { clientId: known, balance };
      return { clientId: known, balance: await this.probeBalance(known, route) };
    }
    const exchange = await this.payWithCard(card, undefined, route);
    const answer = exchange.paymentResponse;
    if (!isSuccess(exchange.status) || !answer || !isClientId(answer.clientId)) {
      throw new Prerequisite(`paying with ${card} was not served (${describe(exchange)}); see 8/top-up-charges-and-serves`);
    }
    this.cardClients.set(card, answer.clientId);
    return { clientId: answer.clientId, balance: answer.creditsRemaining };
  }

  /** Learns a client's balance by spending once (or being refused). */
  async probeBalance(clientId: string, route: Route = this.route()): Promise<number> {
    const exchange = await this.spend(clientId, route);
    const balance = balanceOf(exchange);
    if (balance === undefined) throw new Prerequisite(`a spend with a known client id reported no balance (${describe(exchange)})`);
    return balance;
  }

  /**
   * Spends a client's balance down until it no longer covers one request,
   * checking on the way that the spends are served and that the target then
   * refuses with exactly the remainder. Returns the remainder.
   */
  async drain(clientId: string, route: Route = this.route()): Promise<number> {
    const balance = await this.spendDown(clientId, 0, route);
    const last = await this.spend(clientId, route);
    if (isSuccess(last.status)) {
      throw new CheckFailure(
        `a spend to be refused once the reported balance (${balance} units) is below the price (${route.accept.amount} units)`,
        describe(last),
      );
    }
    // The code is read wherever the target put it (readAnswer); a refusal without payment-response reports no
    // balance to compare, and that missing header is 3/payment-response-on-error's to judge, not this helper's.
    if (errorCodeOf(last) !== 'insufficient_credits') {
      throw new CheckFailure('insufficient_credits once the balance is below the price', describe(last));
    }
    const reported = balanceOf(last);
    if (reported !== undefined && reported !== balance) {
      throw new CheckFailure(`a balance of ${balance} units after spending it down`, `creditsRemaining ${reported}`);
    }
    return balance;
  }

  /**
   * Spends a client's balance down to less than `keep + amount` but at least
   * `keep`, each spend required to be served. Returns the balance left.
   */
  async spendDown(clientId: string, keep: number, route: Route = this.route()): Promise<number> {
    const amount = route.accept.amount;
    await this.drainFast(clientId, keep, route);
    let balance = this.knownBalance(clientId, route) ?? (await this.probeBalance(clientId, route));
    const count = Math.floor((balance - keep) / amount);
    if (count <= 0) return balance;
    if (count > MAX_DRAIN_REQUESTS) {
      throw new SkipCheck(`the balance of client ${clientId.slice(0, 8)}… is too large to spend down (${balance} units at ${amount} per request)`);
    }
    const exchanges = await this.burst(count, () => this.spend(clientId, route));
    const refused = exchanges.find((e) => !isSuccess(e.status));
    if (refused) {
      throw new CheckFailure(`each of ${count} spends from a reported balance of ${balance} units to be served`, describe(refused));
    }
    balance -= count * amount;
    const lowest = Math.min(...exchanges.map((e) => balanceOf(e) ?? Infinity));
    if (lowest !== balance) {
      throw new CheckFailure(`a balance of ${balance} units after ${count} spends of ${amount} units`, `creditsRemaining ${lowest}`);
    }
    return balance;
  }

  /**
   * Spends most of a balance through the dearest paid GET route the
   * discovery document lists in the same currency, so that spending down
   * takes fewer requests. Any surprise and the suite stops using that route:
   * the exact drain on the paid route under test follows either way.
   */
  private async drainFast(clientId: string, keep: number, route: Route): Promise<void> {
    const fast = await this.fastRoute(route);
    if (!fast) return;
    let balance = this.knownBalance(clientId, route);
    while (balance !== undefined && balance - keep >= fast.accept.amount) {
      const count = Math.floor((balance - keep) / fast.accept.amount);
      if (count > MAX_DRAIN_REQUESTS) return;
      const spends = await this.burst(count, () => this.spend(clientId, fast));
      const reported = spends.map((s) => (isSuccess(s.status) ? balanceOf(s) : undefined));
      const expected = balance - count * fast.accept.amount;
      if (reported.some((r) => r === undefined) || Math.min(...(reported as number[])) !== expected) {
        this.fastDrainRoute = null;
        return;
      }
      balance = expected;
    }
  }

  private fastDrainRoute: Route | null | undefined;

  private async fastRoute(route: Route): Promise<Route | undefined> {
    if (route !== this.target.route) return undefined;
    if (this.fastDrainRoute !== undefined) return this.fastDrainRoute ?? undefined;
    this.fastDrainRoute = null;
    const failing = this.options.failingRoute?.replace(/^[A-Z]+ /, '');
    const candidates = (this.target.discovery.document?.routes ?? [])
      .filter((r) => r.method === 'GET' && !r.path.includes(':') && r.path !== failing && r.path !== route.path)
      .filter((r) => r.currency === route.accept.currency && r.amount > route.accept.amount * 2)
      .sort((a, b) => b.amount - a.amount);
    for (const candidate of candidates) {
      const unpaid = await this.send({ method: 'GET', path: candidate.path }, { method: 'GET', path: candidate.path });
      const accept = unpaid.paymentRequired?.accepts[0];
      if (unpaid.status === 402 && accept && accept.currency === route.accept.currency && accept.amount === candidate.amount) {
        this.fastDrainRoute = { method: 'GET', path: candidate.path, challenge: unpaid.paymentRequired!, accept };
        break;
      }
    }
    return this.fastDrainRoute ?? undefined;
  }

  /** Runs `count` requests, at most `--concurrency` at a time. */
  async burst(count: number, request: () => Promise<Exchange>, concurrency = this.options.concurrency): Promise<Exchange[]> {
    const results: Exchange[] = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        results.push(await request());
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    // Answers of a burst arrive in any order; the balance after it is the lowest one reported
    // (spends only lower it, and a top-up in a burst is charged before the spends it pays for).
    const lowest = new Map<string, number>();
    const charges = new Map<string, number>();
    for (const exchange of results) {
      const key = exchange.balanceKey;
      const value = balanceOf(exchange);
      if (key === undefined || value === undefined) continue;
      lowest.set(key, Math.min(value, lowest.get(key) ?? Infinity));
      if (exchange.answer.chargeId !== undefined) charges.set(key, (charges.get(key) ?? 0) + 1);
    }
    for (const [key, value] of lowest) {
      // Two charges in one burst (a target that does not serialize top-ups) leave no answer naming the final
      // balance: the suite forgets it, and the next use learns it again.
      if ((charges.get(key) ?? 0) > 1) this.balances.delete(key);
      else this.balances.set(key, value);
    }
    return results;
  }

  /** The largest top-up the route allows. */
  maxTopUp(route: Route = this.route()): number {
    return route.accept.maxTopUp ?? Number.MAX_SAFE_INTEGER;
  }

  /**
   * A card whose client has a balance of at least `units`: tops it up when
   * short (spending it down first, so the top-up is a real charge).
   */
  async fund(card: string, units: number, route: Route = this.route()): Promise<{ clientId: string; balance: number }> {
    const { clientId, balance } = await this.identify(card, route);
    if (balance >= units) return { clientId, balance };
    const remainder = await this.drain(clientId, route);
    const topUp = Math.max(route.accept.minTopUp, units + route.accept.amount - remainder);
    if (topUp > this.maxTopUp(route)) throw new SkipCheck(`needs a balance of ${units} units, above the route's maxTopUp`);
    const exchange = await this.payWithCard(card, topUp, route);
    const answer = exchange.paymentResponse;
    if (!isSuccess(exchange.status) || !answer) {
      throw new Prerequisite(`a top-up with ${card} was not served (${describe(exchange)}); see 8/top-up-charges-and-serves`);
    }
    return { clientId, balance: answer.creditsRemaining };
  }

  /**
   * Spends a card's client down below one request, so that paying with the
   * card must charge it. Returns the client id and the remainder.
   */
  async uncovered(card: string, route: Route = this.route()): Promise<{ clientId: string; remainder: number }> {
    const { clientId } = await this.identify(card, route);
    const remainder = await this.drain(clientId, route);
    return { clientId, remainder };
  }

  /** Spends a card's client down to exactly zero (topping up by the amount that makes that possible). */
  async zeroBalance(card: string, route: Route = this.route()): Promise<string> {
    const { clientId, remainder } = await this.uncovered(card, route);
    if (remainder === 0) return clientId;
    const amount = route.accept.amount;
    const minTopUp = route.accept.minTopUp;
    const topUp = minTopUp + ((amount - ((remainder + minTopUp) % amount)) % amount);
    if (topUp > this.maxTopUp(route)) throw new SkipCheck('cannot bring a balance to exactly zero within the route\'s maxTopUp');
    const exchange = await this.payWithCard(card, topUp, route);
    if (!isSuccess(exchange.status)) {
      throw new Prerequisite(`a top-up with ${card} was not served (${describe(exchange)}); see 8/top-up-charges-and-serves`);
    }
    const left = await this.drain(clientId, route);
    if (left !== 0) throw new CheckFailure('a balance of 0 units after spending it down', `${left} units`);
    return clientId;
  }

  /** Fetches the discovery document again (checks that compare it with the target). */
  async fetchDiscovery(): Promise<Exchange> {
    return this.send({ method: 'GET', path: DISCOVERY_PATH }, { method: 'GET', path: DISCOVERY_PATH });
  }

  /** Records what a response to a payload the suite built says about balances and charges. */
  private learn(exchange: Exchange, payload: Partial<PaymentPayload>, accept: PaymentRequirements | undefined): void {
    const answer = exchange.answer;
    if (!accept || answer.clientId === undefined) return;
    const currency = typeof payload.currency === 'string' ? payload.currency : accept.currency;
    if (isClientId(answer.clientId)) {
      this.clientsUsed.add(answer.clientId);
      if (answer.creditsRemaining !== undefined) {
        exchange.balanceKey = `${answer.clientId}|${currency}`;
        this.balances.set(exchange.balanceKey, answer.creditsRemaining);
      }
      if (typeof payload.paymentMethodId === 'string' && isSuccess(exchange.status)) {
        this.cardClients.set(payload.paymentMethodId, answer.clientId);
      }
    }
    // A charge counts only with the units it bought: a top-up amount that is no integer (junk a lax target charged) has none.
    const units = payload.topUpAmount ?? accept.minTopUp;
    if (answer.chargeId && !this.charges.has(answer.chargeId) && Number.isSafeInteger(units)) {
      this.charges.set(answer.chargeId, { paymentIntentId: answer.chargeId, clientId: answer.clientId, units, currency });
    }
  }
}

/**
 * The members of a payment value the strict codec refuses, read the way a lax
 * server would (Node's forgiving base64, then JSON), so that what such a
 * server did with it (the currency it spent, the top-up it charged) is still
 * learned. Empty when even that reading fails.
 */
function looseMembers(sent: string | string[]): Record<string, unknown> {
  const value = Array.isArray(sent) ? sent[0] ?? '' : sent;
  try {
    const json: unknown = JSON.parse(Buffer.from(value.trim(), 'base64').toString('utf8'));
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The currency a route charges and spends in. */
export function currencyOf(route: Route): string {
  return route.accept.currency;
}

/** The cents (smallest currency unit) the suite expects for a top-up, or undefined for an invalid amount. */
export function expectedMinor(units: number, currency: string): number | undefined {
  try {
    return unitsToMinor(units, currency);
  } catch {
    return undefined;
  }
}

/** Resolves the target URL: a paid resource, or a base URL whose paid routes the discovery document lists. */
export async function resolveTarget(transport: HttpTransport, targetUrl: URL, failingRoute?: string): Promise<Target> {
  const discovery = await loadDiscovery(transport);
  const direct = targetUrl.pathname + targetUrl.search;
  let method = 'GET';
  let path = direct;
  let first = toExchange({ method, path }, await transport.request({ method, path }));
  if (first.status !== 402) {
    const candidate = discovery.document?.routes.find(
      (r) => r.method === 'GET' && !r.path.includes(':') && r.path !== failingRoute,
    ) ?? discovery.document?.routes.find((r) => !r.path.includes(':') && r.path !== failingRoute);
    if (!candidate) {
      throw new TargetError(
        `${targetUrl.href} answered HTTP ${first.status}, not 402, and ${DISCOVERY_PATH} lists no paid route ` +
          `(${discovery.error ?? 'no routes'}); give the URL of a paid resource`,
      );
    }
    method = candidate.method;
    path = candidate.path;
    const request = { method, path, ...(method === 'GET' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } }) };
    first = toExchange(request, await transport.request(request));
  }
  const target: Target = { url: targetUrl, origin: new URL(targetUrl.origin), method, path, firstExchange: first, discovery };
  if (first.status === 402 && first.paymentRequired) {
    target.route = { method, path, challenge: first.paymentRequired, accept: first.paymentRequired.accepts[0] };
  }
  return target;
}

/** The target URL is not something the suite can test (exit 2). */
export class TargetError extends Error {
  override name = 'TargetError';
}

async function loadDiscovery(transport: HttpTransport): Promise<Target['discovery']> {
  const response = await transport.request({ method: 'GET', path: DISCOVERY_PATH });
  if (response.status !== 200) return { status: response.status, error: `${DISCOVERY_PATH} answered HTTP ${response.status}` };
  const contentType = headerValue(response.headers, 'content-type') ?? '';
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    return { status: response.status, contentType, error: `${DISCOVERY_PATH} is not JSON` };
  }
  const checked = checkDiscoveryDocument(json);
  if (!checked.ok) return { status: response.status, contentType, error: `${DISCOVERY_PATH} does not validate: ${checked.error.detail}` };
  return { status: response.status, contentType, document: checked.value };
}
