/**
 * Properties of the header codec (spec sections 3 and 4), checked with
 * fast-check: messages generated to fit the schemas validate and survive
 * encode/decode unchanged; the encoding is the canonical one of ENC-2;
 * decoding anything at all yields a value or a HeaderDecodeError, never a
 * throw; and the strict base64 decoder accepts exactly the forms ENC-3 to
 * ENC-5 allow, agreeing with Node's lenient Buffer wherever it accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_PAYMENT_HEADER_LENGTH,
  base64Decode,
  base64Encode,
  checkMessage,
  decodeHeaderObject,
  decodePaymentHeader,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  encodeHeader,
  type Decoded,
} from './codec.ts';
import { ERROR_CODES, HeaderDecodeError } from './errors.ts';
import { validate } from './schemas.ts';
import type { PaymentPayload, PaymentRequiredResponse, PaymentRequirements, PaymentResponse } from './types.generated.ts';

// ---------------------------------------------------------------------------
// Arbitraries: messages built to fit the JSON Schemas in schemas/ (integer
// amounts within range, the id patterns, the if/then of PaymentResponse) and
// the sender rules a schema cannot say (MSG-6 one entry per currency, MSG-7
// minTopUp >= amount, MSG-12 errorCode exactly when success is false).
// ---------------------------------------------------------------------------

const MAX_UNITS = Number.MAX_SAFE_INTEGER;

/** Units: integers 1..2^53-1, biased towards both ends. */
const unitsArb = fc.oneof(
  fc.integer({ min: 1, max: 1_000_000 }),
  fc.integer({ min: 1, max: MAX_UNITS }),
  fc.constantFrom(1, MAX_UNITS),
);
/** A balance: integers 0..2^53-1. */
const balanceArb = fc.oneof(fc.constant(0), unitsArb);
const currencyArb = fc.stringMatching(/^[a-z]{3}$/);
const clientIdArb = fc.stringMatching(/^[0-9a-f]{64}$/);
const paymentMethodIdArb = fc.stringMatching(/^pm_[A-Za-z0-9_]{1,60}$/);
const paymentIntentIdArb = fc.stringMatching(/^pi_[A-Za-z0-9_]{1,60}$/);
const idempotencyKeyArb = fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/);
const publishableKeyArb = fc.stringMatching(/^pk_(test|live)_[A-Za-z0-9_]{1,40}$/);
const errorCodeArb = fc.constantFrom(...ERROR_CODES);
const textArb = fc.string({ unit: 'grapheme', maxLength: 40 });

/**
 * Members no message defines, which receivers ignore (MSG-2). Values go
 * through JSON once so that they are exactly what a JSON text can carry
 * (no -0).
 */
function unknownMembersArb(known: readonly string[]) {
  const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((k) => !known.includes(k));
  const value = fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
  return fc.dictionary(key, value, { maxKeys: 3 });
}

const PAYLOAD_MEMBERS = ['stripe402Version', 'paymentMethodId', 'clientId', 'topUpAmount', 'idempotencyKey', 'paymentIntentId', 'currency'];

const paymentPayloadArb: fc.Arbitrary<PaymentPayload> = fc
  .tuple(
    fc.record(
      {
        paymentMethodId: paymentMethodIdArb,
        clientId: clientIdArb,
        topUpAmount: unitsArb,
        idempotencyKey: idempotencyKeyArb,
        paymentIntentId: paymentIntentIdArb,
        currency: currencyArb,
      },
      { requiredKeys: [] },
    ),
    unknownMembersArb(PAYLOAD_MEMBERS),
  )
  .filter(([known]) => known.paymentMethodId !== undefined || known.clientId !== undefined)
  .map(([known, unknown]) => ({ ...unknown, ...known, stripe402Version: 1 as const }));

/** amount <= minTopUp <= maxTopUp (MSG-7). */
const requirementsArb = (currency: string): fc.Arbitrary<PaymentRequirements> =>
  fc
    .tuple(
      fc.array(unitsArb, { minLength: 3, maxLength: 3 }).map((xs) => xs.sort((a, b) => a - b)),
      fc.boolean(),
      publishableKeyArb,
      fc.option(textArb, { nil: undefined }),
    )
    .map(([[amount, minTopUp, maxTopUp], withMax, publishableKey, description]) => ({
      scheme: 'stripe' as const,
      currency,
      amount: amount!,
      minTopUp: minTopUp!,
      ...(withMax ? { maxTopUp: maxTopUp! } : {}),
      publishableKey,
      ...(description !== undefined ? { description } : {}),
    }));

const paymentRequiredResponseArb: fc.Arbitrary<PaymentRequiredResponse> = fc
  .tuple(
    fc.record(
      { url: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }), description: textArb, mimeType: textArb },
      { requiredKeys: ['url'] },
    ),
    // One entry per currency (MSG-6).
    fc.uniqueArray(currencyArb, { minLength: 1, maxLength: 4 }).chain((currencies) => fc.tuple(...currencies.map(requirementsArb))),
    fc.option(errorCodeArb, { nil: undefined }),
  )
  .map(([resource, accepts, error]) => ({
    stripe402Version: 1 as const,
    resource,
    accepts: accepts as PaymentRequiredResponse['accepts'], // uniqueArray has minLength 1
    ...(error !== undefined ? { error } : {}),
  }));

const paymentResponseArb: fc.Arbitrary<PaymentResponse> = fc
  .tuple(
    fc.boolean(),
    fc.record(
      {
        chargeId: paymentIntentIdArb,
        error: textArb,
        paymentIntentId: paymentIntentIdArb,
        nextActionUrl: fc.webUrl({ validSchemes: ['https'], withQueryParameters: true }),
        currency: currencyArb,
      },
      { requiredKeys: [] },
    ),
    balanceArb,
    fc.oneof(clientIdArb, fc.constant('')),
    errorCodeArb,
  )
  .map(([success, optional, creditsRemaining, clientId, errorCode]) => ({
    success,
    creditsRemaining,
    clientId,
    ...optional,
    // errorCode exactly when success is false (MSG-12).
    ...(success ? {} : { errorCode }),
  }));

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const lenientBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const standardBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const DECODE_CODES = ['invalid_payment', 'unsupported_version'];

/** The only outcomes a decoder may have: a value, or a HeaderDecodeError with a decoding code. */
function expectWellFormedOutcome(outcome: Decoded<unknown>): void {
  if (outcome.ok) {
    expect(typeof outcome.value === 'object' && outcome.value !== null && !Array.isArray(outcome.value)).toBe(true);
    return;
  }
  expect(outcome.error).toBeInstanceOf(HeaderDecodeError);
  expect(DECODE_CODES).toContain(outcome.error.code);
  // A detail is shown to clients: one line of words, never a stack trace (ERR-4).
  expect(outcome.error.detail).not.toMatch(/\n|\bat .*:\d+:\d+/);
}

/** Runs every decoder on one header value; none may throw. */
function expectEveryDecoderWellBehaved(value: string): void {
  expectWellFormedOutcome(decodeHeaderObject(value));
  const payment = decodePaymentHeader(value);
  expectWellFormedOutcome(payment);
  if (payment.ok) expect(validate('payment-payload', payment.value).ok).toBe(true);
  expectWellFormedOutcome(decodePaymentRequiredHeader(value));
  expectWellFormedOutcome(decodePaymentResponseHeader(value));
}

/**
 * ENC-3..ENC-5 restated as a model, for comparison with the decoder: after
 * trimming SP/HTAB, one alphabet, '=' only at the end and at most two of
 * them, a data length not 1 mod 4, and a padded value a multiple of 4 long.
 */
function specAcceptsBase64(value: string): boolean {
  const text = value.replace(/^[ \t]+|[ \t]+$/g, '');
  const data = /^([A-Za-z0-9+/_-]*)(={0,2})$/.exec(text);
  if (!data) return false;
  const [, chars, padding] = data as unknown as [string, string, string];
  if (/[+/]/.test(chars) && /[-_]/.test(chars)) return false;
  if (chars.length % 4 === 1) return false;
  if (padding.length > 0 && text.length % 4 !== 0) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

describe('messages generated to fit the schemas', () => {
  it('every generated PaymentPayload validates against payment-payload.schema.json', () => {
    fc.assert(
      fc.property(paymentPayloadArb, (p) => {
        expect(validate('payment-payload', p)).toEqual({ ok: true, value: p });
      }),
    );
  });

  it('every generated PaymentRequiredResponse validates against payment-required-response.schema.json', () => {
    fc.assert(
      fc.property(paymentRequiredResponseArb, (m) => {
        expect(validate('payment-required-response', m).ok).toBe(true);
      }),
    );
  });

  it('every generated PaymentResponse validates against payment-response.schema.json', () => {
    fc.assert(
      fc.property(paymentResponseArb, (m) => {
        expect(validate('payment-response', m).ok).toBe(true);
      }),
    );
  });
});

describe('encoding then decoding', () => {
  it('a PaymentPayload comes back unchanged from decodePaymentHeader(encodeHeader(p)), or is refused only for its length', () => {
    fc.assert(
      fc.property(paymentPayloadArb, (p) => {
        const header = encodeHeader(p);
        const decoded = decodePaymentHeader(header);
        if (header.length <= MAX_PAYMENT_HEADER_LENGTH) {
          expect(decoded).toEqual({ ok: true, value: p });
        } else {
          expect(decoded.ok ? 'accepted' : decoded.error.code).toBe('invalid_payment');
        }
      }),
    );
  });

  it('a PaymentRequiredResponse comes back unchanged from decodePaymentRequiredHeader', () => {
    fc.assert(
      fc.property(paymentRequiredResponseArb, (m) => {
        expect(decodePaymentRequiredHeader(encodeHeader(m))).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('a PaymentResponse comes back unchanged from decodePaymentResponseHeader', () => {
    fc.assert(
      fc.property(paymentResponseArb, (m) => {
        expect(decodePaymentResponseHeader(encodeHeader(m))).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('encodeHeader emits padded standard base64 of the UTF-8 JSON text (ENC-2)', () => {
    fc.assert(
      fc.property(fc.oneof(paymentPayloadArb, paymentRequiredResponseArb, paymentResponseArb), (m) => {
        const header = encodeHeader(m);
        expect(header).toBe(Buffer.from(JSON.stringify(m), 'utf8').toString('base64'));
        expect(header).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
        expect(header.length % 4).toBe(0);
      }),
    );
  });

  it('a decoded message also decodes unchanged from its unpadded form and with surrounding whitespace (ENC-3)', () => {
    fc.assert(
      fc.property(paymentResponseArb, fc.stringMatching(/^[ \t]{0,3}$/), fc.stringMatching(/^[ \t]{0,3}$/), (m, before, after) => {
        const unpadded = encodeHeader(m).replace(/=+$/, '');
        expect(decodePaymentResponseHeader(before + unpadded + after)).toEqual({ ok: true, value: m });
      }),
    );
  });
});

describe('decoding arbitrary input never throws', () => {
  // Each yields { ok: true, value } or { ok: false, error } with a HeaderDecodeError
  // whose code is invalid_payment or unsupported_version.
  it('for arbitrary strings of any Unicode', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), expectEveryDecoderWellBehaved), { numRuns: 300 });
  });

  it('for arbitrary strings over the base64 characters, padding, whitespace and a few strays', () => {
    const unit = fc.constantFrom(...'AZaz09+/-_= \t,!é'.split(''), 'e', 'y', 'J');
    fc.assert(fc.property(fc.string({ unit, maxLength: 120 }), expectEveryDecoderWellBehaved), { numRuns: 300 });
  });

  it('for arbitrary canonical base64 strings', () => {
    fc.assert(fc.property(fc.base64String({ maxLength: 400 }), expectEveryDecoderWellBehaved), { numRuns: 300 });
  });

  it('for arbitrary bytes, base64-encoded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expectEveryDecoderWellBehaved(standardBase64(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('for arbitrary JSON texts, base64-encoded', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), (text) => {
        expectEveryDecoderWellBehaved(Buffer.from(text, 'utf8').toString('base64'));
      }),
      { numRuns: 300 },
    );
  });

  it('for objects with a stripe402Version of any JSON type, base64-encoded', () => {
    const messageWithVersionArb = fc.oneof(
      paymentPayloadArb.map((m) => ['payment-payload', m] as const),
      paymentRequiredResponseArb.map((m) => ['payment-required-response', m] as const),
    );
    const version = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 1 }));
    fc.assert(
      fc.property(version, messageWithVersionArb, (stripe402Version, [schema, m]) => {
        const header = encodeHeader({ ...m, stripe402Version });
        expectEveryDecoderWellBehaved(header);
        // Another integer is unsupported_version (MSG-1); anything else but 1 is invalid_payment.
        const outcome = checkMessage({ ...m, stripe402Version }, schema);
        const expected =
          stripe402Version === 1 ? 'accepted' : Number.isInteger(stripe402Version) ? 'unsupported_version' : 'invalid_payment';
        expect(outcome.ok ? 'accepted' : outcome.error.code).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('for valid headers after a random mutation', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), char: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), char: fc.constantFrom(...'A+/-_= ,\t'.split('')) }),
      fc.record({ kind: fc.constant('duplicate' as const), separator: fc.constantFrom(', ', ',', ' ') }),
    );
    fc.assert(
      fc.property(fc.oneof(paymentPayloadArb, paymentResponseArb), fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, mutations) => {
        let header = encodeHeader(m);
        for (const mu of mutations) {
          const at = 'at' in mu ? mu.at % (header.length + 1) : 0;
          if (mu.kind === 'insert') header = header.slice(0, at) + mu.char + header.slice(at);
          else if (mu.kind === 'delete') header = header.slice(0, at) + header.slice(at + 1);
          else if (mu.kind === 'replace') header = header.slice(0, at) + mu.char + header.slice(at + 1);
          else header = header + mu.separator + header;
        }
        expectEveryDecoderWellBehaved(header);
      }),
      { numRuns: 300 },
    );
  });

  it('for a payment header given as any number of field lines', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.base64String({ maxLength: 60 }), paymentPayloadArb.map(encodeHeader)), { maxLength: 3 }), (lines) => {
        const outcome = decodePaymentHeader(lines);
        expectWellFormedOutcome(outcome);
        // Two field lines are the header sent twice (ENC-9).
        if (lines.length !== 1) expect(outcome.ok).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the strict base64 decoder', () => {
  it('agrees with Buffer on every canonical padded standard base64 string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = standardBase64(bytes);
        expect(base64Decode(text)).toEqual(lenientBase64(text));
        expect(base64Decode(text)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('decodes the unpadded and the base64url forms of the same bytes (ENC-3, ENC-4)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(base64Decode(standardBase64(bytes).replace(/=+$/, ''))).toEqual(bytes);
        expect(base64Decode(Buffer.from(bytes).toString('base64url'))).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('is the inverse of base64Encode, which matches Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(base64Encode(bytes)).toBe(standardBase64(bytes));
        expect(base64Decode(base64Encode(bytes))).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts exactly the values ENC-3 to ENC-5 allow, and then decodes as Buffer does', () => {
    const unit = fc.constantFrom(...'ABCQRabf019+/-_= \t!.'.split(''));
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 24 }), (value) => {
        const decoded = base64Decode(value);
        expect(decoded !== null).toBe(specAcceptsBase64(value));
        if (decoded) expect(decoded).toEqual(lenientBase64(value.trim()));
      }),
      { numRuns: 2000 },
    );
  });
});
