/**
 * fast-check arbitraries for LEGAL price configurations of a paid route: one
 * to three offers in distinct currencies of every exponent (jpy and krw: 0;
 * usd, eur and isk: 2; kwd and bhd: 3), each with an `amount`, a `minTopUp`
 * that covers the amount, meets Stripe's minimum charge and keeps to the
 * currency's charge step (UNIT-6, UNIT-7, MSG-7), and a `maxTopUp` or none
 * (the edge `amount = minTopUp = maxTopUp` included). The conformance suite
 * must pass every conforming server at every such price: these are the
 * inputs of that property (issue 15, item 2). Minimum charges come from the
 * Stripe emulator, the backend that refuses a charge below them.
 */
import fc from 'fast-check';
import { currencyExponent, MAXIMUM_CHARGE, minimumCharge } from '../../stripe-emulator/currencies.ts';

export interface Offer {
  currency: string;
  amount: number;
  minTopUp: number;
  maxTopUp?: number;
}

/** At most this many requests per minimum top-up (minTopUp / amount): the legal space is wider, the suite's run time is not. */
export const MAX_REQUESTS_PER_TOP_UP = 1000;

/** Two-decimal, zero-decimal and three-decimal currencies, and isk with its step of 100. */
export const CURRENCIES = ['usd', 'eur', 'isk', 'jpy', 'krw', 'kwd', 'bhd'] as const;

/** Table 5.5, in the currency's smallest unit. */
export function chargeStep(currency: string): number {
  return currencyExponent(currency) === 3 ? 10 : currency === 'isk' ? 100 : 1;
}

/** UNIT-2: ceil(units × 10^e / 10^4), exactly. */
export function chargeOf(units: number, currency: string): number {
  return Number((BigInt(units) * 10n ** BigInt(currencyExponent(currency)) + 9999n) / 10000n);
}

/** Units per smallest unit of the currency: 100 for usd, 10,000 for jpy, 10 for kwd. */
const unitsPerMinor = (currency: string) => 10 ** (4 - currencyExponent(currency));

/**
 * A top-up in units whose charge is `charge` exactly: the largest such top-up,
 * or one a little smaller that the charge rounds up from (UNIT-2 rounds up).
 */
function unitsCharging(currency: string, charge: number): fc.Arbitrary<number> {
  const per = unitsPerMinor(currency);
  return fc.oneof(fc.constant(charge * per), fc.integer({ min: 0, max: per - 1 }).map((under) => charge * per - under));
}

/** One legal offer in `currency`. */
export function offerIn(currency: string): fc.Arbitrary<Offer> {
  const step = chargeStep(currency);
  const lowest = Math.ceil(minimumCharge(currency) / step);
  const highest = Math.floor(MAXIMUM_CHARGE / step);
  // Mostly charges near Stripe's minimum (the common case, and the one with rounding at the edge), sometimes far above.
  const minSteps = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: lowest, max: lowest + 500 }) },
    { weight: 1, arbitrary: fc.integer({ min: lowest, max: Math.min(highest, lowest * 1000) }) },
  );
  return minSteps.chain((steps) =>
    unitsCharging(currency, steps * step).chain((minTopUp) => {
      // The suite drains balances one request at a time, so minTopUp / amount bounds its run time (FINDINGS.md).
      const least = Math.max(1, Math.ceil(minTopUp / MAX_REQUESTS_PER_TOP_UP));
      const amount = fc.oneof(
        fc.integer({ min: least, max: Math.min(minTopUp, least + 1000) }),
        fc.integer({ min: least, max: minTopUp }),
        fc.constant(minTopUp),
      );
      const maxTopUp = fc.oneof(
        fc.constant(undefined),
        fc.constant(minTopUp),
        fc
          .integer({ min: steps + 1, max: Math.min(highest, steps * 200) })
          .chain((maxSteps) => unitsCharging(currency, maxSteps * step))
          .filter((units) => units >= minTopUp),
      );
      return fc.record({ amount, maxTopUp }).map(({ amount: a, maxTopUp: m }) => ({
        currency,
        amount: a,
        minTopUp,
        ...(m === undefined ? {} : { maxTopUp: m }),
      }));
    }),
  );
}

/** One to `max` offers in distinct currencies; the first is the default (MSG-11). */
export function offers(max = 3): fc.Arbitrary<Offer[]> {
  return fc
    .uniqueArray(fc.constantFrom(...CURRENCIES), { minLength: 1, maxLength: max })
    .chain((currencies) => fc.tuple(...currencies.map((currency) => offerIn(currency))));
}

/** True when an offer is legal by the rules the arbitraries follow; the tests check their own generator with it. */
export function isLegal(offer: Offer): boolean {
  const step = chargeStep(offer.currency);
  const charge = (units: number) => chargeOf(units, offer.currency);
  return (
    Number.isSafeInteger(offer.amount) &&
    offer.amount >= 1 &&
    offer.minTopUp >= offer.amount &&
    charge(offer.minTopUp) >= minimumCharge(offer.currency) &&
    charge(offer.minTopUp) % step === 0 &&
    (offer.maxTopUp === undefined || (offer.maxTopUp >= offer.minTopUp && charge(offer.maxTopUp) % step === 0 && charge(offer.maxTopUp) <= MAXIMUM_CHARGE))
  );
}

/** A reference server configuration: prices, and the options that switch behaviour on or off. */
export interface ReferenceConfig {
  offers: Offer[];
  /** A `return_url` on PaymentIntents, so card authentication has a next-action URL (AUTH-1). */
  returnUrl: boolean;
  /** Stripe's webhook delivered to the server, which may then credit before the paying request (LEDG-4). */
  webhook: boolean;
}

export function referenceConfig(): fc.Arbitrary<ReferenceConfig> {
  return fc.record({ offers: offers(), returnUrl: fc.boolean(), webhook: fc.boolean() });
}

/** A configuration of the spec-alone server (targets.ts SpecConfig): prices, each extension on or off, who credits first. */
export function specConfig() {
  return fc.record({
    offers: offers(),
    extensions: fc.record({ cardAuthentication: fc.boolean(), idempotencyKey: fc.boolean(), discovery: fc.boolean(), multiCurrency: fc.boolean() }),
    creditFrom: fc.constantFrom('request' as const, 'webhook-first' as const),
    webhook: fc.boolean(),
  });
}
