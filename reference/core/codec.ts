/**
 * The header codec (spec sections 3 and 4): base64 JSON in, a typed message
 * or a typed HeaderDecodeError out, never an untyped throw. Decoding is
 * strict where deployed stripe402 v1 was lax: stray characters, misplaced
 * padding, invalid UTF-8 and non-object JSON are all `invalid_payment`.
 */
import { HeaderDecodeError } from './errors.ts';
import { SCHEMAS, validate, type SchemaName } from './schemas.ts';
import type { DiscoveryDocument, PaymentPayload, PaymentRequiredResponse, PaymentResponse } from './types.generated.ts';

/** Header field names (ENC-1); HTTP field names are case-insensitive, these are the canonical spellings. */
export const HEADER_PAYMENT_REQUIRED = 'payment-required';
export const HEADER_PAYMENT = 'payment';
export const HEADER_PAYMENT_RESPONSE = 'payment-response';

/** The protocol version this implementation speaks. */
export const STRIPE402_VERSION = 1;

/** The longest `payment` header value a server accepts (ENC-8). */
export const MAX_PAYMENT_HEADER_LENGTH = 4096;

/** The well-known discovery path (DISC-1). */
export const DISCOVERY_PATH = '/.well-known/stripe402';

/** A decoding outcome: the value, or the error a server answers with. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: HeaderDecodeError };

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE_TABLE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE_TABLE[ALPHABET.charCodeAt(i)] = i;
// base64url letters decode to the same values; mixing alphabets is checked separately.
DECODE_TABLE['-'.charCodeAt(0)] = 62;
DECODE_TABLE['_'.charCodeAt(0)] = 63;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Standard base64 with padding (RFC 4648 section 4) of UTF-8 bytes (ENC-2). */
export function base64Encode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + '=';
  }
  return out;
}

/**
 * Strict base64 decoding (ENC-3 to ENC-5): surrounding SP/HTAB trimmed,
 * padding optional, the standard or the URL-safe alphabet but not both,
 * nothing after padding, no impossible length. Returns null when invalid.
 */
export function base64Decode(value: string): Uint8Array | null {
  const text = value.replace(/^[ \t]+|[ \t]+$/g, '');
  let end = text.length;
  let padding = 0;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) {
    end--;
    padding++;
  }
  if (padding > 2) return null;
  if (padding > 0 && text.length % 4 !== 0) return null;
  if (end % 4 === 1) return null;
  let standard = false;
  let urlSafe = false;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE_TABLE[c]! : -1;
    if (v < 0) return null;
    if (c === 43 || c === 47) standard = true;
    else if (c === 45 || c === 95) urlSafe = true;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (standard && urlSafe) return null;
  return out.subarray(0, o);
}

/** Encodes a message as a header value: base64 of the UTF-8 JSON text (ENC-2). */
export function encodeHeader(message: object): string {
  return base64Encode(utf8Encoder.encode(JSON.stringify(message)));
}

/**
 * Decodes a header value into a JSON object without checking its schema:
 * base64 (ENC-3..5), UTF-8 (ENC-6), one JSON object (ENC-7).
 */
export function decodeHeaderObject(value: string): Decoded<Record<string, unknown>> {
  const bytes = base64Decode(value);
  if (!bytes) return fail('invalid_payment', 'the header is not valid base64');
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    return fail('invalid_payment', 'the header does not decode to UTF-8 text');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail('invalid_payment', 'the header does not decode to JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('invalid_payment', 'the header does not decode to a JSON object');
  }
  // JSON.parse keeps the last of two members of one name; refuse the ambiguity instead (ENC-16).
  if (hasDuplicateMembers(text)) return fail('invalid_payment', 'the header has two members of one name');
  return { ok: true, value: json as Record<string, unknown> };
}

/**
 * Whether a valid JSON text has an object with two members of the same
 * name, at any depth (ENC-16). Expects text that JSON.parse accepted.
 */
export function hasDuplicateMembers(text: string): boolean {
  const stack: Array<{ names: Set<string> | null; expectName: boolean }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const end = endOfJsonString(text, i);
      const top = stack[stack.length - 1];
      if (top?.names && top.expectName) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.names.has(name)) return true;
        top.names.add(name);
        top.expectName = false;
      }
      i = end;
    } else if (c === 123 /* { */) stack.push({ names: new Set(), expectName: true });
    else if (c === 91 /* [ */) stack.push({ names: null, expectName: false });
    else if (c === 125 /* } */ || c === 93 /* ] */) stack.pop();
    else if (c === 44 /* , */ && stack[stack.length - 1]?.names) stack[stack.length - 1]!.expectName = true;
  }
  return false;
}

/** The index of the quote closing the JSON string that opens at `start`. */
export function endOfJsonString(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length && text.charCodeAt(j) !== 34) j += text.charCodeAt(j) === 92 /* \ */ ? 2 : 1;
  return j;
}

/**
 * Decodes a `payment` request header (ENC-3 to ENC-9, MSG-1 to MSG-12).
 * Accepts the raw field value(s): a string (fetch joins repeated fields with
 * ", ", and base64 never holds a comma), or an array of field lines.
 */
export function decodePaymentHeader(raw: string | readonly string[] | null | undefined): Decoded<PaymentPayload> {
  if (raw === null || raw === undefined) return fail('invalid_payment', 'the payment header is missing');
  if (typeof raw !== 'string') {
    if (raw.length !== 1) return fail('invalid_payment', 'the payment header was sent more than once');
    raw = raw[0]!;
  }
  // ENC-8: counted without surrounding SP/HTAB, which RFC 9110 keeps out of a field value and stacks strip or keep.
  if (raw.replace(/^[ \t]+|[ \t]+$/g, '').length > MAX_PAYMENT_HEADER_LENGTH) {
    return fail('invalid_payment', `the payment header is longer than ${MAX_PAYMENT_HEADER_LENGTH} characters`);
  }
  if (raw.includes(',')) return fail('invalid_payment', 'the payment header was sent more than once');
  return decodeMessage<PaymentPayload>(raw, 'payment-payload');
}

/** Decodes a `payment-required` header (client and conformance side). */
export function decodePaymentRequiredHeader(raw: string): Decoded<PaymentRequiredResponse> {
  return decodeMessage<PaymentRequiredResponse>(raw, 'payment-required-response');
}

/** Decodes a `payment-response` header (client and conformance side). */
export function decodePaymentResponseHeader(raw: string): Decoded<PaymentResponse> {
  return decodeMessage<PaymentResponse>(raw, 'payment-response');
}

/** Validates an already parsed JSON value as a message (a 402 body, a discovery document). */
export function checkMessage<T>(json: unknown, schema: SchemaName): Decoded<T> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('invalid_payment', 'the message is not a JSON object');
  }
  const version = (json as Record<string, unknown>).stripe402Version;
  // Another integer version is a different protocol: say so rather than blame its fields (MSG-1).
  // Only in a message that defines stripe402Version; elsewhere it is an unknown member (MSG-2).
  if (definesVersion(schema) && Number.isInteger(version) && version !== STRIPE402_VERSION) {
    return fail('unsupported_version', `stripe402Version ${String(version)} is not supported; this server speaks version 1`);
  }
  const result = validate<T>(schema, json);
  return result.ok ? result : fail('invalid_payment', result.detail);
}

/** Validates a parsed discovery document (DISC-1). */
export function checkDiscoveryDocument(json: unknown): Decoded<DiscoveryDocument> {
  return checkMessage<DiscoveryDocument>(json, 'discovery');
}

function definesVersion(schema: SchemaName): boolean {
  const properties = (SCHEMAS[schema] as { properties?: Record<string, unknown> }).properties;
  return properties !== undefined && 'stripe402Version' in properties;
}

function decodeMessage<T>(raw: string, schema: SchemaName): Decoded<T> {
  const decoded = decodeHeaderObject(raw);
  return decoded.ok ? checkMessage<T>(decoded.value, schema) : decoded;
}

function fail(code: 'invalid_payment' | 'unsupported_version', detail: string): { ok: false; error: HeaderDecodeError } {
  return { ok: false, error: new HeaderDecodeError(code, detail) };
}
