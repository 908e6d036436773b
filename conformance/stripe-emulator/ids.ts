// Identifier generation for the Stripe emulator: object ids shaped like
// Stripe's (`pi_` + 24 base62 characters), request ids, client secrets and
// the deterministic card fingerprints the stripe402 client id is derived from.
import { createHmac, randomFillSync } from 'node:crypto';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// Ids are minted on every write request; drawing them from a pooled buffer
// keeps the per-request cost at a few array reads instead of a syscall.
const pool = Buffer.alloc(8192);
let poolOffset = pool.length;

function randomBytesFromPool(count: number): Buffer {
  if (poolOffset + count > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  return slice;
}

/** A random base62 string (the modulo bias is irrelevant for test ids). */
export function randomBase62(length: number): string {
  const bytes = randomBytesFromPool(length);
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[bytes[i]! % 62];
  return out;
}

/** A Stripe-shaped object id such as `pi_3Q0abc...` (prefix + 24 characters). */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(24)}`;
}

/** A request id as Stripe returns it in the `Request-Id` header. */
export function newRequestId(): string {
  return `req_${randomBase62(14)}`;
}

// A fixed key, not a per-process secret: fingerprints must be stable across
// emulator restarts so a client id derived from a card survives a restart.
const FINGERPRINT_KEY = 'stripe402-emulator/card-fingerprint/v1';

/**
 * The card fingerprint for a card number: 16 characters of [A-Za-z0-9],
 * stable for a number and distinct between numbers, as Stripe's are.
 */
export function cardFingerprint(cardNumber: string): string {
  const digest = createHmac('sha256', FINGERPRINT_KEY).update(cardNumber).digest();
  let out = '';
  for (let i = 0; i < 16; i++) out += BASE62[digest[i]! % 62];
  return out;
}

/** Seconds since the epoch, the unit of every Stripe timestamp. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
