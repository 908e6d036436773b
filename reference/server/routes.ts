/**
 * The paid-route table (spec sections 4, 5, 7 and 12): route configuration,
 * its start-up checks (MSG-7, UNIT-6), the discovery document (DISC-1), and
 * the path canonicalization that makes the paywall cover a resource rather
 * than a string (PAY-1 to PAY-3). Framework-free, so the engine and any
 * HTTP adapter share one definition of "this request is for a paid route".
 */
import { DISCOVERY_PATH, STRIPE402_VERSION } from '@stripe402/core';
import { isUnits, unitsToMinor } from '@stripe402/core';
import type { DiscoveryDocument, DiscoveryRoute } from '@stripe402/core';

/** One price of a route in one currency (MSG-6). */
export interface Price {
  /** ISO 4217 code, lower case. */
  currency: string;
  /** Units per request. */
  amount: number;
  /** Smallest top-up, in units; at least `amount` (MSG-7). */
  minTopUp: number;
  /** Largest top-up, in units (extension); at least `minTopUp`. */
  maxTopUp?: number;
  /** What the charge is for, shown in the challenge. */
  description?: string;
}

/**
 * A paid route as configured (also the shape of `--routes FILE` entries):
 * either one price inline (`amount`, `currency`, `minTopUp`, `maxTopUp?`) or
 * several in `accepts`, one per currency, the first being the default (MSG-11).
 */
export interface PaidRouteConfig {
  /** HTTP method, e.g. "GET". A paid GET is also paid for HEAD (PAY-2). */
  method: string;
  /** Absolute path; `:name` segments match any one segment. */
  path: string;
  description?: string;
  mimeType?: string;
  amount?: number;
  currency?: string;
  minTopUp?: number;
  maxTopUp?: number;
  accepts?: Price[];
}

/** A validated route with what the hot path needs precomputed. */
export interface PaidRoute {
  /** "GET /api/joke": the route's name in logs and journal entries. */
  readonly key: string;
  readonly method: string;
  readonly path: string;
  readonly description?: string;
  readonly mimeType?: string;
  readonly prices: readonly Price[];
  readonly byCurrency: ReadonlyMap<string, Price>;
  /** Canonical segments of `path`; null marks a `:name` segment. */
  readonly pattern: readonly (string | null)[];
  readonly hasParams: boolean;
}

/** A request matched to a paid route. */
export interface RouteMatch {
  readonly route: PaidRoute;
  /** The resource the challenge names: the route path, with parameters filled in from the request. */
  readonly resourcePath: string;
}

/** A route configuration that cannot be served safely; thrown at start-up. */
export class RouteConfigError extends Error {
  override name = 'RouteConfigError';
}

/**
 * Stripe's minimum charge per currency, in the currency's smallest unit
 * (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 * A route whose `minTopUp` charges less would fail every top-up (UNIT-6).
 */
export const STRIPE_MINIMUM_CHARGE: Readonly<Record<string, number>> = Object.freeze({
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50,
  gbp: 30, hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50,
  pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
});

/** The largest charge Stripe accepts, in the smallest unit (most currencies; UNIT-8). */
export const STRIPE_MAXIMUM_CHARGE = 99_999_999;

/** The step a charge must be a multiple of, in the smallest unit (UNIT-7, Table 5.5). */
export function chargeStep(currency: string): number {
  if (currency === 'isk') return 100;
  if (currency === 'bhd' || currency === 'jod' || currency === 'kwd' || currency === 'omr' || currency === 'tnd') return 10;
  return 1;
}

const METHOD_PATTERN = /^[A-Z]+$/;
const CURRENCY_PATTERN = /^[a-z]{3}$/;

/** Validates route configurations and builds the table; throws RouteConfigError. */
export function compileRoutes(configs: readonly PaidRouteConfig[], options: { enforceStripeMinimums?: boolean } = {}): PaidRoute[] {
  const enforceMinimums = options.enforceStripeMinimums ?? true;
  const seen = new Set<string>();
  return configs.map((config) => {
    const method = String(config.method ?? '').toUpperCase();
    if (!METHOD_PATTERN.test(method) || method === 'OPTIONS') throw new RouteConfigError(`route method '${String(config.method)}' is not a payable HTTP method`);
    if (typeof config.path !== 'string' || !config.path.startsWith('/')) throw new RouteConfigError(`route path '${String(config.path)}' must start with '/'`);
    const key = `${method} ${config.path}`;
    const pattern = canonicalSegments(config.path).map((segment) => (segment.startsWith(':') ? null : segment));
    const patternKey = `${method} /${pattern.map((s) => s ?? ':').join('/')}`;
    if (seen.has(patternKey)) throw new RouteConfigError(`route ${key} is declared twice (after canonicalization)`);
    seen.add(patternKey);

    const prices = pricesOf(config, key);
    const byCurrency = new Map<string, Price>();
    for (const price of prices) {
      if (byCurrency.has(price.currency)) throw new RouteConfigError(`route ${key} lists currency ${price.currency} twice`);
      checkPrice(price, key, enforceMinimums);
      byCurrency.set(price.currency, price);
    }
    return Object.freeze({
      key,
      method,
      path: config.path,
      ...(config.description === undefined ? {} : { description: config.description }),
      ...(config.mimeType === undefined ? {} : { mimeType: config.mimeType }),
      prices: Object.freeze(prices),
      byCurrency,
      pattern: Object.freeze(pattern),
      hasParams: pattern.includes(null),
    });
  });
}

function pricesOf(config: PaidRouteConfig, key: string): Price[] {
  const inline = config.amount !== undefined || config.currency !== undefined || config.minTopUp !== undefined;
  if (config.accepts !== undefined) {
    if (inline) throw new RouteConfigError(`route ${key}: give either amount/currency/minTopUp or accepts, not both`);
    if (!Array.isArray(config.accepts) || config.accepts.length === 0) throw new RouteConfigError(`route ${key}: accepts needs at least one price`);
    return config.accepts.map((p) => ({ ...p }));
  }
  const price: Price = { currency: config.currency as string, amount: config.amount as number, minTopUp: config.minTopUp as number };
  if (config.maxTopUp !== undefined) price.maxTopUp = config.maxTopUp;
  return [price];
}

function checkPrice(price: Price, key: string, enforceMinimums: boolean): void {
  if (typeof price.currency !== 'string' || !CURRENCY_PATTERN.test(price.currency)) {
    throw new RouteConfigError(`route ${key}: currency '${String(price.currency)}' is not a lower-case ISO 4217 code`);
  }
  for (const field of ['amount', 'minTopUp'] as const) {
    if (!isUnits(price[field])) throw new RouteConfigError(`route ${key}: ${field} must be an integer from 1 to 2^53-1`);
  }
  if (price.maxTopUp !== undefined && !isUnits(price.maxTopUp)) throw new RouteConfigError(`route ${key}: maxTopUp must be an integer from 1 to 2^53-1`);
  // MSG-7: a client paying minTopUp must be able to afford at least the request it is paying for.
  if (price.minTopUp < price.amount) throw new RouteConfigError(`route ${key}: minTopUp (${price.minTopUp}) must be at least amount (${price.amount})`);
  if (price.maxTopUp !== undefined && price.maxTopUp < price.minTopUp) {
    throw new RouteConfigError(`route ${key}: maxTopUp (${price.maxTopUp}) must be at least minTopUp (${price.minTopUp})`);
  }
  // UNIT-7: every advertised bound must be a top-up Stripe can charge exactly.
  const step = chargeStep(price.currency);
  for (const field of ['minTopUp', 'maxTopUp'] as const) {
    const units = price[field];
    if (units !== undefined && unitsToMinor(units, price.currency) % step !== 0) {
      throw new RouteConfigError(`route ${key}: the charge for ${field} ${units} is not a multiple of ${step} in the smallest unit of ${price.currency}`);
    }
  }
  if (price.maxTopUp !== undefined && unitsToMinor(price.maxTopUp, price.currency) > STRIPE_MAXIMUM_CHARGE) {
    throw new RouteConfigError(`route ${key}: maxTopUp ${price.maxTopUp} charges more than Stripe accepts (${STRIPE_MAXIMUM_CHARGE} in the smallest unit)`);
  }
  const minimum = STRIPE_MINIMUM_CHARGE[price.currency];
  if (enforceMinimums && minimum !== undefined && unitsToMinor(price.minTopUp, price.currency) < minimum) {
    throw new RouteConfigError(
      `route ${key}: minTopUp ${price.minTopUp} units charges ${unitsToMinor(price.minTopUp, price.currency)} in the smallest unit of ${price.currency}, below Stripe's minimum charge of ${minimum}`,
    );
  }
}

/**
 * The segments of a path as the paywall compares them (PAY-1): percent-
 * encoding decoded (repeatedly, so double encoding cannot hide a path, and
 * including %2F), backslashes read as slashes, empty segments (duplicate or
 * trailing slashes) dropped, dot segments resolved, letters lower-cased.
 * Deliberately more permissive than any router: every spelling a router
 * might map to a handler must land on the same canonical form.
 */
export function canonicalSegments(rawPath: string): string[] {
  let path = rawPath;
  for (let round = 0; round < 4 && path.includes('%'); round++) {
    const decoded = path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === path) break;
    path = decoded;
  }
  if (path.includes('\\')) path = path.replace(/\\/g, '/');
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      segments.pop();
      continue;
    }
    segments.push(segment.toLowerCase());
  }
  return segments;
}

/** The path part of a request URL ("http://h/a/b?q" -> "/a/b"), without parsing the whole URL. */
export function pathnameOf(url: string): string {
  const scheme = url.indexOf('://');
  const start = url.indexOf('/', scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return '/';
  let end = url.length;
  const query = url.indexOf('?', start);
  if (query >= 0) end = query;
  const hash = url.indexOf('#', start);
  if (hash >= 0 && hash < end) end = hash;
  return url.slice(start, end);
}

/** How many `match` answers a route table remembers, and the longest raw path it remembers one for. */
const MATCH_CACHE_ENTRIES = 1024;
const MATCH_CACHE_MAX_PATH = 256;

/**
 * Finds the paid route a request is for. HEAD is matched as GET (PAY-2).
 * With `anyPrefix` (the default), a route also matches under any path
 * prefix, so mounting an app under `/v1` or a proxy adding a prefix cannot
 * open a free door (PAY-3); the cost is that a free route ending in a paid
 * route's path is paid too, which is the safe direction to err.
 */
export class RouteTable {
  readonly routes: readonly PaidRoute[];
  private readonly byMethod = new Map<string, PaidRoute[]>();
  private readonly anyPrefix: boolean;
  /** Recent answers of `match`, by method and raw path; a RouteMatch is immutable, so sharing one is safe. */
  private readonly matchCache = new Map<string, RouteMatch | null>();

  constructor(routes: readonly PaidRoute[], options: { anyPrefix?: boolean } = {}) {
    this.routes = routes;
    this.anyPrefix = options.anyPrefix ?? true;
    for (const route of routes) {
      const list = this.byMethod.get(route.method) ?? [];
      list.push(route);
      this.byMethod.set(route.method, list);
    }
  }

  match(method: string, rawPath: string): RouteMatch | null {
    const upper = method.toUpperCase();
    const candidates = this.byMethod.get(upper === 'HEAD' ? 'GET' : upper);
    if (!candidates) return null;
    // Every request passes here, free ones too, and clients repeat their
    // paths: remember recent answers (bounded, so odd paths cannot grow it).
    const cacheable = rawPath.length <= MATCH_CACHE_MAX_PATH;
    const key = cacheable ? `${upper} ${rawPath}` : '';
    if (cacheable) {
      const cached = this.matchCache.get(key);
      if (cached !== undefined) return cached;
    }
    const found = this.find(candidates, rawPath);
    if (cacheable) {
      if (this.matchCache.size >= MATCH_CACHE_ENTRIES) this.matchCache.delete(this.matchCache.keys().next().value!);
      this.matchCache.set(key, found);
    }
    return found;
  }

  private find(candidates: readonly PaidRoute[], rawPath: string): RouteMatch | null {
    const segments = canonicalSegments(rawPath);
    for (const route of candidates) {
      const offset = segments.length - route.pattern.length;
      if (offset < 0 || (offset > 0 && !this.anyPrefix)) continue;
      if (!patternMatches(route.pattern, segments, offset)) continue;
      const resourcePath = route.hasParams ? '/' + segments.slice(offset).join('/') : route.path;
      return Object.freeze({ route, resourcePath });
    }
    return null;
  }

  /** The discovery document (DISC-1): one entry per route and currency. */
  discovery(publishableKey: string): DiscoveryDocument {
    const routes: DiscoveryRoute[] = [];
    for (const route of this.routes) {
      for (const price of route.prices) {
        const entry: DiscoveryRoute = { method: route.method, path: route.path, amount: price.amount, currency: price.currency, minTopUp: price.minTopUp };
        if (price.maxTopUp !== undefined) entry.maxTopUp = price.maxTopUp;
        const description = price.description ?? route.description;
        if (description !== undefined) entry.description = description;
        routes.push(entry);
      }
    }
    return { stripe402Version: STRIPE402_VERSION as 1, publishableKey, routes };
  }
}

function patternMatches(pattern: readonly (string | null)[], segments: readonly string[], offset: number): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i];
    if (expected !== null && expected !== segments[offset + i]) return false;
  }
  return true;
}

export { DISCOVERY_PATH };
