/**
 * Properties of the client-id derivation (spec section 6), checked with
 * fast-check against node:crypto, an implementation independent of the Web
 * Crypto code under test.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SERVER_SECRET_MIN_BYTES, deriveClientId, isClientId, isStrongServerSecret } from './client-id.ts';
import { validate } from './schemas.ts';

const nodeHmac = (key: string, message: string): string =>
  createHmac('sha256', Buffer.from(key, 'utf8')).update(Buffer.from(message, 'utf8')).digest('hex');

// Any Unicode, in lengths on both sides of the 64-byte HMAC block.
const textArb = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 100 }));
// Secrets and fingerprints are never empty (client-id-derivation.schema.json);
// Web Crypto refuses a zero-length HMAC key.
const nonEmptyTextArb = textArb.filter((text) => text.length > 0);

describe('deriveClientId', () => {
  it('equals HMAC-SHA256 keyed with the secret over the fingerprint, as node:crypto computes it (CID-1)', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyTextArb, nonEmptyTextArb, async (secret, fingerprint) => {
        expect(await deriveClientId(secret, fingerprint)).toBe(nodeHmac(secret, fingerprint));
      }),
      { numRuns: 300 },
    );
  });

  it('always yields a well-formed client id', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyTextArb, nonEmptyTextArb, async (secret, fingerprint) => {
        expect(isClientId(await deriveClientId(secret, fingerprint))).toBe(true);
      }),
    );
  });

  it('depends on the order of key and message', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyTextArb, nonEmptyTextArb, async (secret, fingerprint) => {
        fc.pre(secret !== fingerprint);
        expect(await deriveClientId(secret, fingerprint)).not.toBe(await deriveClientId(fingerprint, secret));
      }),
    );
  });
});

describe('isClientId', () => {
  it('agrees with client-id.schema.json on arbitrary strings and near misses (CID-3)', () => {
    const nearMiss = fc
      .tuple(fc.stringMatching(/^[0-9a-f]{64}$/), fc.nat(64), fc.constantFrom('', 'A', 'g', ' ', '\n', '0', '\uff10'))
      .map(([id, at, char]) => id.slice(0, at) + char + id.slice(at + (char === '0' ? 0 : 1)));
    const value = fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-fA-F]{62,66}$/), nearMiss, fc.stringMatching(/^[0-9a-f]{64}$/));
    fc.assert(
      fc.property(value, (v) => {
        expect(isClientId(v)).toBe(validate('client-id', v).ok);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what is not a string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())), (v) => {
        expect(isClientId(v)).toBe(false);
      }),
    );
  });
});

describe('isStrongServerSecret', () => {
  it('counts UTF-8 bytes, not characters, against the 32-byte minimum (CID-2)', () => {
    fc.assert(
      fc.property(textArb, (secret) => {
        expect(isStrongServerSecret(secret)).toBe(Buffer.byteLength(secret, 'utf8') >= SERVER_SECRET_MIN_BYTES);
      }),
      { numRuns: 500 },
    );
  });
});
