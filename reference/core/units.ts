/**
 * Units and currencies (spec section 5). One unit is 1/10,000 of a
 * currency's major unit; a top-up is charged in the currency's smallest unit,
 * rounded up so a server never undercharges. Arithmetic is exact (BigInt).
 */

/** Units per major currency unit (UNIT-1). */
export const UNITS_PER_MAJOR = 10_000;

/** Currencies Stripe treats as having no minor unit (exponent 0). */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf',
]);

/** Currencies Stripe charges in thousandths (exponent 3). */
export const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** Stripe's exponent for a lower-case ISO 4217 code (UNIT-3). */
export function currencyExponent(currency: string): 0 | 2 | 3 {
  if (ZERO_DECIMAL_CURRENCIES.has(currency)) return 0;
  if (THREE_DECIMAL_CURRENCIES.has(currency)) return 3;
  return 2;
}

/** Whether a value is a valid amount of units: an integer from 1 to 2^53-1 (MSG-3). */
export function isUnits(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

/**
 * The charge for `units` in the currency's smallest unit:
 * ceil(units * 10^e / 10^4) (UNIT-2). Throws a RangeError for anything that
 * is not a valid amount of units, so a float never reaches Stripe.
 */
export function unitsToMinor(units: number, currency: string): number {
  if (!isUnits(units)) throw new RangeError(`units must be an integer from 1 to 2^53-1, got ${String(units)}`);
  const scale = 10n ** BigInt(currencyExponent(currency));
  const divisor = BigInt(UNITS_PER_MAJOR);
  const minor = (BigInt(units) * scale + divisor - 1n) / divisor;
  return Number(minor); // at most units / 10: always a safe integer
}
