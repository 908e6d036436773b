// Stripe's idempotency layer: a POST with an Idempotency-Key is executed
// once; a retry with the same key and the same parameters replays the saved
// status and body (with `Idempotent-Replayed: true`), a retry with other
// parameters is a 400 idempotency_error, and a retry while the first is
// still executing is a 409 `idempotency_key_in_use`. Keys are scoped per API
// key and kept for 24 hours (and at most MAX_ENTRIES of them).
import { StripeApiError } from './errors.ts';

/**
 * What identifies a request's parameters: the raw text, compared first, and
 * the canonical form, computed only when the raw texts differ (a key reused
 * with the parameters in another order), so the common path never pays for it.
 */
export interface RequestFingerprint {
  raw: string;
  canonical: () => string;
}

export interface SavedResponse {
  fingerprint: RequestFingerprint;
  status: number;
  body: string;
  requestId: string;
  savedAt: number;
}

export type IdempotencyDecision =
  | { kind: 'replay'; saved: SavedResponse }
  | { kind: 'execute'; slot: string };

const TTL_MS = 24 * 60 * 60 * 1000;
/** Bounds memory under load: the SDK sends a fresh key with every POST. */
export const MAX_ENTRIES = 100_000;
export const MAX_KEY_LENGTH = 255;

export class IdempotencyStore {
  private readonly saved = new Map<string, SavedResponse>();
  private readonly inFlight = new Set<string>();

  clear(): void {
    this.saved.clear();
    this.inFlight.clear();
  }

  /** Forgets every saved response, as 24 hours would (requests still executing keep their keys): for tests of what a server does after Stripe's window. */
  expireAll(): number {
    const count = this.saved.size;
    this.saved.clear();
    return count;
  }

  /** Decides what a request with this key does; on `execute` the caller must call finish(). */
  begin(apiKey: string, idempotencyKey: string, fingerprint: RequestFingerprint): IdempotencyDecision {
    if (idempotencyKey.length > MAX_KEY_LENGTH) {
      throw new StripeApiError(
        400,
        {
          type: 'invalid_request_error',
          message: `Invalid Idempotency-Key: keys can be at most ${MAX_KEY_LENGTH} characters long.`,
        },
        false,
      );
    }
    const slot = `${apiKey}\u0000${idempotencyKey}`;
    const saved = this.saved.get(slot);
    if (saved && Date.now() - saved.savedAt < TTL_MS) {
      if (saved.fingerprint.raw !== fingerprint.raw && saved.fingerprint.canonical() !== fingerprint.canonical()) {
        throw new StripeApiError(
          400,
          {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          },
          false,
        );
      }
      return { kind: 'replay', saved };
    }
    if (saved) this.saved.delete(slot);
    if (this.inFlight.has(slot)) {
      throw new StripeApiError(
        409,
        {
          type: 'idempotency_error',
          code: 'idempotency_key_in_use',
          doc_url: 'https://stripe.com/docs/error-codes/idempotency-key-in-use',
          message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
        },
        false,
        { 'Stripe-Should-Retry': 'true' },
      );
    }
    this.inFlight.add(slot);
    return { kind: 'execute', slot };
  }

  /** Ends an execution; `response` is saved for replay unless undefined (a validation failure). */
  finish(slot: string, response: Omit<SavedResponse, 'savedAt'> | undefined): void {
    this.inFlight.delete(slot);
    if (!response) return;
    this.saved.set(slot, { ...response, savedAt: Date.now() });
    if (this.saved.size > MAX_ENTRIES) {
      const oldest = this.saved.keys().next().value;
      if (oldest !== undefined) this.saved.delete(oldest);
    }
  }
}

/** Parameters in a canonical form (keys sorted at every level), so equal parameters compare equal. */
export function canonicalParams(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalParams).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    let out = '{';
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${canonicalParams((value as Record<string, unknown>)[key])}`;
    }
    return `${out}}`;
  }
  return JSON.stringify(value ?? null);
}
