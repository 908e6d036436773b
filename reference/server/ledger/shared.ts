/**
 * What the SQL and Redis ledgers share: their options, the limits every
 * amount obeys, and the argument checks that run before anything touches a
 * store. The checks throw TypeError synchronously inside async methods, so a
 * float, a string or an unsafe integer never reaches SQL or Lua (MSG-3):
 * both stores hold exact integers, and Lua numbers are doubles, exact only up
 * to 2^53-1.
 */

import type { Account, KeyedTopUp, SpendRequest } from './types.ts';

/** The largest balance a ledger holds: amounts are JSON integers up to 2^53-1 (MSG-3). */
export const MAX_BALANCE = Number.MAX_SAFE_INTEGER;

/** How long a top-up lock lives when its holder dies before releasing it. */
export const DEFAULT_TOPUP_LOCK_TTL_MS = 30_000;

/** Spends applied in one ledger operation, at most (group commit). */
export const DEFAULT_MAX_BATCH_SIZE = 512;
/** One batch at a time: batches of a few hot accounts only queue on each other's locks. */
export const DEFAULT_MAX_BATCHES_IN_FLIGHT = 1;

export interface LedgerOptions {
  /** PostgreSQL/PGlite schema holding the ledger tables (default `stripe402`); a fresh one isolates tests. */
  schema?: string;
  /** Prefix of every Redis key (default `stripe402:ledger:`); a fresh one isolates tests. */
  keyPrefix?: string;
  /**
   * Apply spends that arrive within one turn of the event loop in one ledger
   * operation (default true). False runs one statement or script per spend;
   * it exists as the benchmark's baseline.
   */
  groupCommit?: boolean;
  /** Most spends per group-commit batch (default 512). */
  maxBatchSize?: number;
  /**
   * Group-commit batches applying at once (default 1). More can help a
   * PostgreSQL ledger whose batches touch different accounts (many clients):
   * they commit in parallel on separate pooled connections. Batches that
   * share an account gain nothing, since they wait on its row lock.
   */
  maxBatchesInFlight?: number;
  /** PostgreSQL connections (default: twice the CPU count, at least 2, at most 8). */
  poolSize?: number;
  /** How long to wait for a PostgreSQL or Redis connection before the ledger is unavailable (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Longest wait for a top-up lock (default: the lock's TTL plus one second). */
  lockWaitMs?: number;
  /**
   * Redis: replicas that must hold a credit before it is acknowledged (WAIT),
   * so a failover cannot lose a charged top-up. Default 1 on a Redis Cluster
   * with replicas, 0 otherwise.
   */
  creditReplicas?: number;
  /**
   * Redis: replicas that must hold a spend batch before its spends are
   * answered (default 0: spends are acknowledged once the primary applied
   * them; docs/ledgers.md says what a failover can then lose).
   */
  spendReplicas?: number;
  /** Redis: how long a credit waits for those replicas before the ledger reports itself unavailable (default 2000 ms). */
  replicaWaitMs?: number;
}

const CURRENCY = /^[a-z]{3}$/;
const MAX_TEXT = 256;

function assertText(name: string, value: unknown, maxLength = MAX_TEXT): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new TypeError(`${name} must be a non-empty string of at most ${maxLength} characters`);
  }
}

/** A positive amount of units: an integer from 1 to 2^53-1. */
export function assertUnits(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be an integer from 1 to 2^53-1`);
  }
}

/** An amount that may be zero, such as the smallest-unit charge of a free top-up in tests. */
export function assertNonNegativeInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${name} must be an integer from 0 to 2^53-1`);
  }
}

export function assertAccount(account: unknown): asserts account is Account {
  if (typeof account !== 'object' || account === null) throw new TypeError('account must be an object');
  const { clientId, currency } = account as Record<string, unknown>;
  assertText('clientId', clientId);
  if (typeof currency !== 'string' || !CURRENCY.test(currency)) {
    throw new TypeError('currency must be a lower-case ISO 4217 code');
  }
}

export function assertRoute(route: unknown): asserts route is string {
  assertText('route', route, 512);
}

/**
 * A checked copy of a spend request: the values a batch queues are the values
 * checked, whatever the caller does with its object before the batch is cut.
 */
export function checkedSpend(request: SpendRequest): SpendRequest {
  const { clientId, currency, amount, route } = request;
  const spend = { clientId, currency, amount, route };
  assertAccount(spend);
  assertUnits('amount', spend.amount);
  assertRoute(spend.route);
  return spend;
}

export function assertRestoreId(id: unknown): asserts id is string {
  assertText('restoreId', id, 64);
}

export function assertPaymentIntentId(id: unknown): asserts id is string {
  assertText('paymentIntentId', id);
}

/** A keyed top-up as a ledger stores it (PROC-12): the account, both idempotency keys and the units. */
export function assertKeyedTopUp(topUp: KeyedTopUp): void {
  assertAccount(topUp);
  assertText('idempotencyKey', topUp.idempotencyKey);
  assertText('stripeIdempotencyKey', topUp.stripeIdempotencyKey);
  assertUnits('units', topUp.units);
}

export function assertCustomerId(id: unknown): asserts id is string {
  assertText('customerId', id);
}

/** The longest delay a Node timer takes (about 24.8 days); lock TTLs and waits stay below it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function assertTtl(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TIMER_MS) {
    throw new TypeError('ttlMs must be an integer from 1 to 2^31-1');
  }
}

export function assertLockWait(lockWaitMs: unknown): asserts lockWaitMs is number {
  if (typeof lockWaitMs !== 'number' || !Number.isSafeInteger(lockWaitMs) || lockWaitMs < 0 || lockWaitMs > MAX_TIMER_MS) {
    throw new TypeError('lockWaitMs must be an integer from 0 to 2^31-1');
  }
}

export function resolveMaxBatchesInFlight(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_BATCHES_IN_FLIGHT;
  if (!Number.isSafeInteger(value) || value < 1 || value > 64) {
    throw new TypeError('maxBatchesInFlight must be an integer from 1 to 64');
  }
  return value;
}

export function resolveMaxBatchSize(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isSafeInteger(value) || value < 1 || value > 10_000) {
    throw new TypeError('maxBatchSize must be an integer from 1 to 10000');
  }
  return value;
}

/** Converts what a driver returns for a BIGINT (string, number or bigint) to a number, refusing what would lose precision. */
export function toUnits(value: unknown): number {
  const units = Number(value);
  if (!Number.isSafeInteger(units)) throw new RangeError('the ledger returned an amount that is not a safe integer');
  return units;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
