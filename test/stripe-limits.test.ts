/**
 * Stripe's minimum and maximum charges are normative in spec Table 5.6
 * (UNIT-6, UNIT-8), so the reference server's table is that table: every
 * currency with the same minimum, none more, none less, and the one maximum.
 * The expectations are read from the spec's Markdown, not copied here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STRIPE_MAXIMUM_CHARGE, STRIPE_MINIMUM_CHARGE } from '@stripe402/server';

const units = readFileSync(new URL('../spec/05-units.md', import.meta.url), 'utf8');

/** Table 5.6: rows of `| \`cur\` | minimum |` pairs, three pairs to a row. */
function table56(): Record<string, number> {
  const start = units.indexOf('Table 5.6');
  expect(start, 'spec/05-units.md has a Table 5.6').toBeGreaterThan(0);
  const minimums: Record<string, number> = {};
  for (const line of units.slice(start).split('\n').slice(1)) {
    if (line.trim() === '') {
      if (Object.keys(minimums).length) break;
      continue;
    }
    for (const [, currency, minimum] of line.matchAll(/\|\s*`([a-z]{3})`\s*\|\s*(\d+)\s*/g)) minimums[currency!] = Number(minimum);
  }
  return minimums;
}

describe('Stripe\'s charge limits', () => {
  it('are the minimums of spec Table 5.6 in the reference server', () => {
    const spec = table56();
    expect(Object.keys(spec).length).toBeGreaterThan(20);
    expect({ ...STRIPE_MINIMUM_CHARGE }).toEqual(spec);
  });

  it('are the maximum the spec names, in every currency', () => {
    const named = /largest\s+charge Stripe accepts is ([\d,]+) in the smallest\s+unit/.exec(units);
    expect(named, 'the spec names the largest charge').not.toBeNull();
    expect(STRIPE_MAXIMUM_CHARGE).toBe(Number(named![1]!.replace(/,/g, '')));
  });
});
