/**
 * The ledger contract every store implements (spec section 11): balances per
 * (client id, currency) in integer units, a journal written in the same
 * transaction as every balance change, and PaymentIntents that credit at
 * most once. The payment engine sees only this interface, so the SQL ledger
 * (PGlite, PostgreSQL) and the Redis ledger are interchangeable.
 */

/** One (client id, currency) balance: a balance never spans currencies (UNIT-5). */
export interface Account {
  clientId: string;
  currency: string;
}

export interface SpendRequest extends Account {
  /** Units to deduct; a positive safe integer. */
  amount: number;
  /** The paid route, for the aggregated journal entry (LEDG-3), e.g. "GET /api/joke". */
  route: string;
}

export type SpendResult =
  /** Deducted; `balance` is the balance after this spend. */
  | { ok: true; balance: number }
  /** Not enough credit; nothing changed; `balance` is the current balance (0 for an unknown account). */
  | { ok: false; balance: number };

export interface TopUpCredit extends Account {
  /** The PaymentIntent that paid; the unique key of the credit (LEDG-4). */
  paymentIntentId: string;
  /** Units granted: exactly the payload's topUpAmount (UNIT-4). */
  units: number;
  /** What Stripe charged, in the currency's smallest unit (for conservation checks, LEDG-5). */
  chargedMinor: number;
  /** Deduct this request's price in the same transaction as the credit (PROC-8). */
  spend?: { amount: number; route: string };
}

export interface TopUpResult {
  /** False when this PaymentIntent had already been credited: nothing was credited again. */
  credited: boolean;
  /** Whether `spend` was deducted (false when absent or when the balance fell short). */
  spent: boolean;
  /** The balance after the operation. */
  balance: number;
}

export interface RestoreRequest extends Account {
  /** Units to give back, after the paid handler answered 5xx (PROC-10). */
  amount: number;
  route: string;
  /**
   * Names this restore. A ledger applies a restore id at most once, so a
   * restore whose answer was lost (a dropped connection) can be sent again
   * without giving the units back twice.
   */
  restoreId: string;
}

/**
 * A top-up this deployment started: a PaymentIntent it created for a client
 * id and recorded before the client learned the PaymentIntent's id, so that a
 * resume naming it (AUTH-2) is checked without a Stripe call (SEC-9).
 */
export interface StartedTopUp extends Account {
  paymentIntentId: string;
  /** The units the top-up grants once it succeeds. */
  units: number;
}

/**
 * A top-up a client keyed with the payload's idempotencyKey, recorded before
 * its Stripe call so that the ledger, not a Stripe search, knows whether the
 * key was used (PROC-12), also after Stripe's 24-hour idempotency window.
 */
export interface KeyedTopUp extends Account {
  /** The payload's idempotencyKey; with the client id, the unique key of the record. */
  idempotencyKey: string;
  /** The Idempotency-Key the Stripe call was (or is about to be) made with. */
  stripeIdempotencyKey: string;
  /** The units the top-up grants. */
  units: number;
}

export interface KeyedTopUpRecord extends KeyedTopUp {
  /** The PaymentIntent the Stripe call answered with; null until known (the call failed, or its answer was lost). */
  paymentIntentId: string | null;
  /** When the record was first written, before the first Stripe call with its key. */
  recordedAt: Date;
}

export interface KeyedTopUpBegun {
  /** The record of this (client id, idempotencyKey): the one just written, or the earlier one, which wins. */
  record: KeyedTopUpRecord;
  /** True when this call wrote it: the key was never used with this ledger. */
  created: boolean;
  /**
   * True when the account has journal entries older than this ledger's
   * keyed top-up records (a ledger upgraded from a version without them):
   * a key the ledger does not know may still name a top-up Stripe made.
   */
  predatesRecords: boolean;
}

export type JournalKind = 'topup' | 'spend' | 'restore' | 'refund';

export interface JournalEntry extends Account {
  kind: JournalKind;
  /** Signed change to the balance: positive for topup and restore, negative for spend and refund. */
  delta: number;
  /** For aggregated spends, how many requests the entry covers; 1 otherwise. */
  count: number;
  route?: string;
  paymentIntentId?: string;
  /** Smallest-unit amount Stripe charged, on topup entries. */
  chargedMinor?: number;
  createdAt: Date;
}

export interface Ledger {
  /** Deducts atomically; never drives a balance below zero, under any concurrency, across processes (LEDG-1). */
  spend(request: SpendRequest): Promise<SpendResult>;
  /** Credits a succeeded PaymentIntent at most once, ever (LEDG-4), optionally spending in the same transaction. */
  creditTopUp(credit: TopUpCredit): Promise<TopUpResult>;
  /** Gives back a deduction (PROC-10). */
  restore(request: RestoreRequest): Promise<{ balance: number }>;
  /** The current balance; 0 for an unknown account. */
  balance(account: Account): Promise<number>;
  /** Whether this PaymentIntent has been credited. */
  isCredited(paymentIntentId: string): Promise<boolean>;
  /** Records a top-up this server started and has not credited (one awaiting card authentication); recording it again changes nothing. */
  recordTopUp(topUp: StartedTopUp): Promise<void>;
  /** The top-up a PaymentIntent id names in this ledger, recorded or credited; null when this ledger never saw it (SEC-9). */
  startedTopUp(paymentIntentId: string): Promise<StartedTopUp | null>;
  /**
   * Records a keyed top-up unless its (client id, idempotencyKey) is recorded
   * already, atomically, and returns the record that holds (PROC-12). The
   * Redis ledger keeps the record in the account's hash slot, so there the
   * key is unique per account (client id and currency): see docs/ledgers.md.
   */
  beginKeyedTopUp(topUp: KeyedTopUp): Promise<KeyedTopUpBegun>;
  /** Adds the PaymentIntent id to a keyed top-up's record, once it is known; a record that has one keeps it. */
  keyedTopUpCharged(account: Account, idempotencyKey: string, paymentIntentId: string): Promise<void>;
  /** The Stripe Customer recorded for a client id, or null. */
  customerOf(clientId: string): Promise<string | null>;
  /** Records the Stripe Customer of a client id; one recorded earlier is kept. */
  recordCustomer(clientId: string, customerId: string): Promise<void>;
  /**
   * Runs `fn` while holding the top-up lock of one account, shared by every
   * process using this ledger, so concurrent top-ups make one charge (PROC-7).
   * The lock expires after `ttlMs` if its holder dies.
   */
  withTopUpLock<T>(account: Account, fn: () => Promise<T>, ttlMs?: number): Promise<T>;
  /** Every journal entry of an account, oldest first (for invariant checks and reconcile). */
  journal(account: Account): Promise<JournalEntry[]>;
  /** Every account the ledger knows, with its balance (for invariant checks; may be slow). */
  accounts(): Promise<Array<Account & { balance: number }>>;
  /** Finishes queued work and releases connections. */
  close(): Promise<void>;
}

/** Thrown when the ledger cannot be reached; the server answers 503 (ERR-5). */
export class LedgerUnavailableError extends Error {
  override name = 'LedgerUnavailableError';
  constructor(message = 'the ledger is unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}
