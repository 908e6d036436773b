/**
 * The budget policy of the paying fetch: which origins it may pay, the
 * highest price per request and the largest top-up it accepts, and caps on
 * the money it actually charges, per origin and in total, per hour, per day
 * and overall. Safe by default: HTTPS only (loopback excepted), at most 1
 * major unit per request, top-ups of at most 10 major units, at most 10
 * major units charged per origin and 20 in total per rolling day, per
 * currency. A refusal throws a `BudgetExceededError` before anything is
 * charged or spent.
 *
 * Limits on prices and top-ups are in units (1/10,000 of the major unit,
 * spec section 5); charge caps are also written in units, and compared with
 * what is charged in the currency's smallest unit (`unitsToMinor`, rounded
 * up as a server charges), so a cap holds in real money.
 */
import { currencyExponent, unitsToMinor, UNITS_PER_MAJOR, type PaymentRequirements } from '@stripe402/core';
import { BudgetExceededError, type BudgetRefusal, type BudgetRule } from './errors.ts';

/**
 * A limit in units: one number for every currency, or one per currency
 * (lower-case ISO 4217 code) with an optional `'*'` for the others.
 * `Infinity` means no limit, `0` refuses everything.
 */
export type UnitsLimit = number | Readonly<Record<string, number>>;

/** Caps on money actually charged in one scope (one origin, or all origins). */
export interface ChargeCaps {
  /** Most charged in any rolling hour. */
  perHour?: UnitsLimit;
  /** Most charged in any rolling 24 hours. */
  perDay?: UnitsLimit;
  /** Most charged over the life of the policy. */
  overall?: UnitsLimit;
}

/** What the `approveTopUp` hook is asked about. */
export interface TopUpDetails {
  /** The origin to be paid, e.g. `https://api.example.com`. */
  origin: string;
  /** The URL of the request that needs the top-up. */
  url: string;
  /** Its HTTP method. */
  method: string;
  /** The currency of the charge. */
  currency: string;
  /** The price of this request, in units. */
  price: number;
  /** The credit bought, in units. */
  topUpAmount: number;
  /**
   * The card charge, in the currency's smallest unit (cents for usd): what
   * the spec makes the server charge, or, for a currency whose exponent is
   * not 2 on a server that has not confirmed its charges, the worst case
   * (see `unconfirmedCharges`).
   */
  chargeMinor: number;
  /** The server's minimum top-up, in units. */
  minTopUp: number;
  /** The server's maximum top-up, in units, when it advertises one. */
  maxTopUp: number | undefined;
  /** The server's description of the charge, if any (for humans; untrusted). */
  description: string | undefined;
}

/** Options of a `BudgetPolicy`. Every field is optional; the defaults are safe. */
export interface BudgetOptions {
  /** Highest price per request, in units. Default 10,000 (1 major unit). */
  maxPricePerRequest?: UnitsLimit;
  /** Largest single top-up, in units. Default 100,000 (10 major units). */
  maxTopUp?: UnitsLimit;
  /**
   * The top-up to buy, as a multiple of the server's `minTopUp` (default 1).
   * Always clamped to at least `minTopUp` and the price, and at most
   * `maxTopUp` (ours and the server's).
   */
  topUpMultiplier?: number;
  /** The top-up to buy, in units, instead of a multiple of `minTopUp`; clamped the same way. */
  topUpTarget?: UnitsLimit;
  /** Charge caps for each origin. Default `{ perDay: 100_000 }`; giving this replaces the default. */
  perOrigin?: ChargeCaps;
  /** Charge caps over all origins. Default `{ perDay: 200_000 }`; giving this replaces the default. */
  total?: ChargeCaps;
  /**
   * When given, the only origins that may be paid: exact origins
   * (`https://api.example.com`) or wildcard subdomains (`https://*.example.com`,
   * which does not match `https://example.com` itself).
   */
  allowedOrigins?: readonly string[];
  /** Origins never paid, in the same syntax; checked before `allowedOrigins`. */
  deniedOrigins?: readonly string[];
  /**
   * Pay over plain `http:` to hosts other than loopback. Default false: the
   * client id is a bearer credential and a top-up spends money (spec section 13).
   */
  allowInsecureHttp?: boolean;
  /**
   * How to count a top-up in a currency whose exponent is not 2 (jpy, kwd,
   * ...) before the server has confirmed a charge in that currency's smallest
   * unit (the `chargeAmount` of a payment-response). stripe402 v1 servers
   * confirm nothing, and some compute minor units as if every currency had
   * two decimals, which charges yen 100 times the price. `'worst-case'`
   * (default) counts the larger of the two readings against the caps;
   * `'as-specified'` trusts the server to charge as the spec says.
   */
  unconfirmedCharges?: 'worst-case' | 'as-specified';
  /** Asked before every top-up, after every other rule passed; false refuses. */
  approveTopUp?: (details: TopUpDetails) => boolean | Promise<boolean>;
  /** The clock, in milliseconds since the epoch (for tests). */
  now?: () => number;
}

/** A top-up counted against the caps: reserved before it is sent, then charged or released. */
export interface ChargeRecord {
  /** When the top-up was reserved, in milliseconds since the epoch. */
  readonly at: number;
  /** The origin paid. */
  readonly origin: string;
  /** The currency charged. */
  readonly currency: string;
  /** The charge in the currency's smallest unit. */
  readonly minor: number;
  /** The credit bought, in units. */
  readonly units: number;
  /** `reserved` while in flight or unknown, `charged` once the server reported it. */
  readonly state: 'reserved' | 'charged';
  /** The PaymentIntent id, once known. */
  readonly chargeId: string | undefined;
}

/** A reservation against the caps, made before a top-up is sent. */
export interface Reservation {
  /** The charge this reservation stands for. */
  readonly record: ChargeRecord;
  /**
   * The top-up was charged (or may have been): keep it counted. `confirmedMinor`
   * is the charge the server reported in the currency's smallest unit, which
   * then replaces the reserved amount.
   */
  commit(chargeId?: string, confirmedMinor?: number): void;
  /** The top-up certainly charged nothing: stop counting it. */
  release(): void;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** Default highest price per request: 1 major unit. */
export const DEFAULT_MAX_PRICE_PER_REQUEST = 10_000;
/** Default largest top-up: 10 major units. */
export const DEFAULT_MAX_TOP_UP = 100_000;
/** Default per-origin cap: 10 major units charged per rolling day. */
export const DEFAULT_PER_ORIGIN_CAPS: Readonly<ChargeCaps> = Object.freeze({ perDay: 100_000 });
/** Default total cap: 20 major units charged per rolling day, per currency. */
export const DEFAULT_TOTAL_CAPS: Readonly<ChargeCaps> = Object.freeze({ perDay: 200_000 });

/** The value of a limit for one currency. */
export function limitFor(limit: UnitsLimit | undefined, currency: string, fallback: number): number {
  if (limit === undefined) return fallback;
  if (typeof limit === 'number') return limit;
  return limit[currency] ?? limit['*'] ?? fallback;
}

/** An origin pattern: an exact origin, or `scheme://*.domain[:port]` for its subdomains. */
export type OriginPattern = string;

/** Whether a URL's origin matches a pattern (exact origin, or wildcard subdomains). */
export function originMatches(url: URL, pattern: OriginPattern): boolean {
  const wildcard = /^([a-z][a-z0-9+.-]*):\/\/\*\.(.+)$/i.exec(pattern.trim());
  if (wildcard) {
    let suffix: string;
    try {
      // Normalize the domain (case, default port) by parsing it under a placeholder label.
      suffix = new URL(`${wildcard[1]}://x.${wildcard[2]}`).host.slice(2);
    } catch {
      return false;
    }
    return url.protocol === `${wildcard[1]!.toLowerCase()}:` && url.host.endsWith(`.${suffix}`);
  }
  try {
    return new URL(pattern.trim()).origin === url.origin;
  } catch {
    return false;
  }
}

/** Whether a URL points at this machine (where plain http cannot leak a credential). */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The largest charge in minor units that stays within a cap written in units (rounded down). */
function capInMinor(capUnits: number, currency: string): number {
  if (!Number.isFinite(capUnits)) return Infinity;
  const scale = 10n ** BigInt(currencyExponent(currency));
  return Number((BigInt(Math.max(0, Math.floor(capUnits))) * scale) / BigInt(UNITS_PER_MAJOR));
}

/**
 * The budget a paying fetch consults before it spends or charges anything.
 * One policy may be shared by several fetches (and the CLI): its caps then
 * count every charge they make.
 */
export class BudgetPolicy {
  private readonly options: BudgetOptions;
  private readonly records: Array<{ -readonly [K in keyof ChargeRecord]: ChargeRecord[K] }> = [];
  private readonly now: () => number;
  /** `origin currency` pairs whose server confirmed a charge in minor units (chargeAmount). */
  private readonly confirming = new Set<string>();

  constructor(options: BudgetOptions = {}) {
    for (const [name, value] of Object.entries(options)) {
      if (['maxPricePerRequest', 'maxTopUp', 'topUpTarget'].includes(name)) checkLimit(name, value as UnitsLimit);
    }
    if (options.topUpMultiplier !== undefined && !(options.topUpMultiplier >= 1 && Number.isFinite(options.topUpMultiplier))) {
      throw new RangeError('topUpMultiplier must be a finite number of at least 1');
    }
    for (const scope of ['perOrigin', 'total'] as const) {
      for (const [name, value] of Object.entries(options[scope] ?? {})) checkLimit(`${scope}.${name}`, value as UnitsLimit);
    }
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /**
   * Throws unless the origin of `url` may be paid at all: not denied, allowed
   * when an allow-list is set, and HTTPS unless loopback or explicitly allowed.
   */
  checkOrigin(url: URL): void {
    const origin = url.origin;
    if (this.options.deniedOrigins?.some((p) => originMatches(url, p))) {
      refuse({ rule: 'origin_denied', origin }, `${origin} is in deniedOrigins`);
    }
    if (this.options.allowedOrigins && !this.options.allowedOrigins.some((p) => originMatches(url, p))) {
      refuse({ rule: 'origin_not_allowed', origin }, `${origin} is not in allowedOrigins`);
    }
    if (url.protocol !== 'https:' && !isLoopback(url) && !this.options.allowInsecureHttp) {
      refuse(
        { rule: 'insecure_origin', origin },
        `${origin} is not HTTPS: a client id is a bearer credential, so the client pays only over HTTPS (or loopback) unless allowInsecureHttp is set`,
      );
    }
  }

  /** The highest price per request accepted in a currency, in units. */
  maxPrice(currency: string): number {
    return limitFor(this.options.maxPricePerRequest, currency, DEFAULT_MAX_PRICE_PER_REQUEST);
  }

  /** Whether a price (in units) is within `maxPricePerRequest`. */
  priceAllowed(currency: string, amount: number): boolean {
    return amount <= this.maxPrice(currency);
  }

  /** Throws unless a price (in units) is within `maxPricePerRequest`. */
  checkPrice(origin: string, currency: string, amount: number): void {
    const limit = this.maxPrice(currency);
    if (amount > limit) {
      refuse(
        { rule: 'max_price_per_request', origin, currency, requested: amount, limit, measure: 'units' },
        `the price ${amount} units ${currency} per request is above maxPricePerRequest (${limit} units)`,
      );
    }
  }

  /** Whether the smallest top-up a payment option accepts fits within `maxTopUp`. */
  topUpAllowed(requirements: PaymentRequirements): boolean {
    const ourMax = limitFor(this.options.maxTopUp, requirements.currency, DEFAULT_MAX_TOP_UP);
    return Math.max(requirements.minTopUp, requirements.amount) <= ourMax;
  }

  /**
   * The top-up to buy for a payment option, in units: the configured
   * multiple or target, never below the server's minimum or the price, never
   * above the server's maximum or ours. Throws when the server's minimum is
   * above our maximum.
   */
  planTopUp(origin: string, requirements: PaymentRequirements): number {
    const { currency, amount, minTopUp } = requirements;
    const ourMax = limitFor(this.options.maxTopUp, currency, DEFAULT_MAX_TOP_UP);
    const floor = Math.max(minTopUp, amount);
    if (floor > ourMax) {
      refuse(
        { rule: 'max_top_up', origin, currency, requested: floor, limit: ourMax, measure: 'units' },
        `the smallest top-up the server accepts (${floor} units ${currency}) is above maxTopUp (${ourMax} units)`,
      );
    }
    const wanted =
      this.options.topUpTarget !== undefined
        ? limitFor(this.options.topUpTarget, currency, floor)
        : Math.ceil(minTopUp * (this.options.topUpMultiplier ?? 1));
    const ceiling = Math.min(ourMax, requirements.maxTopUp ?? Infinity);
    return Math.max(floor, Math.min(wanted, ceiling));
  }

  /**
   * Checks a top-up against the charge caps and the approval hook, and
   * reserves it so that concurrent top-ups see it. Throws a
   * `BudgetExceededError` (and reserves nothing) on refusal.
   */
  async authorizeTopUp(details: TopUpDetails): Promise<Reservation> {
    const { origin, currency, chargeMinor } = details;
    const now = this.now();
    const scopes: Array<[ChargeCaps, 'origin' | 'total']> = [
      [this.options.perOrigin ?? DEFAULT_PER_ORIGIN_CAPS, 'origin'],
      [this.options.total ?? DEFAULT_TOTAL_CAPS, 'total'],
    ];
    for (const [caps, scope] of scopes) {
      const windows: Array<[UnitsLimit | undefined, number, 'hourly' | 'daily' | 'overall']> = [
        [caps.perHour, HOUR_MS, 'hourly'],
        [caps.perDay, DAY_MS, 'daily'],
        [caps.overall, Infinity, 'overall'],
      ];
      for (const [cap, windowMs, name] of windows) {
        if (cap === undefined) continue;
        const limit = capInMinor(limitFor(cap, currency, Infinity), currency);
        const already = this.chargedMinor({ currency, origin: scope === 'origin' ? origin : undefined, sinceMs: now - windowMs });
        if (already + chargeMinor > limit) {
          const rule = `${scope}_${name}_cap` as BudgetRule;
          refuse(
            { rule, origin, currency, requested: already + chargeMinor, limit, measure: 'minor' },
            `a top-up of ${chargeMinor} (smallest unit of ${currency}) would bring ${scope === 'origin' ? origin : 'all origins'} to ${already + chargeMinor}, above the ${name} cap of ${limit}`,
          );
        }
      }
    }
    const record = {
      at: now,
      origin,
      currency,
      minor: chargeMinor,
      units: details.topUpAmount,
      state: 'reserved' as 'reserved' | 'charged',
      chargeId: undefined as string | undefined,
    };
    // Reserve before asking the hook, so a concurrent top-up already sees this one.
    this.records.push(record);
    let released = false;
    const reservation: Reservation = {
      record,
      commit: (chargeId?: string, confirmedMinor?: number) => {
        if (released) return;
        record.state = 'charged';
        if (chargeId) record.chargeId = chargeId;
        if (confirmedMinor !== undefined && Number.isSafeInteger(confirmedMinor) && confirmedMinor >= 0) record.minor = confirmedMinor;
      },
      release: () => {
        if (released || record.state === 'charged') return;
        released = true;
        const index = this.records.indexOf(record);
        if (index >= 0) this.records.splice(index, 1);
      },
    };
    if (this.options.approveTopUp) {
      let approved = false;
      try {
        approved = (await this.options.approveTopUp({ ...details })) === true;
      } catch (error) {
        reservation.release();
        throw error;
      }
      if (!approved) {
        reservation.release();
        refuse(
          { rule: 'approval_denied', origin, currency, requested: details.topUpAmount, measure: 'units' },
          `approveTopUp refused a top-up of ${details.topUpAmount} units ${currency} for ${origin}`,
        );
      }
    }
    return reservation;
  }

  /**
   * What a top-up of `units` may charge, in the currency's smallest unit, as
   * counted against the caps: the spec's charge (UNIT-2), or, in a currency
   * whose exponent is not 2 on a server not known to confirm its charges, the
   * larger of that and a two-decimal reading of the units (`unconfirmedCharges`).
   */
  chargeBound(origin: string, currency: string, units: number): number {
    const specified = topUpChargeMinor(units, currency);
    const trusted =
      currencyExponent(currency) === 2 || this.options.unconfirmedCharges === 'as-specified' || this.confirming.has(`${origin} ${currency}`);
    // 'usd' stands for any two-decimal currency: the reading a v1 server applies to every currency.
    return trusted ? specified : Math.max(specified, unitsToMinor(units, 'usd'));
  }

  /** Records that a server reported a charge in minor units (`chargeAmount`): its later top-ups count as the spec says. */
  noteConfirmedCharge(origin: string, currency: string): void {
    this.confirming.add(`${origin} ${currency}`);
  }

  /** Money charged or reserved in one currency, in its smallest unit, optionally for one origin and since a time. */
  chargedMinor(filter: { currency: string; origin?: string | undefined; sinceMs?: number }): number {
    let sum = 0;
    for (const r of this.records) {
      if (r.currency !== filter.currency) continue;
      if (filter.origin !== undefined && r.origin !== filter.origin) continue;
      if (filter.sinceMs !== undefined && r.at < filter.sinceMs) continue;
      sum += r.minor;
    }
    return sum;
  }

  /** Every top-up counted so far (reserved or charged), oldest first. */
  charges(): readonly ChargeRecord[] {
    return this.records.map((r) => ({ ...r }));
  }
}

/** The charge of a top-up in the currency's smallest unit (what Stripe is asked for). */
export function topUpChargeMinor(topUpAmount: number, currency: string): number {
  return unitsToMinor(topUpAmount, currency);
}

function checkLimit(name: string, value: UnitsLimit | undefined): void {
  if (value === undefined) return;
  const values = typeof value === 'number' ? [value] : Object.values(value);
  for (const v of values) {
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (Number.isFinite(v) && !Number.isSafeInteger(v))) {
      throw new RangeError(`${name} must be a non-negative integer number of units (or Infinity), got ${String(v)}`);
    }
  }
}

function refuse(refusal: BudgetRefusal, message: string): never {
  throw new BudgetExceededError(refusal, `payment refused by the budget (${refusal.rule}): ${message}`);
}
