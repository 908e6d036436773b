/**
 * The suite's junk inputs that a parser in another language handles
 * differently from JSON.parse: numbers JSON does not have (NaN, Infinity,
 * which Python's json module reads by default) and nesting deeper than a
 * recursive parser's limit. Each must reach the invalid-input property as an
 * input a conforming server refuses, within the header length limit.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PAYMENT_HEADER_LENGTH, decodePaymentHeader } from '@stripe402/core';
import { JUNK_CLASSES, NESTING_DEPTH, nestedArrays } from './payloads.ts';
import { builtInInputs, stillInvalidOverHttp } from './properties/invalid-input.ts';

const CLIENT_ID = '0939620a1e8c6a26b166de5d8b3030e2ed2dd80a852a62a6c0b38b77b4d09dfc';
const decodeBase64 = (value: string) => Buffer.from(value, 'base64').toString('utf8');

describe('junk a non-JavaScript parser may accept or crash on', () => {
  const nonObject = JUNK_CLASSES.find((junk) => junk.slug === 'rejects-non-object-json')!;
  const variants = nonObject.variants({ stripe402Version: 1, clientId: CLIENT_ID });

  it.each(['topUpAmount NaN', 'topUpAmount Infinity', 'stripe402Version -Infinity'])('%s is an ENC-7 junk value the strict codec refuses', (label) => {
    const variant = variants.find((v) => v.label === label)!;
    expect(decodeBase64(variant.value)).toMatch(/:(NaN|Infinity|-Infinity)[,}]/);
    expect(decodePaymentHeader(variant.value)).toMatchObject({ ok: false, error: { code: 'invalid_payment' } });
  });

  it(`nests ${NESTING_DEPTH} arrays, deeper than Python's json module goes, in a header under the length limit`, () => {
    let depth = 0;
    for (let v: unknown = nestedArrays(NESTING_DEPTH); Array.isArray(v); v = v[0]) depth++;
    expect(depth).toBe(NESTING_DEPTH);
    expect(NESTING_DEPTH).toBeGreaterThan(1000);
    const input = builtInInputs('pm_card_visa', CLIENT_ID, 50_000).find((i) => i.source.includes('arrays deep'))!;
    expect(input.codes).toEqual(['invalid_payment']);
    expect(input.value.length).toBeLessThanOrEqual(MAX_PAYMENT_HEADER_LENGTH);
    expect(stillInvalidOverHttp(input)).toBe(true);
  });

  it('sends every new input through the invalid-input property', () => {
    const sources = builtInInputs('pm_card_visa', CLIENT_ID, 50_000).filter(stillInvalidOverHttp).map((i) => i.source);
    expect(sources).toEqual(expect.arrayContaining([
      'rejects-non-object-json: topUpAmount NaN',
      'rejects-non-object-json: topUpAmount Infinity',
      'rejects-non-object-json: stripe402Version -Infinity',
      `payload with topUpAmount nested ${NESTING_DEPTH} arrays deep`,
    ]));
  });
});
