/**
 * Opens the ledger a URL names, so a server's configuration is one string:
 * `pglite:memory` or `pglite:DIR` (embedded, the default; one process),
 * `postgres://...` / `postgresql://...`, `redis://...` / `rediss://...` or
 * `redis-cluster://host:port,host:port,...` (many server processes share
 * one ledger). Re-exports the ledger contract.
 *
 * @module @stripe402/server/ledger
 */

import { openRedisLedger } from './redis.ts';
import { openSqlLedger } from './sql.ts';
import type { Ledger } from './types.ts';
import type { LedgerOptions } from './shared.ts';

export * from './types.ts';
export type { LedgerOptions } from './shared.ts';
export { DEFAULT_TOPUP_LOCK_TTL_MS, DEFAULT_MAX_BATCH_SIZE, MAX_BALANCE } from './shared.ts';
export { TopUpLockTimeoutError } from './locks.ts';
export { openSqlLedger, DEFAULT_SCHEMA, type SqlTarget, type PGliteInstance } from './sql.ts';
export { openRedisLedger, DEFAULT_KEY_PREFIX } from './redis.ts';

/** Opens (and migrates, for SQL) the ledger at `url`. Rejects with LedgerUnavailableError when it cannot be reached. */
export async function openLedger(url: string, options: LedgerOptions = {}): Promise<Ledger> {
  if (url.startsWith('pglite:')) return openSqlLedger({ pglite: url.slice('pglite:'.length) }, options);
  if (/^postgres(ql)?:\/\//.test(url)) return openSqlLedger({ postgres: url }, options);
  if (/^(rediss?|redis-cluster):\/\//.test(url)) return openRedisLedger(url, options);
  throw new TypeError('a ledger URL starts with pglite:, postgres://, postgresql://, redis://, rediss:// or redis-cluster://');
}
