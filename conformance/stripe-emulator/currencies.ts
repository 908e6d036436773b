// Currencies as Stripe's card payments see them: the supported presentment
// currencies, each one's exponent (zero-decimal, two-decimal, three-decimal),
// the per-currency minimum charge and the amount rules Stripe enforces on a
// PaymentIntent (positive integer, at least the minimum, at most eight
// digits, three-decimal amounts ending in 0).
import { invalidRequest } from './errors.ts';

const ZERO_DECIMAL = new Set([
  'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf',
]);

const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

const TWO_DECIMAL = [
  'usd', 'aed', 'afn', 'all', 'amd', 'ang', 'aoa', 'ars', 'aud', 'awg', 'azn', 'bam', 'bbd', 'bdt', 'bgn', 'bmd',
  'bnd', 'bob', 'brl', 'bsd', 'bwp', 'byn', 'bzd', 'cad', 'cdf', 'chf', 'cny', 'cop', 'crc', 'cve', 'czk', 'dkk',
  'dop', 'dzd', 'egp', 'etb', 'eur', 'fjd', 'fkp', 'gbp', 'gel', 'gip', 'gmd', 'gtq', 'gyd', 'hkd', 'hnl', 'htg',
  'huf', 'idr', 'ils', 'inr', 'isk', 'jmd', 'kes', 'kgs', 'khr', 'kyd', 'kzt', 'lak', 'lbp', 'lkr', 'lrd', 'lsl',
  'mad', 'mdl', 'mkd', 'mmk', 'mnt', 'mop', 'mur', 'mvr', 'mwk', 'mxn', 'myr', 'mzn', 'nad', 'ngn', 'nio', 'nok',
  'npr', 'nzd', 'pab', 'pen', 'pgk', 'php', 'pkr', 'pln', 'qar', 'ron', 'rsd', 'rub', 'sar', 'sbd', 'scr', 'sek',
  'sgd', 'shp', 'sle', 'sos', 'srd', 'std', 'szl', 'thb', 'tjs', 'top', 'try', 'ttd', 'twd', 'tzs', 'uah', 'uyu',
  'uzs', 'wst', 'xcd', 'yer', 'zar', 'zmw',
];

const SUPPORTED = new Set<string>([...TWO_DECIMAL, ...ZERO_DECIMAL, ...THREE_DECIMAL]);

// Stripe's published minimum charge amounts, in the smallest unit. Currencies
// without a published figure fall back to an approximation of USD 0.50
// (see docs/stripe-backends.md).
const MINIMUM_CHARGE: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30,
  hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200, sek: 300,
  sgd: 50, thb: 1000,
  bhd: 200, jod: 400, kwd: 200, omr: 200, tnd: 1600,
};

/** Eight digits in the smallest unit, Stripe's card charge ceiling (USD 999,999.99). */
export const MAXIMUM_CHARGE = 99_999_999;

const SYMBOLS: Record<string, string> = { usd: '$', eur: '€', gbp: '£', jpy: '¥', inr: '₹', cad: '$', aud: '$', nzd: '$', sgd: '$', hkd: '$', mxn: '$' };

export function currencyExponent(currency: string): 0 | 2 | 3 {
  if (ZERO_DECIMAL.has(currency)) return 0;
  if (THREE_DECIMAL.has(currency)) return 3;
  return 2;
}

export function isSupportedCurrency(currency: string): boolean {
  return SUPPORTED.has(currency);
}

export function minimumCharge(currency: string): number {
  return MINIMUM_CHARGE[currency] ?? 50;
}

/** `$0.50`, `¥50`, `0.200` (BHD): an amount in the smallest unit, written in the major unit. */
export function formatAmount(amount: number, currency: string): string {
  const exponent = currencyExponent(currency);
  const major = exponent === 0 ? String(amount) : (amount / 10 ** exponent).toFixed(exponent);
  const grouped = major.replace(/^(\d+)/, (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ','));
  return `${SYMBOLS[currency] ?? ''}${grouped}`;
}

/** Validates and lower-cases a `currency` parameter. */
export function checkCurrency(raw: string, param = 'currency'): string {
  const currency = raw.toLowerCase();
  if (!SUPPORTED.has(currency)) {
    throw invalidRequest(
      `Invalid currency: ${raw}. Stripe currently supports these currencies: ${[...SUPPORTED].join(', ')}`,
      { param },
    );
  }
  return currency;
}

/** Stripe's amount rules for a charge in `currency` (already validated as a positive integer). */
export function checkChargeAmount(amount: number, currency: string): void {
  const minimum = minimumCharge(currency);
  if (amount < minimum) {
    throw invalidRequest(`Amount must be at least ${formatAmount(minimum, currency)} ${currency}`, {
      code: 'amount_too_small',
      param: 'amount',
    });
  }
  if (amount > MAXIMUM_CHARGE) {
    throw invalidRequest(`Amount must be no more than ${formatAmount(MAXIMUM_CHARGE, currency)} ${currency}`, {
      code: 'amount_too_large',
      param: 'amount',
    });
  }
  if (THREE_DECIMAL.has(currency) && amount % 10 !== 0) {
    throw invalidRequest(
      `Invalid amount: ${amount}. Amounts in ${currency} must be rounded to the nearest ten (the last digit must be 0) for card payments.`,
      { param: 'amount' },
    );
  }
}
