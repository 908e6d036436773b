/**
 * Properties of the units conversion (spec section 5), checked with
 * fast-check against the defining inequality of ceil rather than against
 * the formula the code uses: the charge covers the credit (never an
 * undercharge) and is the smallest integer that does.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validate } from './schemas.ts';
import {
  THREE_DECIMAL_CURRENCIES,
  UNITS_PER_MAJOR,
  ZERO_DECIMAL_CURRENCIES,
  currencyExponent,
  isUnits,
  unitsToMinor,
} from './units.ts';

const MAX_UNITS = Number.MAX_SAFE_INTEGER;
const unitsArb = fc.oneof(
  fc.integer({ min: 1, max: 100_000 }),
  fc.integer({ min: 1, max: MAX_UNITS }),
  fc.integer({ min: MAX_UNITS - 100_000, max: MAX_UNITS }),
);
const currencyArb = fc.oneof(
  fc.constantFrom(...ZERO_DECIMAL_CURRENCIES, ...THREE_DECIMAL_CURRENCIES, 'usd', 'eur', 'isk'),
  fc.stringMatching(/^[a-z]{3}$/),
);

describe('unitsToMinor', () => {
  it('never undercharges, and charges the least amount that covers the units (UNIT-2)', () => {
    fc.assert(
      fc.property(unitsArb, currencyArb, (units, currency) => {
        const minor = BigInt(unitsToMinor(units, currency));
        const worth = BigInt(units) * 10n ** BigInt(currencyExponent(currency)); // the credit, in 10^-4 of a minor unit
        const perMinor = BigInt(UNITS_PER_MAJOR);
        expect(minor * perMinor >= worth).toBe(true);
        expect((minor - 1n) * perMinor < worth).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('returns a safe integer of at least one smallest unit', () => {
    fc.assert(
      fc.property(unitsArb, currencyArb, (units, currency) => {
        const minor = unitsToMinor(units, currency);
        expect(Number.isSafeInteger(minor)).toBe(true);
        expect(minor).toBeGreaterThanOrEqual(1);
      }),
    );
  });

  it('never charges less for more units', () => {
    fc.assert(
      fc.property(unitsArb, unitsArb, currencyArb, (a, b, currency) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        expect(unitsToMinor(low, currency)).toBeLessThanOrEqual(unitsToMinor(high, currency));
      }),
    );
  });

  it('refuses with a RangeError anything that is not units: fractions, zero, negatives, 2^53 and beyond, NaN, infinities', () => {
    const notUnits = fc.oneof(
      fc.double().filter((x) => !Number.isInteger(x)),
      fc.integer({ min: -1_000_000, max: 0 }),
      fc.double({ min: 2 ** 53, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0.5, 2 ** 53),
    );
    fc.assert(
      fc.property(notUnits, currencyArb, (units, currency) => {
        expect(isUnits(units)).toBe(false);
        expect(() => unitsToMinor(units, currency)).toThrow(RangeError);
      }),
    );
  });
});

describe('isUnits', () => {
  it('agrees with units.schema.json on every JSON value', () => {
    const value = fc.oneof(unitsArb, fc.integer(), fc.double(), fc.maxSafeInteger(), fc.jsonValue({ maxDepth: 1 }));
    fc.assert(
      fc.property(value, (v) => {
        expect(isUnits(v)).toBe(validate('units', v).ok);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses numbers written as strings and bigints', () => {
    fc.assert(
      fc.property(unitsArb, (units) => {
        expect(isUnits(String(units))).toBe(false);
        expect(isUnits(BigInt(units))).toBe(false);
      }),
    );
  });
});

describe('currencyExponent', () => {
  it('gives 0 and 3 only to the listed currencies and 2 to every other lower-case code (UNIT-3)', () => {
    fc.assert(
      fc.property(currencyArb, (currency) => {
        const listed = ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : THREE_DECIMAL_CURRENCIES.has(currency) ? 3 : 2;
        expect(currencyExponent(currency)).toBe(listed);
      }),
    );
  });

  it('keeps the two lists apart', () => {
    for (const currency of ZERO_DECIMAL_CURRENCIES) expect(THREE_DECIMAL_CURRENCIES.has(currency)).toBe(false);
  });
});
