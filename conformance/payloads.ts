/**
 * Payment header values the suite sends: valid ones in every accepted shape
 * (padded, unpadded, surrounded by whitespace) and junk in each class the
 * spec rejects (ENC-5 to ENC-7). Junk is built around a *valid* payload of a
 * funded client, so a lax decoder that repairs it would serve the request
 * and the check would see a 2xx, not a vacuous 402.
 */
import { base64Encode } from '@stripe402/core';

const utf8 = new TextEncoder();

/** Standard padded base64 of raw bytes. */
export function encodeBytes(bytes: Uint8Array): string {
  return base64Encode(bytes);
}

/** Standard padded base64 of a JSON text (which may carry insignificant whitespace). */
export function encodeText(text: string): string {
  return base64Encode(utf8.encode(text));
}

/**
 * The JSON text of a payload with `spaces` insignificant spaces after the
 * opening brace: the same payload, encoded to a different length, so the
 * suite can pick an encoding with or without padding without adding fields.
 */
export function spacedJson(payload: object, spaces: number): string {
  return '{' + ' '.repeat(spaces) + JSON.stringify(payload).slice(1);
}

/** An encoding of the payload whose base64 satisfies `shape`, varying only whitespace. */
export function shapedHeader(payload: object, shape: (encoded: string) => boolean): string {
  for (let spaces = 0; spaces < 12; spaces++) {
    const encoded = encodeText(spacedJson(payload, spaces));
    if (shape(encoded)) return encoded;
  }
  throw new Error('no whitespace variant of the payload has the requested shape');
}

/** A padded encoding (ending in `=`). */
export const paddedHeader = (payload: object) => shapedHeader(payload, (e) => e.endsWith('='));
/** An encoding that needs no padding (length a multiple of 3 bytes). */
export const exactHeader = (payload: object) => shapedHeader(payload, (e) => !e.endsWith('='));

/** Inserts `insert` in the middle of a value, at a 4-character boundary so no alignment luck repairs it. */
export function insertMiddle(value: string, insert: string): string {
  const at = Math.floor(value.length / 8) * 4;
  return value.slice(0, at) + insert + value.slice(at);
}

/** One class of malformed payment header the spec rejects with invalid_payment. */
export interface JunkClass {
  slug: string;
  title: string;
  requirement: string;
  /** Builds the malformed values from a valid payload. */
  variants(payload: object): Array<{ label: string; value: string }>;
}

/** The junk classes of ENC-5 to ENC-7, each applied to a valid payload. */
export const JUNK_CLASSES: JunkClass[] = [
  {
    slug: 'rejects-stray-characters',
    title: 'a payment header with characters outside the base64 alphabet is invalid_payment',
    requirement: 'ENC-5',
    variants: (payload) => {
      const valid = paddedHeader(payload);
      return ['!', '*', '.', '@', '%', '"'].map((c) => ({ label: `"${c}" inserted`, value: insertMiddle(valid, c) }));
    },
  },
  {
    slug: 'rejects-interior-whitespace',
    title: 'a payment header with whitespace inside the base64 text is invalid_payment',
    requirement: 'ENC-5',
    variants: (payload) => {
      const valid = paddedHeader(payload);
      return [
        { label: 'a space inside', value: insertMiddle(valid, ' ') },
        { label: 'a tab inside', value: insertMiddle(valid, '\t') },
      ];
    },
  },
  {
    slug: 'rejects-data-after-padding',
    title: 'a payment header with data after the padding is invalid_payment',
    requirement: 'ENC-5',
    variants: (payload) => {
      const valid = paddedHeader(payload);
      return [
        { label: 'text after the padding', value: valid + 'QUJD' },
        { label: 'two encodings concatenated', value: valid + valid },
        { label: 'padding in the middle', value: insertMiddle(valid, '==') },
      ];
    },
  },
  {
    slug: 'rejects-impossible-length',
    title: 'a payment header whose length no base64 text can have is invalid_payment',
    requirement: 'ENC-5',
    variants: (payload) => {
      const exact = exactHeader(payload);
      const padded = paddedHeader(payload);
      return [
        { label: 'one character too many (length 4n+1)', value: exact + 'A' },
        { label: 'too much padding', value: padded.replace(/=+$/, '') + '===' },
        { label: 'padding on an unpadded length', value: exact + '==' },
      ];
    },
  },
  {
    slug: 'rejects-mixed-alphabets',
    title: 'a payment header mixing the standard and URL-safe base64 alphabets is invalid_payment',
    requirement: 'ENC-5',
    variants: (payload) => {
      // An unknown field whose text encodes to several '+' and '/' (ignored by a conforming receiver, MSG-2).
      const mixed = [
        { ...payload, note: '???>>>~~~' },
        { ...payload, note: '~~~???>>>' },
        { ...payload, note: '>~?>~?>~?' },
      ]
        .map((p) => encodeText(JSON.stringify(p)))
        .find((e) => (e.match(/[+/]/g) ?? []).length >= 2);
      if (!mixed) return [];
      // Turn the first standard-only letter into its URL-safe twin and keep the others.
      const index = mixed.search(/[+/]/);
      const swapped = mixed.slice(0, index) + (mixed[index] === '+' ? '-' : '_') + mixed.slice(index + 1);
      return [{ label: 'one "+" or "/" replaced by "-" or "_"', value: swapped }];
    },
  },
  {
    slug: 'rejects-invalid-utf8',
    title: 'a payment header whose bytes are not UTF-8 is invalid_payment',
    requirement: 'ENC-6',
    variants: (payload) => {
      const text = JSON.stringify({ ...payload, note: 'XX' });
      const [before, after] = text.split('XX') as [string, string];
      const withBytes = (bytes: number[]) =>
        encodeBytes(new Uint8Array([...utf8.encode(before), ...bytes, ...utf8.encode(after)]));
      return [
        { label: 'a 0xFF byte', value: withBytes([0xff]) },
        { label: 'an overlong encoding (C0 AF)', value: withBytes([0xc0, 0xaf]) },
        { label: 'an encoded surrogate (ED A0 80)', value: withBytes([0xed, 0xa0, 0x80]) },
        { label: 'a truncated sequence (E2 82)', value: withBytes([0xe2, 0x82]) },
      ];
    },
  },
  {
    slug: 'rejects-non-object-json',
    title: 'a payment header that is not a JSON object is invalid_payment',
    requirement: 'ENC-7',
    variants: (payload) => [
      { label: 'an array holding the payload', value: encodeText(JSON.stringify([payload])) },
      { label: 'a JSON string', value: encodeText(JSON.stringify(JSON.stringify(payload))) },
      { label: 'a number', value: encodeText('1') },
      { label: 'null', value: encodeText('null') },
      { label: 'true', value: encodeText('true') },
      { label: 'text that is not JSON', value: encodeText('stripe402Version=1') },
      { label: 'the payload with a trailing comma', value: encodeText(JSON.stringify(payload).slice(0, -1) + ',}') },
      // Not JSON (RFC 8259 has no such numbers), yet Python's json module reads them by default.
      { label: 'topUpAmount NaN', value: encodeText(JSON.stringify(payload).slice(0, -1) + ',"topUpAmount":NaN}') },
      { label: 'topUpAmount Infinity', value: encodeText(JSON.stringify(payload).slice(0, -1) + ',"topUpAmount":Infinity}') },
      { label: 'stripe402Version -Infinity', value: encodeText(JSON.stringify({ ...payload, stripe402Version: 0 }).replace('"stripe402Version":0', '"stripe402Version":-Infinity')) },
    ],
  },
];

/** How deep the nested-array payload goes: past recursive parsers' limits, its header still under ENC-8's 4096 characters. */
export const NESTING_DEPTH = 1400;

/** `depth` arrays, each the only element of the one around it. */
export function nestedArrays(depth: number): unknown[] {
  let value: unknown[] = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

/**
 * Payloads that decode (valid base64 of a JSON object) but break a message
 * rule (MSG-1, MSG-3, MSG-8, CID-3): each must be refused before any charge.
 * `card` is a working card so that a lax server would charge or spend.
 */
export function invalidPayloads(card: string, clientId: string, minTopUp: number): Array<{ label: string; payload: object; code: 'invalid_payment' | 'unsupported_version' }> {
  return [
    { label: 'stripe402Version 2', payload: { stripe402Version: 2, clientId }, code: 'unsupported_version' },
    { label: 'stripe402Version "1"', payload: { stripe402Version: '1', clientId }, code: 'invalid_payment' },
    { label: 'stripe402Version 1.5', payload: { stripe402Version: 1.5, clientId }, code: 'invalid_payment' },
    { label: 'no stripe402Version', payload: { clientId }, code: 'invalid_payment' },
    { label: 'topUpAmount 50000.5', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: minTopUp + 0.5 }, code: 'invalid_payment' },
    { label: 'topUpAmount as a string', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: String(minTopUp) }, code: 'invalid_payment' },
    { label: 'topUpAmount 0', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: 0 }, code: 'invalid_payment' },
    { label: 'topUpAmount -1', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: -minTopUp }, code: 'invalid_payment' },
    { label: 'topUpAmount 2^53', payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: 2 ** 53 }, code: 'invalid_payment' },
    { label: 'neither paymentMethodId nor clientId', payload: { stripe402Version: 1, topUpAmount: minTopUp }, code: 'invalid_payment' },
    { label: 'clientId in upper case', payload: { stripe402Version: 1, clientId: clientId.toUpperCase() }, code: 'invalid_payment' },
    { label: 'clientId of 63 characters', payload: { stripe402Version: 1, clientId: clientId.slice(1) }, code: 'invalid_payment' },
    { label: 'clientId as a number', payload: { stripe402Version: 1, clientId: 42 }, code: 'invalid_payment' },
    { label: 'paymentMethodId without pm_', payload: { stripe402Version: 1, paymentMethodId: card.replace(/^pm_/, 'card_') }, code: 'invalid_payment' },
    // Within the 4096-character limit, deeper than a recursive parser's default limit (Python's json stops at about 1000).
    { label: `topUpAmount nested ${NESTING_DEPTH} arrays deep`, payload: { stripe402Version: 1, paymentMethodId: card, topUpAmount: nestedArrays(NESTING_DEPTH) }, code: 'invalid_payment' },
  ];
}
