/**
 * The SQL ledger, one implementation for PGlite (embedded, the default) and
 * PostgreSQL (shared by many server processes): the same migrations, the same
 * statements. Every operation that changes money is one call of a plpgsql
 * function, so it is one statement, one implicit transaction and one round
 * trip, and the balance change and its journal entries commit together
 * (LEDG-2).
 *
 * Spends go through group commit: `spend_batch` receives a whole batch as
 * arrays, locks the touched balances in one global order (so batches from
 * other processes wait instead of deadlocking), applies the spends one by one
 * in arrival order, writes each balance once and one aggregated journal entry
 * per (account, route) with its count and total (LEDG-3). Row locks taken
 * before reading make it correct under READ COMMITTED with any number of
 * processes: no balance goes below zero (LEDG-1, and a CHECK says so too).
 * A top-up's journal entry is unique by PaymentIntent id, so a PaymentIntent
 * credits at most once, ever (LEDG-4).
 *
 * PGlite is one connection that runs queries one at a time, and only one
 * process can open its data directory, so its top-up lock is an in-process
 * mutex; PostgreSQL's is a row with an expiry in `topup_locks`. pg prepares
 * each named statement once per pooled connection.
 */

import { availableParallelism } from 'node:os';
import { mkdirSync } from 'node:fs';
import v8 from 'node:v8';
// Drivers are optional peer dependencies, loaded when a ledger of their kind
// opens: a PostgreSQL user needs no PGlite installed, and the other way round.
import type pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { GroupCommit } from './group-commit.ts';
import { LocalLocks, withLock, type SharedLock } from './locks.ts';
import { initPgliteDirectory } from './pglite-init.ts';
import {
  DEFAULT_TOPUP_LOCK_TTL_MS,
  MAX_BALANCE,
  MAX_TIMER_MS,
  assertAccount,
  assertCustomerId,
  assertKeyedTopUp,
  assertLockWait,
  assertNonNegativeInteger,
  assertPaymentIntentId,
  assertRestoreId,
  assertRoute,
  assertTtl,
  assertUnits,
  checkedSpend,
  resolveMaxBatchSize,
  resolveMaxBatchesInFlight,
  toUnits,
  type LedgerOptions,
} from './shared.ts';
import {
  LedgerUnavailableError,
  type Account,
  type JournalEntry,
  type JournalKind,
  type KeyedTopUp,
  type KeyedTopUpBegun,
  type Ledger,
  type RestoreRequest,
  type SpendRequest,
  type SpendResult,
  type StartedTopUp,
  type TopUpCredit,
  type TopUpResult,
} from './types.ts';

/**
 * The embedded ledger's settings: 16 MB of shared buffers instead of
 * PostgreSQL's 128 MB, which in PGlite is WebAssembly memory held for good.
 * A ledger's hot rows are few (balances being spent), so a small cache
 * serves them; with the initdb in a child process (pglite-init.ts) a server
 * on PGlite idles near 290 MB instead of 880 MB (docs/performance.md).
 */
const PGLITE_OPTIONS = { postgresqlconf: ['shared_buffers = 16MB'] };

/**
 * PGlite's WebAssembly is compiled by V8's baseline compiler only. By
 * default V8 recompiles hot WebAssembly functions with its optimizing
 * compiler, whose code and compile-time memory a PGlite process keeps:
 * about 55 MB on this ledger's queries, what takes a PGlite server under
 * 250 MB idle. The baseline code runs the paid route as fast within noise,
 * since a spend's time is its round trips (docs/performance.md). V8 flags
 * are process-wide and apply to modules compiled after they are set, so it
 * is set before PGlite is created (setting it again changes nothing), and
 * only when the ledger opens PGlite itself.
 */
function compileWasmBaselineOnly(): void {
  v8.setFlagsFromString('--liftoff-only');
}

export const DEFAULT_SCHEMA = 'stripe402';

type Row = Record<string, unknown>;

interface SqlTransaction {
  exec(text: string): Promise<void>;
  query(text: string, values: unknown[]): Promise<Row[]>;
}

/** What the ledger needs from PGlite or a pg pool. */
interface SqlDriver {
  /** Runs one parameterized statement; `name` makes pg prepare it once per connection. */
  query(name: string, text: string, values: unknown[]): Promise<Row[]>;
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** In-process top-up locks, one table per database so ledgers sharing it share them. */
  readonly locks: LocalLocks;
  /** Whether the top-up lock must also be taken in the database (other processes share it). */
  readonly sharedAcrossProcesses: boolean;
  /**
   * Runs SQL text that carries its values as literals, through the simple
   * query protocol; set only where that is much cheaper than a
   * parameterized statement (PGlite, see PGliteDriver.inline).
   */
  inline?: (text: string) => Promise<Row[]>;
}

/** A driver error becomes LedgerUnavailableError, its text kept only as `cause` for logs. */
function ledgerError(error: unknown): Error {
  if (error instanceof LedgerUnavailableError || error instanceof TypeError) return error;
  const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  if (code === '23514' && constraint === 'balance_within_safe_range') {
    return new RangeError(`a balance cannot exceed ${MAX_BALANCE} units`, { cause: error });
  }
  return new LedgerUnavailableError('the ledger is unavailable', { cause: error });
}

/**
 * What the ledger calls of an open PGlite instance. A structural type, so
 * that the package's declarations name no PGlite type: a PostgreSQL or
 * Redis user has no PGlite installed, and their TypeScript must not need it.
 */
export interface PGliteInstance {
  query<T>(query: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(query: string): Promise<Array<{ rows: unknown[] }>>;
  transaction<T>(callback: (tx: { query<R>(query: string, params?: unknown[]): Promise<{ rows: R[] }>; exec(query: string): Promise<unknown> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly closed: boolean;
}

const pgliteLocks = new WeakMap<PGliteInstance, LocalLocks>();

class PGliteDriver implements SqlDriver {
  readonly sharedAcrossProcesses = false;
  readonly locks: LocalLocks;
  readonly #db: PGliteInstance;
  readonly #owned: boolean;

  constructor(db: PGliteInstance, owned: boolean) {
    this.#db = db;
    this.#owned = owned;
    let locks = pgliteLocks.get(db);
    if (locks === undefined) pgliteLocks.set(db, (locks = new LocalLocks()));
    this.locks = locks;
  }

  async query(_name: string, text: string, values: unknown[]): Promise<Row[]> {
    try {
      return (await this.#db.query<Row>(text, values)).rows;
    } catch (error) {
      throw ledgerError(error);
    }
  }

  /**
   * PGlite answers a parameterized statement with six calls into its
   * WebAssembly module (parse, describe, bind, describe, execute, sync) and
   * a simple query with one, which makes a spend batch about a third
   * cheaper. Enabled by `enableInline` once the database is known to read
   * literals the way `sqlLiteral` writes them.
   */
  inline?: (text: string) => Promise<Row[]>;

  enableInline(): void {
    this.inline = async (text) => {
      try {
        const [result] = await this.#db.exec(text);
        return (result?.rows ?? []) as Row[];
      } catch (error) {
        throw ledgerError(error);
      }
    };
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction((tx) =>
        fn({
          exec: async (text) => void (await tx.exec(text)),
          query: async (text, values) => (await tx.query<Row>(text, values)).rows,
        }),
      );
    } catch (error) {
      throw ledgerError(error);
    }
  }

  async close(): Promise<void> {
    if (this.#owned && !this.#db.closed) await this.#db.close();
  }
}

class PostgresDriver implements SqlDriver {
  readonly sharedAcrossProcesses = true;
  readonly locks = new LocalLocks();
  readonly #pool: pg.Pool;

  constructor(Pool: typeof pg.Pool, connectionString: string, poolSize: number, connectTimeoutMs: number) {
    this.#pool = new Pool({
      connectionString,
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'stripe402-ledger',
    });
    // An idle connection that drops is discarded by the pool; the next query
    // reconnects or fails with LedgerUnavailableError. Without a listener the
    // event would crash the process.
    this.#pool.on('error', () => undefined);
  }

  async query(name: string, text: string, values: unknown[]): Promise<Row[]> {
    try {
      return (await this.#pool.query<Row>({ name, text, values })).rows;
    } catch (error) {
      throw ledgerError(error);
    }
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw ledgerError(error);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn({
        exec: async (text) => void (await client.query(text)),
        query: async (text, values) => (await client.query<Row>(text, values)).rows,
      });
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw ledgerError(error);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

/** The migrations, applied in order, each once, recorded in `schema_migrations`. Never edit one that shipped: add another. */
function migrations(s: string): Array<{ version: number; name: string; sql: string }> {
  return [
    {
      version: 1,
      name: 'balances, journal, top-up locks',
      sql: `
        CREATE TABLE ${s}.balances (
          client_id text NOT NULL,
          currency text NOT NULL,
          balance bigint NOT NULL,
          PRIMARY KEY (client_id, currency),
          CONSTRAINT balance_within_safe_range CHECK (balance >= 0 AND balance <= ${MAX_BALANCE})
        );

        CREATE TABLE ${s}.journal (
          id bigint GENERATED ALWAYS AS IDENTITY,
          client_id text NOT NULL,
          currency text NOT NULL,
          kind text NOT NULL CONSTRAINT journal_kind CHECK (kind IN ('topup', 'spend', 'restore', 'refund')),
          delta bigint NOT NULL,
          count integer NOT NULL DEFAULT 1 CONSTRAINT journal_count_positive CHECK (count >= 1),
          route text,
          payment_intent_id text,
          charged_minor bigint CONSTRAINT journal_charged_minor_non_negative CHECK (charged_minor >= 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT journal_delta_sign
            CHECK (CASE WHEN kind IN ('topup', 'restore') THEN delta > 0 ELSE delta < 0 END),
          CONSTRAINT journal_topup_names_its_payment
            CHECK (kind <> 'topup' OR (payment_intent_id IS NOT NULL AND charged_minor IS NOT NULL)),
          -- Leads with the account: the one index serves journal(account) in
          -- order, so each entry costs one index insertion, not two.
          PRIMARY KEY (client_id, currency, id)
        );
        -- A PaymentIntent credits at most once, ever (LEDG-4).
        CREATE UNIQUE INDEX journal_topup_payment_intent ON ${s}.journal (payment_intent_id) WHERE kind = 'topup';

        CREATE TABLE ${s}.topup_locks (
          client_id text NOT NULL,
          currency text NOT NULL,
          token text NOT NULL,
          expires_at timestamptz NOT NULL,
          PRIMARY KEY (client_id, currency)
        );

        -- For operators and invariant checks: every balance beside the sum of its journal (LEDG-2).
        CREATE VIEW ${s}.balance_audit AS
          SELECT b.client_id, b.currency, b.balance,
                 coalesce(j.total, 0)::bigint AS journal_total,
                 b.balance = coalesce(j.total, 0) AS consistent
            FROM ${s}.balances b
            LEFT JOIN (SELECT client_id, currency, sum(delta) AS total
                         FROM ${s}.journal GROUP BY client_id, currency) j
              USING (client_id, currency);
      `,
    },
    {
      version: 2,
      name: 'ledger functions',
      sql: `
        -- Applies a batch of spends in arrival order. Accounts come deduplicated
        -- and sorted (p_account_*), each spend names its account by 1-based
        -- index. Returns, per spend, the balance after it when it succeeded, or
        -- -(balance + 1) when the balance fell short (-1 for an unknown account).
        CREATE FUNCTION ${s}.spend_batch(
          p_account_clients text[], p_account_currencies text[],
          p_spend_accounts integer[], p_spend_amounts bigint[], p_spend_routes text[]
        ) RETURNS bigint[] LANGUAGE plpgsql
          -- With array arguments PostgreSQL would re-plan every statement on
          -- every call (a custom plan looks cheaper for each batch size); the
          -- plans here have one sensible shape, so plan once.
          SET plan_cache_mode = force_generic_plan
        AS $fn$
        DECLARE
          v_rows tid[];
          v_balances bigint[];
          v_before bigint[];
          v_results bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_spend_amounts)]);
          v_account integer;
          v_balance bigint;
        BEGIN
          -- One index lookup and row lock per account, in the order given. The
          -- caller sorts accounts, so concurrent batches from other processes
          -- lock in the same order and queue instead of deadlocking; under
          -- READ COMMITTED a lock returns the latest committed balance.
          SELECT array_agg(locked.balance ORDER BY wanted.account), array_agg(locked.row_id ORDER BY wanted.account)
            INTO v_balances, v_rows
            FROM unnest(p_account_clients, p_account_currencies) WITH ORDINALITY AS wanted(client_id, currency, account)
            LEFT JOIN LATERAL (
              SELECT b.balance, b.ctid AS row_id
                FROM ${s}.balances b
               WHERE b.client_id = wanted.client_id AND b.currency = wanted.currency
                 FOR UPDATE
            ) AS locked ON true;
          v_before := v_balances;

          FOR i IN 1 .. cardinality(p_spend_amounts) LOOP
            v_account := p_spend_accounts[i];
            v_balance := v_balances[v_account];
            IF v_balance >= p_spend_amounts[i] THEN -- false for NULL, an unknown account
              v_balance := v_balance - p_spend_amounts[i];
              v_balances[v_account] := v_balance;
              v_results[i] := v_balance;
            ELSE
              v_results[i] := -coalesce(v_balance, 0) - 1;
            END IF;
          END LOOP;

          -- The locked rows cannot move while we hold their locks, so their
          -- ctids address them directly. One aggregated entry per account and route (LEDG-3).
          WITH updated AS (
            UPDATE ${s}.balances b
               SET balance = after.balance
              FROM unnest(v_rows, v_balances, v_before) AS after(row_id, balance, before)
             WHERE after.balance <> after.before AND b.ctid = after.row_id
          )
          INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, route)
          SELECT p_account_clients[spent.account], p_account_currencies[spent.account],
                 'spend', -sum(spent.amount), count(*), spent.route
            FROM unnest(p_spend_accounts, p_spend_amounts, p_spend_routes, v_results)
                   AS spent(account, amount, route, result)
           WHERE spent.result >= 0
           GROUP BY spent.account, spent.route;

          RETURN v_results;
        END
        $fn$;

        -- Credits a PaymentIntent once and optionally spends in the same
        -- transaction. Returns {credited 0|1, spent 0|1, balance}.
        CREATE FUNCTION ${s}.credit_topup(
          p_client_id text, p_currency text, p_payment_intent_id text,
          p_units bigint, p_charged_minor bigint, p_spend_amount bigint, p_route text
        ) RETURNS bigint[] LANGUAGE plpgsql AS $fn$
        DECLARE
          v_balance bigint;
          v_spent boolean := false;
        BEGIN
          INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, payment_intent_id, charged_minor)
          VALUES (p_client_id, p_currency, 'topup', p_units, 1, p_payment_intent_id, p_charged_minor)
          ON CONFLICT (payment_intent_id) WHERE kind = 'topup' DO NOTHING;
          IF NOT FOUND THEN
            SELECT b.balance INTO v_balance
              FROM ${s}.balances b WHERE b.client_id = p_client_id AND b.currency = p_currency;
            RETURN ARRAY[0, 0, coalesce(v_balance, 0)];
          END IF;

          INSERT INTO ${s}.balances AS b (client_id, currency, balance)
          VALUES (p_client_id, p_currency, p_units)
          ON CONFLICT (client_id, currency) DO UPDATE SET balance = b.balance + excluded.balance
          RETURNING b.balance INTO v_balance;

          IF p_spend_amount IS NOT NULL AND v_balance >= p_spend_amount THEN
            v_balance := v_balance - p_spend_amount;
            UPDATE ${s}.balances b SET balance = v_balance
             WHERE b.client_id = p_client_id AND b.currency = p_currency;
            INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, route)
            VALUES (p_client_id, p_currency, 'spend', -p_spend_amount, 1, p_route);
            v_spent := true;
          END IF;
          RETURN ARRAY[1, v_spent::integer, v_balance];
        END
        $fn$;

        CREATE FUNCTION ${s}.restore(
          p_client_id text, p_currency text, p_amount bigint, p_route text
        ) RETURNS bigint LANGUAGE plpgsql AS $fn$
        DECLARE
          v_balance bigint;
        BEGIN
          INSERT INTO ${s}.balances AS b (client_id, currency, balance)
          VALUES (p_client_id, p_currency, p_amount)
          ON CONFLICT (client_id, currency) DO UPDATE SET balance = b.balance + excluded.balance
          RETURNING b.balance INTO v_balance;
          INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, route)
          VALUES (p_client_id, p_currency, 'restore', p_amount, 1, p_route);
          RETURN v_balance;
        END
        $fn$;
      `,
    },
    {
      version: 3,
      name: 'top-ups started and not yet credited',
      sql: `
        -- A PaymentIntent this deployment created and handed to a client to
        -- resume (card authentication), so a resume is checked here before
        -- any Stripe call (SEC-9). A credited one is found in the journal.
        CREATE TABLE ${s}.started_topups (
          payment_intent_id text PRIMARY KEY,
          client_id text NOT NULL,
          currency text NOT NULL,
          units bigint NOT NULL CHECK (units > 0),
          created_at timestamptz NOT NULL DEFAULT now()
        );
      `,
    },
    {
      version: 4,
      name: 'keyed top-ups and Customers per client id',
      sql: `
        -- A top-up keyed by the payload's idempotencyKey, written before its
        -- Stripe call and given its PaymentIntent id after, so that a key is
        -- known here rather than found by a Stripe search (PROC-12).
        CREATE TABLE ${s}.keyed_topups (
          client_id text NOT NULL,
          idempotency_key text NOT NULL,
          currency text NOT NULL,
          units bigint NOT NULL CHECK (units > 0),
          stripe_idempotency_key text NOT NULL,
          payment_intent_id text,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (client_id, idempotency_key)
        );
        -- The Stripe Customer of each client id, so none is searched for.
        CREATE TABLE ${s}.customers (
          client_id text PRIMARY KEY,
          customer_id text NOT NULL
        );
        -- On a ledger that already had a journal, keys used before this
        -- moment are not recorded: their accounts still ask Stripe.
        CREATE TABLE ${s}.keyed_topups_since (at timestamptz NOT NULL);
        INSERT INTO ${s}.keyed_topups_since (at) SELECT now() WHERE EXISTS (SELECT 1 FROM ${s}.journal);
      `,
    },
    {
      version: 5,
      name: 'restores named by an id, applied once',
      sql: `
        -- A restore whose answer was lost is sent again with the same id; the
        -- id's journal entry makes the second one change nothing (PROC-10).
        -- Unique within the account, so that the index partitions with it.
        ALTER TABLE ${s}.journal ADD COLUMN restore_id text;
        CREATE UNIQUE INDEX journal_restore_id ON ${s}.journal (client_id, currency, restore_id) WHERE kind = 'restore';

        -- The four-argument restore stays for processes not yet upgraded.
        CREATE FUNCTION ${s}.restore(
          p_client_id text, p_currency text, p_amount bigint, p_route text, p_restore_id text
        ) RETURNS bigint LANGUAGE plpgsql AS $fn$
        DECLARE
          v_balance bigint;
        BEGIN
          INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, route, restore_id)
          VALUES (p_client_id, p_currency, 'restore', p_amount, 1, p_route, p_restore_id)
          ON CONFLICT (client_id, currency, restore_id) WHERE kind = 'restore' DO NOTHING;
          IF NOT FOUND THEN
            SELECT balance INTO v_balance FROM ${s}.balances WHERE client_id = p_client_id AND currency = p_currency;
            RETURN coalesce(v_balance, 0);
          END IF;
          INSERT INTO ${s}.balances AS b (client_id, currency, balance)
          VALUES (p_client_id, p_currency, p_amount)
          ON CONFLICT (client_id, currency) DO UPDATE SET balance = b.balance + excluded.balance
          RETURNING b.balance INTO v_balance;
          RETURN v_balance;
        END
        $fn$;
      `,
    },
  ];
}

/** Creates the schema and applies the missing migrations, one process at a time. */
async function migrate(driver: SqlDriver, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await driver.transaction(async (tx) => {
    // Serializes processes starting together against one database.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`stripe402 ledger migrations ${schema}`]);
    await tx.exec(`
      CREATE SCHEMA IF NOT EXISTS ${s};
      CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );
    `);
    const applied = new Set(
      (await tx.query(`SELECT version FROM ${s}.schema_migrations`, [])).map((row) => Number(row.version)),
    );
    for (const migration of migrations(s)) {
      if (applied.has(migration.version)) continue;
      await tx.exec(migration.sql);
      await tx.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
  });
}

function statements(schema: string) {
  const s = `"${schema}"`;
  const named = (name: string, text: string) => ({ name: `stripe402:${schema}:${name}`, text });
  return {
    spendBatch: named(
      'spend_batch',
      `SELECT ${s}.spend_batch($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[])::text AS results`,
    ),
    // The baseline without group commit: one conditional UPDATE per spend.
    spendOne: named(
      'spend_one',
      `WITH spent AS (
         UPDATE ${s}.balances SET balance = balance - $3::bigint
          WHERE client_id = $1::text AND currency = $2::text AND balance >= $3::bigint
         RETURNING balance
       ), entry AS (
         INSERT INTO ${s}.journal (client_id, currency, kind, delta, count, route)
         SELECT $1::text, $2::text, 'spend', -$3::bigint, 1, $4::text FROM spent
       )
       SELECT balance::text AS balance FROM spent`,
    ),
    creditTopUp: named(
      'credit_topup',
      `SELECT ${s}.credit_topup($1::text, $2::text, $3::text, $4::bigint, $5::bigint, $6::bigint, $7::text)::text AS result`,
    ),
    restore: named('restore', `SELECT ${s}.restore($1::text, $2::text, $3::bigint, $4::text, $5::text)::text AS balance`),
    balance: named(
      'balance',
      `SELECT balance::text AS balance FROM ${s}.balances WHERE client_id = $1::text AND currency = $2::text`,
    ),
    isCredited: named(
      'is_credited',
      `SELECT 1 AS credited FROM ${s}.journal WHERE payment_intent_id = $1::text AND kind = 'topup'`,
    ),
    recordTopUp: named(
      'record_topup',
      `INSERT INTO ${s}.started_topups (payment_intent_id, client_id, currency, units)
       VALUES ($1::text, $2::text, $3::text, $4::bigint) ON CONFLICT (payment_intent_id) DO NOTHING`,
    ),
    // The record, or else the credit: a top-up credited before it was ever recorded (it succeeded at once) is in the journal only.
    startedTopUp: named(
      'started_topup',
      `SELECT client_id, currency, units::text AS units FROM ${s}.started_topups WHERE payment_intent_id = $1::text
       UNION ALL
       SELECT client_id, currency, delta::text AS units FROM ${s}.journal WHERE payment_intent_id = $1::text AND kind = 'topup'
       LIMIT 1`,
    ),
    // The record written now, or else the earlier one (the CTE's snapshot hides the row it inserts, so at most one part answers).
    beginKeyedTopUp: named(
      'begin_keyed_topup',
      `WITH inserted AS (
         INSERT INTO ${s}.keyed_topups (client_id, idempotency_key, currency, units, stripe_idempotency_key)
         VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::text)
         ON CONFLICT (client_id, idempotency_key) DO NOTHING
         RETURNING currency, units, stripe_idempotency_key, payment_intent_id, recorded_at
       ), found AS (
         SELECT currency, units, stripe_idempotency_key, payment_intent_id, recorded_at, false AS created FROM ${s}.keyed_topups
          WHERE client_id = $1::text AND idempotency_key = $2::text
         UNION ALL
         SELECT currency, units, stripe_idempotency_key, payment_intent_id, recorded_at, true AS created FROM inserted
       )
       SELECT currency, units::text AS units, stripe_idempotency_key, payment_intent_id, recorded_at, created,
              EXISTS (SELECT 1 FROM ${s}.keyed_topups_since f
                       WHERE EXISTS (SELECT 1 FROM ${s}.journal j
                                      WHERE j.client_id = $1::text AND j.currency = $3::text AND j.created_at < f.at)) AS predates
         FROM found LIMIT 1`,
    ),
    keyedTopUpCharged: named(
      'keyed_topup_charged',
      `UPDATE ${s}.keyed_topups SET payment_intent_id = $3::text
        WHERE client_id = $1::text AND idempotency_key = $2::text AND payment_intent_id IS NULL`,
    ),
    customerOf: named('customer_of', `SELECT customer_id FROM ${s}.customers WHERE client_id = $1::text`),
    recordCustomer: named(
      'record_customer',
      `INSERT INTO ${s}.customers (client_id, customer_id) VALUES ($1::text, $2::text) ON CONFLICT (client_id) DO NOTHING`,
    ),
    journal: named(
      'journal',
      `SELECT kind, delta::text AS delta, count, route, payment_intent_id, charged_minor::text AS charged_minor, created_at
         FROM ${s}.journal WHERE client_id = $1::text AND currency = $2::text ORDER BY id`,
    ),
    accounts: named(
      'accounts',
      `SELECT client_id, currency, balance::text AS balance FROM ${s}.balances ORDER BY client_id, currency`,
    ),
    acquireLock: named(
      'acquire_lock',
      `INSERT INTO ${s}.topup_locks AS l (client_id, currency, token, expires_at)
       VALUES ($1::text, $2::text, $3::text, clock_timestamp() + $4::double precision * interval '1 millisecond')
       ON CONFLICT (client_id, currency) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
        WHERE l.expires_at <= clock_timestamp()
       RETURNING token`,
    ),
    releaseLock: named(
      'release_lock',
      `DELETE FROM ${s}.topup_locks WHERE client_id = $1::text AND currency = $2::text AND token = $3::text`,
    ),
  };
}

/**
 * A string as a standard SQL literal: quotes doubled, nothing else special
 * when standard_conforming_strings is on, which openSqlLedger checks before
 * any literal is written. A NUL cannot be stored in text at all, so it is
 * refused here rather than by the database.
 */
function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('ledger text cannot contain NUL characters');
  return `'${value.replaceAll("'", "''")}'`;
}

/** Parses a PostgreSQL bigint[] in text form, `{1,-2,3}`. */
function parseBigintArray(text: unknown): number[] {
  if (typeof text !== 'string' || !text.startsWith('{') || !text.endsWith('}')) {
    throw new LedgerUnavailableError('the ledger returned an unexpected result');
  }
  const body = text.slice(1, -1);
  return body === '' ? [] : body.split(',').map(toUnits);
}

/** A total order on accounts that every process computes alike (code units, not a collation). */
function compareAccounts(a: Account, b: Account): number {
  if (a.clientId !== b.clientId) return a.clientId < b.clientId ? -1 : 1;
  return a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0;
}

/** Decodes a spend outcome: the balance after a success, or -(balance + 1) for a shortfall. */
function spendOutcome(encoded: number): SpendResult {
  return encoded >= 0 ? { ok: true, balance: encoded } : { ok: false, balance: -encoded - 1 };
}

class SqlLedger implements Ledger {
  readonly #driver: SqlDriver;
  readonly #sql: ReturnType<typeof statements>;
  /** The schema as a quoted identifier (checked against SCHEMA_NAME). */
  readonly #schemaName: string;
  readonly #groupCommit: GroupCommit | undefined;
  readonly #lockWaitMs: number | undefined;
  #closed = false;

  constructor(driver: SqlDriver, schema: string, options: LedgerOptions) {
    this.#driver = driver;
    this.#schemaName = `"${schema}"`;
    this.#sql = statements(schema);
    this.#lockWaitMs = options.lockWaitMs;
    this.#groupCommit =
      options.groupCommit === false
        ? undefined
        : new GroupCommit(
            (spends) => this.#applyBatch(spends),
            resolveMaxBatchSize(options.maxBatchSize),
            resolveMaxBatchesInFlight(options.maxBatchesInFlight),
          );
  }

  async #run(statement: { name: string; text: string }, values: unknown[]): Promise<Row[]> {
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    return this.#driver.query(statement.name, statement.text, values);
  }

  spend(request: SpendRequest): Promise<SpendResult> {
    // Not an async function: every paid request comes through here, and the
    // batch's own promise is the only one it needs.
    let spend: SpendRequest;
    try {
      spend = checkedSpend(request);
      // Refused alone here, since in the database it would fail the whole batch it joined.
      if (spend.clientId.includes('\0') || spend.route.includes('\0')) throw new TypeError('ledger text cannot contain NUL characters');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.reject(new LedgerUnavailableError('the ledger is closed'));
    if (this.#groupCommit !== undefined) return this.#groupCommit.submit(spend);
    return this.#spendOne(spend);
  }

  async #spendOne(spend: SpendRequest): Promise<SpendResult> {
    const [row] = await this.#run(this.#sql.spendOne, [spend.clientId, spend.currency, spend.amount, spend.route]);
    if (row !== undefined) return { ok: true, balance: toUnits(row.balance) };
    return { ok: false, balance: await this.balance(spend) };
  }

  async #applyBatch(spends: readonly SpendRequest[]): Promise<SpendResult[]> {
    // Accounts deduplicated and sorted: every process locks rows in this one
    // order, so batches touching the same accounts never deadlock.
    const accountIndex = new Map<string, number>();
    const accounts: Account[] = [];
    for (const spend of spends) {
      const key = `${spend.currency}:${spend.clientId}`;
      if (!accountIndex.has(key)) {
        accountIndex.set(key, 0);
        accounts.push(spend);
      }
    }
    accounts.sort(compareAccounts);
    const accountClients: string[] = [];
    const accountCurrencies: string[] = [];
    for (const account of accounts) {
      accountClients.push(account.clientId);
      accountCurrencies.push(account.currency);
      accountIndex.set(`${account.currency}:${account.clientId}`, accountClients.length); // 1-based, as SQL arrays are
    }
    const spendAccounts: number[] = [];
    const amounts: number[] = [];
    const routes: string[] = [];
    for (const spend of spends) {
      spendAccounts.push(accountIndex.get(`${spend.currency}:${spend.clientId}`)!);
      amounts.push(spend.amount);
      routes.push(spend.route);
    }
    let row: Row | undefined;
    if (this.#driver.inline !== undefined) {
      // Every value is a checked string or a safe integer, written as a literal (see sqlLiteral).
      [row] = await this.#driver.inline(
        `SELECT ${this.#schemaName}.spend_batch(ARRAY[${accountClients.map(sqlLiteral).join(',')}]::text[], ` +
          `ARRAY[${accountCurrencies.map(sqlLiteral).join(',')}]::text[], ARRAY[${spendAccounts.join(',')}]::integer[], ` +
          `ARRAY[${amounts.join(',')}]::bigint[], ARRAY[${routes.map(sqlLiteral).join(',')}]::text[])::text AS results`,
      );
    } else {
      [row] = await this.#driver.query(this.#sql.spendBatch.name, this.#sql.spendBatch.text, [
        accountClients,
        accountCurrencies,
        spendAccounts,
        amounts,
        routes,
      ]);
    }
    return parseBigintArray(row?.results).map(spendOutcome);
  }

  async creditTopUp(credit: TopUpCredit): Promise<TopUpResult> {
    assertAccount(credit);
    assertPaymentIntentId(credit.paymentIntentId);
    assertUnits('units', credit.units);
    assertNonNegativeInteger('chargedMinor', credit.chargedMinor);
    if (credit.spend !== undefined) {
      assertUnits('spend.amount', credit.spend.amount);
      assertRoute(credit.spend.route);
    }
    const [row] = await this.#run(this.#sql.creditTopUp, [
      credit.clientId,
      credit.currency,
      credit.paymentIntentId,
      credit.units,
      credit.chargedMinor,
      credit.spend?.amount ?? null,
      credit.spend?.route ?? null,
    ]);
    const [credited, spent, balance] = parseBigintArray(row?.result);
    return { credited: credited === 1, spent: spent === 1, balance: balance ?? 0 };
  }

  async restore(request: RestoreRequest): Promise<{ balance: number }> {
    assertAccount(request);
    assertUnits('amount', request.amount);
    assertRoute(request.route);
    assertRestoreId(request.restoreId);
    const [row] = await this.#run(this.#sql.restore, [request.clientId, request.currency, request.amount, request.route, request.restoreId]);
    return { balance: toUnits(row?.balance) };
  }

  async balance(account: Account): Promise<number> {
    assertAccount(account);
    const [row] = await this.#run(this.#sql.balance, [account.clientId, account.currency]);
    return row === undefined ? 0 : toUnits(row.balance);
  }

  async isCredited(paymentIntentId: string): Promise<boolean> {
    assertPaymentIntentId(paymentIntentId);
    return (await this.#run(this.#sql.isCredited, [paymentIntentId])).length > 0;
  }

  async recordTopUp(topUp: StartedTopUp): Promise<void> {
    assertAccount(topUp);
    assertPaymentIntentId(topUp.paymentIntentId);
    assertUnits('units', topUp.units);
    await this.#run(this.#sql.recordTopUp, [topUp.paymentIntentId, topUp.clientId, topUp.currency, topUp.units]);
  }

  async startedTopUp(paymentIntentId: string): Promise<StartedTopUp | null> {
    assertPaymentIntentId(paymentIntentId);
    const [row] = await this.#run(this.#sql.startedTopUp, [paymentIntentId]);
    if (row === undefined) return null;
    return { paymentIntentId, clientId: row.client_id as string, currency: row.currency as string, units: toUnits(row.units) };
  }

  async beginKeyedTopUp(topUp: KeyedTopUp): Promise<KeyedTopUpBegun> {
    assertKeyedTopUp(topUp);
    const values = [topUp.clientId, topUp.idempotencyKey, topUp.currency, topUp.units, topUp.stripeIdempotencyKey];
    let [row] = await this.#run(this.#sql.beginKeyedTopUp, values);
    // Nothing seen: a concurrent insert of the same key committed after this statement's snapshot. It is visible now.
    if (row === undefined) [row] = await this.#run(this.#sql.beginKeyedTopUp, values);
    if (row === undefined) throw new LedgerUnavailableError('the ledger returned an unexpected result');
    return {
      record: {
        clientId: topUp.clientId,
        idempotencyKey: topUp.idempotencyKey,
        currency: row.currency as string,
        units: toUnits(row.units),
        stripeIdempotencyKey: row.stripe_idempotency_key as string,
        paymentIntentId: (row.payment_intent_id as string | null) ?? null,
        recordedAt: new Date(row.recorded_at as string | Date),
      },
      created: row.created === true,
      predatesRecords: row.predates === true,
    };
  }

  async keyedTopUpCharged(account: Account, idempotencyKey: string, paymentIntentId: string): Promise<void> {
    assertAccount(account);
    assertPaymentIntentId(paymentIntentId);
    await this.#run(this.#sql.keyedTopUpCharged, [account.clientId, idempotencyKey, paymentIntentId]);
  }

  async customerOf(clientId: string): Promise<string | null> {
    const [row] = await this.#run(this.#sql.customerOf, [clientId]);
    return row === undefined ? null : (row.customer_id as string);
  }

  async recordCustomer(clientId: string, customerId: string): Promise<void> {
    assertCustomerId(customerId);
    await this.#run(this.#sql.recordCustomer, [clientId, customerId]);
  }

  async withTopUpLock<T>(account: Account, fn: () => Promise<T>, ttlMs = DEFAULT_TOPUP_LOCK_TTL_MS): Promise<T> {
    assertAccount(account);
    assertTtl(ttlMs);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    const { clientId, currency } = account;
    const shared: SharedLock | undefined = this.#driver.sharedAcrossProcesses
      ? {
          tryAcquire: async (token, ttl) => (await this.#run(this.#sql.acquireLock, [clientId, currency, token, ttl])).length > 0,
          release: async (token) => void (await this.#run(this.#sql.releaseLock, [clientId, currency, token])),
        }
      : undefined;
    return withLock(
      {
        local: this.#driver.locks,
        key: `${currency}:${clientId}`,
        ttlMs,
        waitMs: this.#lockWaitMs ?? Math.min(ttlMs + 1_000, MAX_TIMER_MS),
        ...(shared === undefined ? {} : { shared }),
      },
      fn,
    );
  }

  async journal(account: Account): Promise<JournalEntry[]> {
    assertAccount(account);
    const rows = await this.#run(this.#sql.journal, [account.clientId, account.currency]);
    return rows.map((row) => {
      const entry: JournalEntry = {
        clientId: account.clientId,
        currency: account.currency,
        kind: row.kind as JournalKind,
        delta: toUnits(row.delta),
        count: Number(row.count),
        createdAt: new Date(row.created_at as string | Date),
      };
      if (row.route !== null) entry.route = row.route as string;
      if (row.payment_intent_id !== null) entry.paymentIntentId = row.payment_intent_id as string;
      if (row.charged_minor !== null) entry.chargedMinor = toUnits(row.charged_minor);
      return entry;
    });
  }

  async accounts(): Promise<Array<Account & { balance: number }>> {
    const rows = await this.#run(this.#sql.accounts, []);
    return rows.map((row) => ({
      clientId: row.client_id as string,
      currency: row.currency as string,
      balance: toUnits(row.balance),
    }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#groupCommit?.drain();
    this.#closed = true;
    await this.#driver.close();
  }
}

/** Where a SQL ledger lives. */
export type SqlTarget =
  /**
   * A PGlite data directory, created if missing, or `memory` for an
   * in-memory database. `wasmTierUp: true` keeps V8's optimizing compiler
   * for all WebAssembly of the process (see compileWasmBaselineOnly).
   */
  | { pglite: string; wasmTierUp?: boolean }
  /** An open PGlite instance, shared (for example by two ledgers in one process) and not closed by the ledger. */
  | { pgliteInstance: PGliteInstance }
  /** A PostgreSQL connection string. */
  | { postgres: string };

export async function openSqlLedger(target: SqlTarget, options: LedgerOptions = {}): Promise<Ledger> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('schema must be a lower-case SQL identifier of at most 40 characters');
  resolveMaxBatchSize(options.maxBatchSize);
  resolveMaxBatchesInFlight(options.maxBatchesInFlight);
  if (options.lockWaitMs !== undefined) assertLockWait(options.lockWaitMs);

  let driver: SqlDriver;
  if ('postgres' in target) {
    const poolSize = options.poolSize ?? Math.min(8, Math.max(2, availableParallelism() * 2));
    if (!Number.isSafeInteger(poolSize) || poolSize < 1) throw new TypeError('poolSize must be a positive integer');
    const { default: pgModule } = await loadDriver(() => import('pg'), 'pg');
    driver = new PostgresDriver(pgModule.Pool, target.postgres, poolSize, options.connectTimeoutMs ?? 5_000);
  } else if ('pgliteInstance' in target) {
    driver = new PGliteDriver(target.pgliteInstance, false);
  } else {
    const inMemory = target.pglite === 'memory' || target.pglite === '';
    if (!inMemory) mkdirSync(target.pglite, { recursive: true });
    const { PGlite } = await loadDriver(() => import('@electric-sql/pglite'), '@electric-sql/pglite');
    let db: PGlite;
    try {
      // A new directory is created in a child process, whose initdb memory is then released (pglite-init.ts).
      if (!inMemory) await initPgliteDirectory(target.pglite);
      if (target.wasmTierUp !== true) compileWasmBaselineOnly();
      db = inMemory ? new PGlite(PGLITE_OPTIONS) : new PGlite(target.pglite, PGLITE_OPTIONS);
      await db.waitReady;
    } catch (error) {
      throw ledgerError(error);
    }
    driver = new PGliteDriver(db, true);
  }

  try {
    await migrate(driver, schema);
    if (driver instanceof PGliteDriver) {
      const [setting] = await driver.query('', 'SHOW standard_conforming_strings', []);
      if (setting?.standard_conforming_strings === 'on') driver.enableInline();
    }
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw ledgerError(error);
  }
  return new SqlLedger(driver, schema, options);
}

/** Loads an optional driver, or says which package to install. */
async function loadDriver<T>(load: () => Promise<T>, name: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error(`this ledger needs the ${name} package: npm install ${name}`, { cause: error });
    }
    throw error;
  }
}
