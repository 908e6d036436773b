/**
 * The Redis ledger, for many server processes sharing one Redis or one Redis
 * Cluster: the same code runs on both. Every step that changes money is one
 * Lua script, which Redis runs atomically, so a balance and its journal
 * entries change together (LEDG-2) and no check can be overtaken between
 * reading a balance and deducting from it (LEDG-1). Scripts are called with
 * EVALSHA and sent as EVAL where a node does not know them yet (a restart,
 * a replica just promoted, SCRIPT FLUSH).
 *
 * Keys, under a configurable prefix, laid out so that everything one money
 * step touches shares a Redis Cluster hash slot: the account's hash tag
 * `{<currency>:<clientId>}` (written TAG below) is in every key of it.
 * - `TAG:balance`: the balance, a decimal string;
 * - `TAG:journal`: a list of JSON entries, oldest first, whose deltas sum to
 *   the balance;
 * - `TAG:credits`: a hash of the PaymentIntents credited to this account
 *   (LEDG-4), written by the same script as the credit;
 * - `TAG:topup-lock`: the top-up lock, a random token set with NX and PX,
 *   deleted only by the holder of that token;
 * - `{pi:<id>}:owner`: the account a PaymentIntent was first claimed for,
 *   set once with NX before the credit, so a PaymentIntent credits one
 *   account, once, ever, though the credit record lives in the account's slot;
 * - `{pi:<id>}:started`: a top-up the server started and has not credited
 *   yet (awaiting card authentication), `{account, units}`, so a resume is
 *   checked without Stripe (SEC-9);
 * - `TAG:keyed-topup:<idempotencyKey>`: a hash, field `record` the
 *   keyed top-up (PROC-12) written with HSETNX before its Stripe call, field
 *   `pi` its PaymentIntent id once known; `customer:<clientId>`: the Stripe
 *   Customer of a client id; `keyed-topups-since`: when a ledger that had
 *   accounts started recording keyed top-ups ("0" for one that had none).
 *   Each command on them names one key, so no script crosses slots.
 *   The keyed top-up lives in its account's slot, so it is unique per
 *   account (client id and currency), not per client id as in SQL.
 *
 * Spends use group commit per node: spends queued in one turn of the event
 * loop are batched per primary (on a single Redis, one batch holds them all),
 * and a batch is cut by hash slot into spendBatch scripts, each applying its
 * spends in arrival order and appending one aggregated journal entry per
 * (account, route) (LEDG-3), all sent in one pipeline. A script never names
 * keys of two slots.
 *
 * Replication is asynchronous. A credit (and a restore) is acknowledged only
 * once `creditReplicas` replicas hold it (WAIT, default one on a cluster
 * with replicas), so a failover never loses a charged top-up that a client
 * was told about; spends wait only when `spendReplicas` asks them to, and
 * docs/ledgers.md says what a failover can lose without it. WAIT counts
 * replicas holding this connection's writes, so a credit found already made
 * (by another process) is written again before it is acknowledged.
 * A ledger written by the earlier layout (one `balances` hash, one
 * `credits` hash) is migrated when a server opens it.
 *
 * Numbers in Lua are doubles, exact up to 2^53-1, which is why no balance may
 * exceed that and why scripts format numbers with %d rather than tostring.
 * Scripts reply with numbers as strings: ioredis rounds integer replies near
 * 2^53 (9007199254740991 arrives as ...992).
 */

// ioredis (and its cluster-key-slot) is an optional peer dependency, loaded
// when a Redis ledger opens: a PGlite or PostgreSQL user has none installed.
import type calculateSlotFunction from 'cluster-key-slot';
import type { Cluster as ClusterClass, Redis as RedisClass } from 'ioredis';

/** A Redis Cluster node's address (what ioredis takes as a ClusterNode), typed here so the declarations need no ioredis. */
export interface ClusterNodeAddress {
  host: string;
  port: number;
}
type ClusterNode = ClusterNodeAddress;

type Cluster = ClusterClass;
type Redis = RedisClass;
let Cluster: typeof ClusterClass;
let Redis: typeof RedisClass;
let calculateSlot: typeof calculateSlotFunction;

async function loadDriver(): Promise<void> {
  if (Redis !== undefined) return;
  try {
    const ioredis = await import('ioredis');
    const slot = await import('cluster-key-slot');
    ({ Cluster, Redis } = ioredis);
    calculateSlot = (slot.default ?? slot) as typeof calculateSlotFunction;
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error('a Redis ledger needs the ioredis package: npm install ioredis', { cause: error });
  }
}
import { GroupCommit } from './group-commit.ts';
import { LocalLocks, withLock } from './locks.ts';
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
import { migrateSingleInstanceLayout } from './redis-migrate.ts';

export const DEFAULT_KEY_PREFIX = 'stripe402:ledger:';

/** How long a credit waits for its replicas before the ledger reports itself unavailable. */
export const DEFAULT_REPLICA_WAIT_MS = 2_000;

/** Reported by a script when a credit would push a balance past 2^53-1. */
const BALANCE_LIMIT_ERROR = 'STRIPE402_BALANCE_LIMIT';

/** How long a restore id is remembered: far past the engine's last retry of a restore. */
const RESTORE_MARKER_TTL_MS = 24 * 60 * 60 * 1000;

/** Shared Lua: the current time in ms, and a JSON journal entry with exact integers. */
const LUA_PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
local function entry(kind, delta, count, route, at, payment_intent, charged_minor)
  local json = '{"kind":"' .. kind .. '","delta":' .. string.format('%d', delta) ..
    ',"count":' .. string.format('%d', count) .. ',"at":' .. at
  if route then json = json .. ',"route":' .. cjson.encode(route) end
  if payment_intent then
    json = json .. ',"paymentIntentId":' .. cjson.encode(payment_intent) ..
      ',"chargedMinor":' .. string.format('%d', charged_minor)
  end
  return json .. '}'
end
`;

const SCRIPTS = {
  /*
   * KEYS: per account a, its balance (KEYS[2a-1]) and journal (KEYS[2a]);
   * on a cluster every one of them in one slot. ARGV: route count r, r
   * routes, then every spend packed into one string of
   * "account:amount:route," (1-based indexes and integer amounts, so the
   * packing is unambiguous): one argument instead of three per spend keeps
   * the command small to encode and to parse. Returns one string, per spend
   * the balance after it or -(balance + 1) when it fell short,
   * comma-separated: one bulk reply costs the client far less to decode
   * than an array of them.
   */
  spendBatch: `${LUA_PRELUDE}
local k = #KEYS / 2
local balance_keys = {}
for a = 1, k do balance_keys[a] = KEYS[2 * a - 1] end
local r = tonumber(ARGV[1])
local routes = {}
for t = 1, r do routes[t] = ARGV[1 + t] end
local stored = redis.call('MGET', unpack(balance_keys))
local balances = {}
for a = 1, k do balances[a] = stored[a] and tonumber(stored[a]) or false end
local results = {}
local totals = {}
local j = 0
for a_text, amount_text, route_text in string.gmatch(ARGV[2 + r], '(%d+):(%d+):(%d+),') do
  j = j + 1
  local a = tonumber(a_text)
  local amount = tonumber(amount_text)
  local balance = balances[a]
  if balance and balance >= amount then
    balance = balance - amount
    balances[a] = balance
    results[j] = string.format('%d', balance)
    local route = tonumber(route_text)
    local per_route = totals[a]
    if not per_route then per_route = {}; totals[a] = per_route end
    local total = per_route[route]
    if not total then total = { 0, 0 }; per_route[route] = total end
    total[1] = total[1] + 1
    total[2] = total[2] + amount
  else
    results[j] = string.format('%d', -(balance or 0) - 1)
  end
end
local at = now_ms()
local changed = {}
for a = 1, k do
  local per_route = totals[a]
  if per_route then
    changed[#changed + 1] = balance_keys[a]
    changed[#changed + 1] = string.format('%d', balances[a])
    local entries = {}
    for route, total in pairs(per_route) do
      entries[#entries + 1] = entry('spend', -total[2], total[1], routes[route], at)
    end
    redis.call('RPUSH', KEYS[2 * a], unpack(entries))
  end
end
if #changed > 0 then redis.call('MSET', unpack(changed)) end
return table.concat(results, ',')
`,

  /* The baseline without group commit. KEYS: balance, journal. ARGV: amount, route. */
  spendOne: `${LUA_PRELUDE}
local stored = redis.call('GET', KEYS[1])
local balance = stored and tonumber(stored) or false
local amount = tonumber(ARGV[1])
if not balance or balance < amount then return string.format('%d', -(balance or 0) - 1) end
balance = balance - amount
redis.call('SET', KEYS[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[2], entry('spend', -amount, 1, ARGV[2], now_ms()))
return string.format('%d', balance)
`,

  /*
   * KEYS: balance, credits, journal (one account, one slot). ARGV: the
   * account ("<currency>:<clientId>"), payment intent, units, charged minor,
   * spend amount ('' for none), route, max balance.
   * Returns {credited, spent, balance}.
   */
  creditTopUp: `${LUA_PRELUDE}
local stored = redis.call('GET', KEYS[1])
local balance = stored and tonumber(stored) or 0
local held = redis.call('HGET', KEYS[2], ARGV[2])
if held then
  -- Credited before, maybe by another connection: written again so that this connection's WAIT covers that credit.
  redis.call('HSET', KEYS[2], ARGV[2], held)
  return { '0', '0', string.format('%d', balance) }
end
local units = tonumber(ARGV[3])
if balance + units > tonumber(ARGV[7]) then return redis.error_reply('${BALANCE_LIMIT_ERROR}') end
balance = balance + units
local at = now_ms()
local charged = tonumber(ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], '{"account":' .. cjson.encode(ARGV[1]) .. ',"units":' ..
  string.format('%d', units) .. ',"chargedMinor":' .. string.format('%d', charged) .. ',"at":' .. at .. '}')
local entries = { entry('topup', units, 1, false, at, ARGV[2], charged) }
local spent = 0
if ARGV[5] ~= '' then
  local amount = tonumber(ARGV[5])
  if balance >= amount then
    balance = balance - amount
    spent = 1
    entries[2] = entry('spend', -amount, 1, ARGV[6], at)
  end
end
redis.call('SET', KEYS[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[3], unpack(entries))
return { '1', tostring(spent), string.format('%d', balance) }
`,

  /*
   * KEYS: balance, journal, the restore id's marker. ARGV: amount, route, max
   * balance, the marker's lifetime in ms. A marker already set means this
   * restore was applied: nothing changes, the balance is returned.
   */
  restore: `${LUA_PRELUDE}
local stored = redis.call('GET', KEYS[1])
local balance = (stored and tonumber(stored) or 0) + tonumber(ARGV[1])
if balance > tonumber(ARGV[3]) then return redis.error_reply('${BALANCE_LIMIT_ERROR}') end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4]) then
  -- Applied before, maybe by another connection: a write, so that this connection's WAIT covers that restore.
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  return stored or '0'
end
redis.call('SET', KEYS[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[2], entry('restore', tonumber(ARGV[1]), 1, ARGV[2], now_ms()))
return string.format('%d', balance)
`,

  /*
   * KEYS: a key that, once set, keeps its first value. ARGV: the value.
   * Returns the value held before, or nil when this call set it. A value
   * held already is written again: WAIT counts the replicas that have this
   * connection's writes, and the value may be another connection's write
   * that no replica holds yet.
   */
  setOnce: `
local held = redis.call('GET', KEYS[1])
if held then redis.call('SET', KEYS[1], held, 'KEEPTTL') return held end
redis.call('SET', KEYS[1], ARGV[1])
return false
`,

  /* The same for a hash field. KEYS: the hash. ARGV: the field, the value. */
  setFieldOnce: `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then redis.call('HSET', KEYS[1], ARGV[1], held) return held end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
`,

  /* KEYS: the lock. ARGV: the holder's token. Deletes the lock only if this holder still has it. */
  releaseLock: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

function ledgerError(error: unknown): Error {
  if (error instanceof LedgerUnavailableError || error instanceof TypeError) return error;
  if (error instanceof Error && error.message.includes(BALANCE_LIMIT_ERROR)) {
    return new RangeError(`a balance cannot exceed ${MAX_BALANCE} units`);
  }
  return new LedgerUnavailableError('the ledger is unavailable', { cause: error });
}

interface StoredEntry {
  kind: JournalKind;
  delta: number;
  count: number;
  at: number;
  route?: string;
  paymentIntentId?: string;
  chargedMinor?: number;
}

/** What every key of one account starts with: the prefix and the account's hash tag. */
export function accountKeyBase(prefix: string, account: Account): string {
  return `${prefix}{${account.currency}:${account.clientId}}:`;
}

/** Where one account's keys live: every name carries the account's hash tag. */
export interface AccountKeys {
  balance: string;
  journal: string;
  credits: string;
  lock: string;
}

/** The key layout under a prefix, shared by the ledger, its migration and the tests that read Redis directly. */
export function accountKeys(prefix: string, account: Account): AccountKeys {
  const base = accountKeyBase(prefix, account);
  return { balance: `${base}balance`, journal: `${base}journal`, credits: `${base}credits`, lock: `${base}topup-lock` };
}

export function paymentIntentOwnerKey(prefix: string, paymentIntentId: string): string {
  return `${prefix}{pi:${paymentIntentId}}:owner`;
}

/** The record of a top-up started and not yet credited (SEC-9), in the PaymentIntent's own slot. */
function startedTopUpKey(prefix: string, paymentIntentId: string): string {
  return `${prefix}{pi:${paymentIntentId}}:started`;
}

/** A glob for SCAN MATCH that matches `text` literally. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/**
 * The spends of one batch that share a hash slot, as spendBatch takes them:
 * accounts (as their balance and journal keys) and routes sent once each and
 * named by 1-based index, as Lua tables are, and the spends packed into one
 * string.
 */
class BatchPart {
  readonly keys: string[] = [];
  readonly #routes: string[] = [];
  readonly #accountIndex = new Map<string, number>();
  readonly #routeIndex = new Map<string, number>();
  /** Where each spend of this part sits in the whole batch. */
  readonly #positions: number[] = [];
  #packed = '';

  add(position: number, base: string, spend: SpendRequest): void {
    let account = this.#accountIndex.get(base);
    if (account === undefined) {
      this.keys.push(`${base}balance`, `${base}journal`);
      account = this.keys.length / 2;
      this.#accountIndex.set(base, account);
    }
    let route = this.#routeIndex.get(spend.route);
    if (route === undefined) {
      this.#routes.push(spend.route);
      route = this.#routes.length;
      this.#routeIndex.set(spend.route, route);
    }
    this.#packed += `${account}:${spend.amount}:${route},`;
    this.#positions.push(position);
  }

  args(): Array<string | number> {
    return [this.#routes.length, ...this.#routes, this.#packed];
  }

  /** Writes the script's reply, one balance per spend, into the batch's results. */
  settle(encoded: unknown, results: Array<SpendResult | Error>): void {
    const values = typeof encoded === 'string' ? encoded.split(',') : [];
    if (values.length !== this.#positions.length) return this.fail(new LedgerUnavailableError('the ledger returned an unexpected result'), results);
    for (let index = 0; index < values.length; index++) results[this.#positions[index]!] = spendOutcome(toUnits(values[index]));
  }

  fail(error: Error, results: Array<SpendResult | Error>): void {
    for (const position of this.#positions) results[position] = error;
  }
}

class RedisLedger implements Ledger {
  /** Commands go through this handle: a Redis, or a Cluster (same command API). */
  readonly #redis: Redis;
  readonly #cluster: Cluster | undefined;
  readonly #prefix: string;
  readonly #shas: Record<ScriptName, string>;
  readonly #options: LedgerOptions;
  /** Group commit per primary (its node key); one entry on a single Redis. */
  readonly #groupCommits = new Map<string, GroupCommit>();
  readonly #groupCommit: boolean;
  readonly #locks = new LocalLocks();
  readonly #lockWaitMs: number | undefined;
  readonly #creditReplicas: number;
  readonly #spendReplicas: number;
  readonly #replicaWaitMs: number;
  #closed = false;

  /** When this ledger began recording keyed top-ups (0: since its start); set once, read once at open (see markKeyedTopUpsSince). */
  readonly #keyedTopUpsSince: number;

  constructor(client: Redis | Cluster, prefix: string, shas: Record<ScriptName, string>, options: LedgerOptions, creditReplicas: number, keyedTopUpsSince: number) {
    this.#keyedTopUpsSince = keyedTopUpsSince;
    this.#cluster = client instanceof Cluster ? client : undefined;
    this.#redis = client as Redis;
    this.#prefix = prefix;
    this.#shas = shas;
    this.#options = options;
    this.#lockWaitMs = options.lockWaitMs;
    this.#groupCommit = options.groupCommit !== false;
    this.#creditReplicas = creditReplicas;
    this.#spendReplicas = options.spendReplicas ?? 0;
    this.#replicaWaitMs = options.replicaWaitMs ?? DEFAULT_REPLICA_WAIT_MS;
  }

  #keys(account: Account): AccountKeys {
    return accountKeys(this.#prefix, account);
  }

  #scriptArgs(name: ScriptName, keys: string[], args: Array<string | number>): Array<string | number> {
    return [this.#shas[name], keys.length, ...keys, ...args];
  }

  /**
   * Runs a script; where the node does not know it (NOSCRIPT: nothing ran),
   * sends its text once, which also caches it there. A script whose reply
   * was lost is never resent: it may have run.
   */
  async #script(name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      try {
        return await this.#redis.evalsha(this.#shas[name], keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.#redis.eval(SCRIPTS[name], keys.length, ...keys, ...args);
      }
    } catch (error) {
      throw ledgerError(error);
    }
  }

  /**
   * Runs a write and then WAIT on the same connection (so on the node that
   * owns the write's slot), and fails unless `replicas` replicas
   * acknowledged it in `replicaWaitMs`.
   */
  async #durably(replicas: number, write: (pipeline: ReturnType<Redis['pipeline']>) => void): Promise<unknown> {
    const pipeline = this.#redis.pipeline();
    write(pipeline);
    if (replicas > 0) pipeline.call('WAIT', replicas, this.#replicaWaitMs);
    let results: Array<[Error | null, unknown]>;
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (error) {
      throw ledgerError(error);
    }
    const [writeError, reply] = results[0] ?? [new Error('no reply')];
    if (writeError) throw writeError;
    if (replicas > 0) {
      const [waitError, acknowledged] = results[1] ?? [new Error('no reply to WAIT')];
      if (waitError || Number(acknowledged) < replicas) {
        // Applied on the primary but not yet on a replica: a failover could
        // lose it, so it is not acknowledged. A retry finds a credit there.
        throw new LedgerUnavailableError('the ledger is unavailable', {
          cause: waitError ?? new Error(`${String(acknowledged)} of ${replicas} replicas acknowledged the write in ${this.#replicaWaitMs} ms`),
        });
      }
    }
    return reply;
  }

  async #durableScript(replicas: number, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    if (replicas === 0) return this.#script(name, keys, args);
    try {
      try {
        return await this.#durably(replicas, (pipeline) => pipeline.evalsha(...(this.#scriptArgs(name, keys, args) as [string, number])));
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.#durably(replicas, (pipeline) => pipeline.eval(SCRIPTS[name], keys.length, ...keys, ...args));
      }
    } catch (error) {
      throw ledgerError(error);
    }
  }

  async #command<T>(run: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    try {
      return await run(this.#redis);
    } catch (error) {
      throw ledgerError(error);
    }
  }

  #commitFor(account: Account): GroupCommit {
    // One batch per node: on one Redis every spend of the turn; on a cluster
    // the spends bound for the primary that owns their slot now.
    const node = this.#cluster ? (this.#cluster.slots[calculateSlot(accountKeyBase(this.#prefix, account))]?.[0] ?? '') : '';
    let commit = this.#groupCommits.get(node);
    if (commit === undefined) {
      commit = new GroupCommit(
        (spends) => this.#applyBatch(spends),
        resolveMaxBatchSize(this.#options.maxBatchSize),
        resolveMaxBatchesInFlight(this.#options.maxBatchesInFlight),
      );
      this.#groupCommits.set(node, commit);
    }
    return commit;
  }

  spend(request: SpendRequest): Promise<SpendResult> {
    // Not an async function: every paid request comes through here, and the
    // batch's own promise is the only one it needs.
    let spend: SpendRequest;
    try {
      spend = checkedSpend(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.reject(new LedgerUnavailableError('the ledger is closed'));
    if (this.#groupCommit) return this.#commitFor(spend).submit(spend);
    return this.#spendOne(spend);
  }

  async #spendOne(spend: SpendRequest): Promise<SpendResult> {
    const keys = this.#keys(spend);
    const encoded = await this.#durableScript(this.#spendReplicas, 'spendOne', [keys.balance, keys.journal], [spend.amount, spend.route]);
    return spendOutcome(toUnits(encoded));
  }

  /**
   * One node's batch: its spends cut by hash slot (one part on a single
   * Redis), each part one spendBatch script, all parts in one pipeline, so
   * one write and one read per node whatever the number of slots. A part
   * that fails fails only its own spends.
   */
  async #applyBatch(spends: readonly SpendRequest[]): Promise<Array<SpendResult | Error>> {
    const parts = new Map<number, BatchPart>();
    for (let index = 0; index < spends.length; index++) {
      const spend = spends[index]!;
      const base = accountKeyBase(this.#prefix, spend);
      const slot = this.#cluster ? calculateSlot(base) : 0;
      let part = parts.get(slot);
      if (part === undefined) parts.set(slot, (part = new BatchPart()));
      part.add(index, base, spend);
    }
    const results = new Array<SpendResult | Error>(spends.length);
    if (parts.size === 1) {
      const [part] = parts.values();
      part!.settle(await this.#durableScript(this.#spendReplicas, 'spendBatch', part!.keys, part!.args()), results);
      return results;
    }
    const ordered = [...parts.values()];
    const pipeline = this.#redis.pipeline();
    for (const part of ordered) pipeline.evalsha(this.#shas.spendBatch, part.keys.length, ...part.keys, ...part.args());
    if (this.#spendReplicas > 0) pipeline.call('WAIT', this.#spendReplicas, this.#replicaWaitMs);
    let replies: Array<[Error | null, unknown]>;
    try {
      replies = (await pipeline.exec()) ?? [];
    } catch (error) {
      throw ledgerError(error);
    }
    if (this.#spendReplicas > 0) {
      const [waitError, acknowledged] = replies[ordered.length] ?? [new Error('no reply to WAIT')];
      if (waitError || Number(acknowledged) < this.#spendReplicas) {
        throw new LedgerUnavailableError('the ledger is unavailable', {
          cause: waitError ?? new Error(`${String(acknowledged)} of ${this.#spendReplicas} replicas acknowledged the spends in ${this.#replicaWaitMs} ms`),
        });
      }
    }
    await Promise.all(
      ordered.map(async (part, index) => {
        const [error, reply] = replies[index] ?? [new Error('no reply')];
        if (error === null) return part.settle(reply, results);
        // A node that does not know the script ran nothing: send it its text.
        if (error.message.startsWith('NOSCRIPT')) {
          try {
            return part.settle(await this.#durableScript(this.#spendReplicas, 'spendBatch', part.keys, part.args()), results);
          } catch (retryError) {
            return part.fail(ledgerError(retryError), results);
          }
        }
        part.fail(ledgerError(error), results);
      }),
    );
    return results;
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
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    const account = `${credit.currency}:${credit.clientId}`;
    const keys = this.#keys(credit);
    // The PaymentIntent's own slot names the one account it may ever credit;
    // the credit itself is recorded in the account's slot, so a repeated
    // claim by the same account (a retry after a lost reply) goes on to a
    // credit that the account's record keeps to once.
    const owner = await this.#durableScript(this.#creditReplicas, 'setOnce', [paymentIntentOwnerKey(this.#prefix, credit.paymentIntentId)], [account]);
    if (owner !== null && owner !== account) {
      return { credited: false, spent: false, balance: await this.balance(credit) };
    }
    const reply = await this.#durableScript(
      this.#creditReplicas,
      'creditTopUp',
      [keys.balance, keys.credits, keys.journal],
      [account, credit.paymentIntentId, credit.units, credit.chargedMinor, credit.spend?.amount ?? '', credit.spend?.route ?? '', MAX_BALANCE],
    );
    const [credited, spent, balance] = (reply as unknown[]).map(toUnits);
    return { credited: credited === 1, spent: spent === 1, balance: balance ?? 0 };
  }

  async restore(request: RestoreRequest): Promise<{ balance: number }> {
    assertAccount(request);
    assertUnits('amount', request.amount);
    assertRoute(request.route);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    assertRestoreId(request.restoreId);
    const keys = this.#keys(request);
    const marker = `${accountKeyBase(this.#prefix, request)}restore:${request.restoreId}`;
    // A restore gives a client's units back: it waits like a credit, so a failover cannot take them again.
    const balance = await this.#durableScript(this.#creditReplicas, 'restore', [keys.balance, keys.journal, marker], [request.amount, request.route, MAX_BALANCE, RESTORE_MARKER_TTL_MS]);
    return { balance: toUnits(balance) };
  }

  async balance(account: Account): Promise<number> {
    assertAccount(account);
    const stored = await this.#command((redis) => redis.get(this.#keys(account).balance));
    return stored === null ? 0 : toUnits(stored);
  }

  async isCredited(paymentIntentId: string): Promise<boolean> {
    assertPaymentIntentId(paymentIntentId);
    const owner = await this.#command((redis) => redis.get(paymentIntentOwnerKey(this.#prefix, paymentIntentId)));
    if (owner === null) return false;
    const account = { currency: owner.slice(0, 3), clientId: owner.slice(4) };
    return (await this.#command((redis) => redis.hexists(this.#keys(account).credits, paymentIntentId))) === 1;
  }

  async recordTopUp(topUp: StartedTopUp): Promise<void> {
    assertAccount(topUp);
    assertPaymentIntentId(topUp.paymentIntentId);
    assertUnits('units', topUp.units);
    const record = JSON.stringify({ account: `${topUp.currency}:${topUp.clientId}`, units: topUp.units });
    // A key of its own slot: one command, valid on a cluster.
    await this.#command((redis) => redis.set(startedTopUpKey(this.#prefix, topUp.paymentIntentId), record, 'NX'));
  }

  async startedTopUp(paymentIntentId: string): Promise<StartedTopUp | null> {
    assertPaymentIntentId(paymentIntentId);
    // The record, or else the credit: a top-up that succeeded at once is in its account's `credits` only. Both hold {account, units}.
    let stored = await this.#command((redis) => redis.get(startedTopUpKey(this.#prefix, paymentIntentId)));
    if (stored === null) {
      const owner = await this.#command((redis) => redis.get(paymentIntentOwnerKey(this.#prefix, paymentIntentId)));
      if (owner === null) return null;
      const account = { currency: owner.slice(0, 3), clientId: owner.slice(4) };
      stored = await this.#command((redis) => redis.hget(this.#keys(account).credits, paymentIntentId));
      if (stored === null) return null;
    }
    const { account, units } = JSON.parse(stored) as { account: string; units: number };
    // An account is "<currency>:<clientId>", currencies being three letters (UNIT-5).
    return { paymentIntentId, currency: account.slice(0, 3), clientId: account.slice(4), units };
  }

  /** In the account's slot, so a keyed top-up touches no shard but its account's (a failover elsewhere does not stop it). */
  #keyedTopUpKey(account: Account, idempotencyKey: string): string {
    return `${accountKeyBase(this.#prefix, account)}keyed-topup:${idempotencyKey}`;
  }

  async beginKeyedTopUp(topUp: KeyedTopUp): Promise<KeyedTopUpBegun> {
    assertKeyedTopUp(topUp);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    const key = this.#keyedTopUpKey(topUp, topUp.idempotencyKey);
    const record = JSON.stringify({ currency: topUp.currency, units: topUp.units, stripeKey: topUp.stripeIdempotencyKey, at: Date.now() });
    // One key, one pipeline: HSETNX keeps an earlier record, HGETALL reads whichever holds. The account's oldest
    // journal entry is read only on a ledger upgraded over accounts (its own slot).
    const sinceMs = this.#keyedTopUpsSince;
    const [replies, oldest] = await this.#command((redis) =>
      Promise.all([
        redis.pipeline().hsetnx(key, 'record', record).hgetall(key).exec(),
        sinceMs > 0 ? redis.lindex(this.#keys(topUp).journal, 0) : Promise.resolve(null),
      ]),
    );
    const failed = replies?.find(([error]) => error)?.[0];
    if (!replies || failed) throw ledgerError(failed ?? new Error('the pipeline returned nothing'));
    const created = replies[0]![1] as number;
    const stored = replies[1]![1] as Record<string, string>;
    const held = JSON.parse(stored.record!) as { currency: string; units: number; stripeKey: string; at: number };
    const predatesRecords = sinceMs > 0 && oldest !== null && (JSON.parse(oldest) as StoredEntry).at < sinceMs;
    return {
      record: {
        clientId: topUp.clientId,
        idempotencyKey: topUp.idempotencyKey,
        currency: held.currency,
        units: held.units,
        stripeIdempotencyKey: held.stripeKey,
        paymentIntentId: stored.pi ?? null,
        recordedAt: new Date(held.at),
      },
      // A PaymentIntent without its record (the record lost in a failover, the PaymentIntent kept) is a key used before.
      created: created === 1 && stored.pi === undefined,
      predatesRecords,
    };
  }

  async keyedTopUpCharged(account: Account, idempotencyKey: string, paymentIntentId: string): Promise<void> {
    assertAccount(account);
    assertPaymentIntentId(paymentIntentId);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    // Acknowledged like a credit, once replicas hold it: a failover must not forget which PaymentIntent a key charged.
    await this.#durableScript(this.#creditReplicas, 'setFieldOnce', [this.#keyedTopUpKey(account, idempotencyKey)], ['pi', paymentIntentId]);
  }

  async customerOf(clientId: string): Promise<string | null> {
    return this.#command((redis) => redis.get(`${this.#prefix}customer:${clientId}`));
  }

  async recordCustomer(clientId: string, customerId: string): Promise<void> {
    assertCustomerId(customerId);
    await this.#command((redis) => redis.set(`${this.#prefix}customer:${clientId}`, customerId, 'NX'));
  }

  async withTopUpLock<T>(account: Account, fn: () => Promise<T>, ttlMs = DEFAULT_TOPUP_LOCK_TTL_MS): Promise<T> {
    assertAccount(account);
    assertTtl(ttlMs);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    const lockKey = this.#keys(account).lock;
    return withLock(
      {
        local: this.#locks,
        key: lockKey,
        ttlMs,
        waitMs: this.#lockWaitMs ?? Math.min(ttlMs + 1_000, MAX_TIMER_MS),
        shared: {
          tryAcquire: async (token, ttl) =>
            (await this.#command((redis) => redis.set(lockKey, token, 'PX', ttl, 'NX'))) === 'OK',
          release: async (token) => void (await this.#script('releaseLock', [lockKey], [token])),
        },
      },
      fn,
    );
  }

  async journal(account: Account): Promise<JournalEntry[]> {
    assertAccount(account);
    const stored = await this.#command((redis) => redis.lrange(this.#keys(account).journal, 0, -1));
    return stored.map((text) => {
      const parsed = JSON.parse(text) as StoredEntry;
      const entry: JournalEntry = {
        clientId: account.clientId,
        currency: account.currency,
        kind: parsed.kind,
        delta: parsed.delta,
        count: parsed.count,
        createdAt: new Date(parsed.at),
      };
      if (parsed.route !== undefined) entry.route = parsed.route;
      if (parsed.paymentIntentId !== undefined) entry.paymentIntentId = parsed.paymentIntentId;
      if (parsed.chargedMinor !== undefined) entry.chargedMinor = parsed.chargedMinor;
      return entry;
    });
  }

  async accounts(): Promise<Array<Account & { balance: number }>> {
    // Every primary's keys (one node on a single Redis), then their balances.
    const nodes = this.#cluster ? this.#cluster.nodes('master') : [this.#redis];
    const start = this.#prefix.length + 1;
    const pattern = `${globEscape(this.#prefix)}{*}:balance`;
    const found: Array<Account & { key: string }> = [];
    await this.#command(async () => {
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          for (const key of keys) {
            const tag = key.slice(start, key.length - '}:balance'.length);
            found.push({ key, currency: tag.slice(0, 3), clientId: tag.slice(4) });
          }
          cursor = next;
        } while (cursor !== '0');
      }
    });
    const balances = await this.#command((redis) => Promise.all(found.map(({ key }) => redis.get(key))));
    return found
      .map(({ currency, clientId }, index) => ({ currency, clientId, balance: toUnits(balances[index] ?? 0) }))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.currency < b.currency ? -1 : 1));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#groupCommits.values()].map((commit) => commit.drain()));
    this.#closed = true;
    await closeClient(this.#redis);
  }
}

/**
 * Once per ledger, before anything is written: a ledger that already has
 * accounts (in either layout) says since when it records keyed top-ups, so
 * that its older accounts still ask Stripe about keys it never saw (PROC-12).
 */
async function markKeyedTopUpsSince(client: Redis | Cluster, prefix: string): Promise<number> {
  const marker = `${prefix}keyed-topups-since`;
  const marked = await client.get(marker);
  if (marked !== null) return Number(marked);
  let hadAccounts = (await client.exists(`${prefix}balances`)) === 1;
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  for (const node of nodes) {
    let cursor = '0';
    while (!hadAccounts) {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${globEscape(prefix)}{*}:balance`, 'COUNT', 1000);
      hadAccounts = keys.length > 0;
      cursor = next;
      if (cursor === '0') break;
    }
  }
  await client.set(marker, hadAccounts ? String(Date.now()) : '0', 'NX');
  // Whoever set it first wins; read back what holds.
  return Number((await client.get(marker)) ?? '0');
}

function spendOutcome(encoded: number): SpendResult {
  return encoded >= 0 ? { ok: true, balance: encoded } : { ok: false, balance: -encoded - 1 };
}

async function closeClient(redis: Redis | Cluster): Promise<void> {
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // Fall through: the connection is gone already.
    }
  }
  redis.disconnect();
}

/**
 * The nodes and credentials of a `redis-cluster://[user:password@]host:port,host:port,...`
 * URL: any reachable node is enough to discover the rest.
 */
export function parseClusterUrl(url: string): { nodes: ClusterNode[]; username?: string; password?: string } {
  const match = /^redis-cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/.exec(url);
  const nodes = (match?.[3] ?? '').split(',').map((address) => {
    const parsed = /^([^:,]+):(\d{1,5})$/.exec(address.trim());
    return parsed ? { host: parsed[1]!, port: Number(parsed[2]) } : undefined;
  });
  if (!match || nodes.length === 0 || nodes.some((node) => node === undefined || node.port < 1 || node.port > 65_535)) {
    throw new TypeError('a Redis Cluster ledger URL is redis-cluster://host:port[,host:port...]');
  }
  return {
    nodes: nodes as ClusterNode[],
    ...(match[1] ? { username: decodeURIComponent(match[1]) } : {}),
    ...(match[2] ? { password: decodeURIComponent(match[2]) } : {}),
  };
}

function connect(url: string, options: LedgerOptions): Redis | Cluster {
  const connectTimeout = options.connectTimeoutMs ?? 5_000;
  if (!url.startsWith('redis-cluster://')) {
    return new Redis(url, {
      lazyConnect: true,
      connectTimeout,
      // While Redis is down a command waits for one reconnection, then fails:
      // the server answers 503 quickly instead of holding requests.
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
      // A script whose reply was lost may have run: resending it could spend twice.
      autoResendUnfulfilledCommands: false,
    });
  }
  const { nodes, username, password } = parseClusterUrl(url);
  return new Cluster(nodes, {
    lazyConnect: true,
    // Off: the ledger pipelines per node itself (group commit), and on the
    // few other commands auto-pipelining costs more CPU than it saves.
    enableAutoPipelining: false,
    // A command whose connection closed may have run: never resend it (a
    // spend could apply twice). Redirections (MOVED, ASK), TRYAGAIN and
    // CLUSTERDOWN mean it did not run, and ioredis follows or retries those.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: (attempt) => (attempt > 20 ? null : Math.min(100 * attempt, 2_000)),
    slotsRefreshTimeout: connectTimeout,
    redisOptions: {
      connectTimeout,
      maxRetriesPerRequest: 1,
      autoResendUnfulfilledCommands: false,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
    },
  });
}

export async function openRedisLedger(url: string, options: LedgerOptions = {}): Promise<Ledger> {
  await loadDriver();
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof prefix !== 'string' || prefix.length > 200 || /[{}]/.test(prefix)) {
    // A brace in the prefix would move the accounts' hash tags into it.
    throw new TypeError('keyPrefix must be a string of at most 200 characters without { or }');
  }
  resolveMaxBatchSize(options.maxBatchSize);
  resolveMaxBatchesInFlight(options.maxBatchesInFlight);
  if (options.lockWaitMs !== undefined) assertLockWait(options.lockWaitMs);
  if (options.creditReplicas !== undefined && (!Number.isSafeInteger(options.creditReplicas) || options.creditReplicas < 0 || options.creditReplicas > 16)) {
    throw new TypeError('creditReplicas must be an integer from 0 to 16');
  }
  if (options.spendReplicas !== undefined && (!Number.isSafeInteger(options.spendReplicas) || options.spendReplicas < 0 || options.spendReplicas > 16)) {
    throw new TypeError('spendReplicas must be an integer from 0 to 16');
  }
  if (options.replicaWaitMs !== undefined && (!Number.isSafeInteger(options.replicaWaitMs) || options.replicaWaitMs < 1 || options.replicaWaitMs > 60_000)) {
    throw new TypeError('replicaWaitMs must be an integer from 1 to 60000');
  }

  const client = connect(url, options);
  // Connection errors surface as rejected commands; without a listener
  // ioredis would also print every one of them.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const shas = {} as Record<ScriptName, string>;
    // Every primary learns the scripts now; one that forgets them (a
    // restart, a replica promoted) is sent their text on first use.
    const primaries = client instanceof Cluster ? client.nodes('master') : [client];
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      for (const node of primaries) shas[name] = (await node.script('LOAD', SCRIPTS[name])) as string;
    }
    let creditReplicas = options.creditReplicas;
    if (creditReplicas === undefined) creditReplicas = client instanceof Cluster && client.nodes('slave').length > 0 ? 1 : 0;
    const keyedTopUpsSince = await markKeyedTopUpsSince(client, prefix);
    if (!(client instanceof Cluster)) await migrateSingleInstanceLayout(client, prefix);
    return new RedisLedger(client, prefix, shas, options, creditReplicas, keyedTopUpsSince);
  } catch (error) {
    client.disconnect();
    throw ledgerError(error);
  }
}
