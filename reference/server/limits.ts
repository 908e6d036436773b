/**
 * Rate limits on what costs money or Stripe calls (spec 13.5 and 13.7,
 * SEC-3, SEC-7, SEC-8): token buckets kept in this process, which the
 * payment engine consults before it spends a ledger read on an unpaid client
 * id or a Stripe call on a request. Four budgets: requests whose client id
 * does not pay, per source (guessing or replaying leaked ids); Stripe-bound
 * attempts that do not end in a paid request, per source and per card
 * (card testing); and every Stripe call the engine makes for requests, all
 * sources together, so that no input can use up the account's own Stripe
 * rate limit. A request over a budget gets the `rate_limited` answer
 * (ERR-10) and changes nothing. Buckets live in one process: N processes
 * behind a load balancer allow N times the budget (docs/rate-limits.md).
 * The source of a request is its peer address, or the client named in
 * X-Forwarded-For when the peer is a configured trusted proxy.
 */
import { BlockList, isIP } from 'node:net';

/** One budget: `burst` tokens at most, `perMinute` tokens added back every minute. */
export interface BucketOptions {
  burst: number;
  perMinute: number;
}

/** What the engine limits; `false` turns one budget off. */
export interface RateLimitOptions {
  /** Requests per source whose client id does not cover the request (unknown ids and empty balances alike, CID-4), SEC-3. */
  unpaidClientIds?: BucketOptions | false;
  /** Requests per source that make Stripe calls and do not end in a served request (declines, unusable PaymentMethods; not a refused top-up amount), SEC-7. */
  chargeAttemptsPerSource?: BucketOptions | false;
  /** The same, per card: the client id its fingerprint derives, SEC-7. */
  chargeAttemptsPerCard?: BucketOptions | false;
  /** Stripe calls made for requests, all sources together, SEC-8. */
  stripeCalls?: BucketOptions | false;
  /** How many sources (and cards) the limiter remembers; the least recently seen are forgotten first. Default 100,000. */
  maxKeys?: number;
}

/**
 * The defaults: far above what a paying client needs (it meets an unpaid id
 * once per top-up, and a charge attempt that fails is rare), far below what
 * card testing or id probing needs. A charge attempt holds its token while it
 * is in flight, so the per-source burst is also how many top-ups one address
 * may have in flight at once (the conformance suite's bursts of up to 32, after its own declines, included).
 * The Stripe budget stays under Stripe's default live-mode limit of 100
 * operations a second.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<'unpaidClientIds' | 'chargeAttemptsPerSource' | 'chargeAttemptsPerCard' | 'stripeCalls', Readonly<BucketOptions>>> = Object.freeze({
  unpaidClientIds: Object.freeze({ burst: 600, perMinute: 600 }),
  chargeAttemptsPerSource: Object.freeze({ burst: 48, perMinute: 10 }),
  chargeAttemptsPerCard: Object.freeze({ burst: 10, perMinute: 10 }),
  stripeCalls: Object.freeze({ burst: 200, perMinute: 3_000 }),
});

const DEFAULT_MAX_KEYS = 100_000;

/** Token buckets by key, bounded in number. */
export class BucketMap {
  readonly #capacity: number;
  /** Tokens per millisecond. */
  readonly #rate: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Tokens and the time they were counted; Map order is least recently touched first. */
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: BucketOptions, maxKeys = DEFAULT_MAX_KEYS, now: () => number = performance.now.bind(performance)) {
    if (!Number.isSafeInteger(options.burst) || options.burst < 1) throw new RangeError('a rate limit burst must be a positive integer');
    if (!(options.perMinute > 0) || !Number.isFinite(options.perMinute)) throw new RangeError('a rate limit perMinute must be a positive number');
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
    this.#capacity = options.burst;
    this.#rate = options.perMinute / 60_000;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** Takes one token; false (taking nothing) when the bucket is empty. */
  take(key: string): boolean {
    const bucket = this.#refilled(key);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Whether a token is there, taking none. */
  has(key: string): boolean {
    const bucket = this.#buckets.get(key);
    return bucket === undefined || this.#refilled(key).tokens >= 1;
  }

  /** Gives one token back (a request that took one ended paid). */
  give(key: string): void {
    const bucket = this.#buckets.get(key);
    if (bucket !== undefined) bucket.tokens = Math.min(this.#capacity, bucket.tokens + 1);
  }

  /** Whole seconds until the next token, at least 1 (the Retry-After of a limited answer). */
  retryAfter(key: string): number {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined || bucket.tokens >= 1) return 1;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate / 1000));
  }

  #refilled(key: string): { tokens: number; at: number } {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#capacity, at: now };
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    } else {
      this.#buckets.delete(key);
      bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#rate);
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }
}

/** Why a request was limited, for logs and for its Retry-After. */
export type LimitKind = 'unpaid_client_ids' | 'charge_attempts_source' | 'charge_attempts_card' | 'stripe_calls';

export interface Limited {
  kind: LimitKind;
  retryAfterSeconds: number;
}

/** The key of requests whose adapter could not name a source: they share one budget, so a missing address never lifts a limit. */
export const UNKNOWN_SOURCE = '-';

/** The four budgets of one engine. */
export class RateLimiter {
  readonly #unpaid: BucketMap | undefined;
  readonly #perSource: BucketMap | undefined;
  readonly #perCard: BucketMap | undefined;
  readonly #stripe: BucketMap | undefined;

  constructor(options: RateLimitOptions | false = {}, now?: () => number) {
    const resolved = options === false ? { unpaidClientIds: false, chargeAttemptsPerSource: false, chargeAttemptsPerCard: false, stripeCalls: false } as const : options;
    const maxKeys = (options !== false && options.maxKeys) || DEFAULT_MAX_KEYS;
    const make = (given: BucketOptions | false | undefined, fallback: BucketOptions, keys: number) =>
      given === false ? undefined : new BucketMap(given ?? fallback, keys, now);
    this.#unpaid = make(resolved.unpaidClientIds, DEFAULT_RATE_LIMITS.unpaidClientIds, maxKeys);
    this.#perSource = make(resolved.chargeAttemptsPerSource, DEFAULT_RATE_LIMITS.chargeAttemptsPerSource, maxKeys);
    this.#perCard = make(resolved.chargeAttemptsPerCard, DEFAULT_RATE_LIMITS.chargeAttemptsPerCard, maxKeys);
    this.#stripe = make(resolved.stripeCalls, DEFAULT_RATE_LIMITS.stripeCalls, 1);
  }

  /** Before a client id spends: refused while this source's unpaid-id budget is empty (SEC-3). */
  unpaidAllowed(source: string): Limited | null {
    if (this.#unpaid === undefined || this.#unpaid.has(source)) return null;
    return { kind: 'unpaid_client_ids', retryAfterSeconds: this.#unpaid.retryAfter(source) };
  }

  /** After a client id did not pay: one token of the source's budget. */
  unpaidSeen(source: string): void {
    this.#unpaid?.take(source);
  }

  /** Before the first Stripe call of a request: takes one charge attempt of the source (given back by `attemptPaid`), SEC-7. */
  startAttempt(source: string): Limited | null {
    if (this.#perSource === undefined || this.#perSource.take(source)) return null;
    return { kind: 'charge_attempts_source', retryAfterSeconds: this.#perSource.retryAfter(source) };
  }

  /** Before a charge (under the card's top-up lock): takes one attempt of the card (given back by `attemptPaid`), SEC-7. */
  startCardAttempt(card: string): Limited | null {
    if (this.#perCard === undefined || this.#perCard.take(card)) return null;
    return { kind: 'charge_attempts_card', retryAfterSeconds: this.#perCard.retryAfter(card) };
  }

  /** The attempt ended in a served request: its tokens come back, so paying never uses up a budget. */
  attemptPaid(source: string, card: string | undefined): void {
    this.#perSource?.give(source);
    if (card !== undefined) this.#perCard?.give(card);
  }

  /** Before every Stripe call the engine makes for a request (SEC-8). */
  stripeCall(): Limited | null {
    if (this.#stripe === undefined || this.#stripe.take('')) return null;
    return { kind: 'stripe_calls', retryAfterSeconds: this.#stripe.retryAfter('') };
  }
}

/** Which peers may name the client in X-Forwarded-For: addresses and CIDR blocks (`10.0.0.0/8`, `::1`). */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(entries: readonly string[] = []) {
    for (const entry of entries) {
      const [address, bits] = entry.trim().split('/');
      const family = isIP(address ?? '');
      if (family === 0) throw new RangeError(`a trusted proxy must be an IP address or CIDR block, not ${JSON.stringify(entry)}`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) {
        this.#list.addAddress(address!, type);
      } else {
        const prefix = Number(bits);
        if (!/^\d{1,3}$/.test(bits) || prefix > (family === 6 ? 128 : 32)) throw new RangeError(`a bad prefix length in trusted proxy ${JSON.stringify(entry)}`);
        this.#list.addSubnet(address!, prefix, type);
      }
    }
    this.#empty = entries.length === 0;
  }

  has(address: string): boolean {
    if (this.#empty) return false;
    const family = isIP(address);
    if (family === 0) return false;
    const mapped = mappedIPv4(address);
    if (mapped !== null && this.#list.check(mapped, 'ipv4')) return true;
    return this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * The source of a request: the peer address, or, when the peer is a trusted
 * proxy, the rightmost X-Forwarded-For entry that is not a trusted proxy
 * itself (entries left of it were written by the client and prove nothing).
 * IPv6 sources count by /64, the block one subscriber usually holds, so one
 * host cannot multiply its budget by its addresses.
 */
export function sourceOf(peer: string | undefined, forwardedFor: string | null | undefined, trusted: TrustedProxies | undefined): string {
  if (peer === undefined || isIP(peer) === 0) return UNKNOWN_SOURCE;
  let source = peer;
  if (trusted !== undefined && forwardedFor && trusted.has(peer)) {
    const hops = forwardedFor.split(',').map((hop) => hop.trim());
    for (let index = hops.length - 1; index >= 0; index--) {
      const hop = stripPort(hops[index]!);
      if (isIP(hop) === 0) break;
      source = hop;
      if (!trusted.has(hop)) break;
    }
  }
  return networkOf(source);
}

/** An IPv4 address as it is; an IPv6 address as its /64 network; an IPv4-mapped IPv6 address as the IPv4 address. */
export function networkOf(address: string): string {
  const mapped = mappedIPv4(address);
  if (mapped !== null) return mapped;
  if (isIP(address) !== 6) return address;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

function mappedIPv4(address: string): string | null {
  const match = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return match ? match[1]! : null;
}

/** `1.2.3.4:5678` and `[::1]:5678` as sent by some proxies. */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  return v4 ? v4[1]! : hop;
}

/** The command-line names of the budgets (`--rate-limit NAME=BURST/PER_MINUTE`). */
const SETTING_NAMES: Readonly<Record<string, keyof Omit<RateLimitOptions, 'maxKeys'>>> = {
  'unpaid-client-ids': 'unpaidClientIds',
  'charge-attempts-per-source': 'chargeAttemptsPerSource',
  'charge-attempts-per-card': 'chargeAttemptsPerCard',
  'stripe-calls': 'stripeCalls',
};

/** Adds one `NAME=BURST/PER_MINUTE` or `NAME=off` setting to `options`; throws RangeError with a usable message otherwise. */
export function parseRateLimitSetting(setting: string, options: RateLimitOptions = {}): RateLimitOptions {
  const match = /^([a-z-]+)=(?:(off)|(\d+)\/(\d+(?:\.\d+)?))$/.exec(setting.trim());
  const name = match ? SETTING_NAMES[match[1]!] : undefined;
  if (!match || name === undefined) {
    throw new RangeError(`expected NAME=BURST/PER_MINUTE or NAME=off with NAME one of ${Object.keys(SETTING_NAMES).join(', ')}, not ${JSON.stringify(setting)}`);
  }
  const value: BucketOptions | false = match[2] ? false : { burst: Number(match[3]), perMinute: Number(match[4]) };
  // Checked now, so a bad value stops the server before it starts.
  if (value !== false) new BucketMap(value, 1);
  return { ...options, [name]: value };
}
