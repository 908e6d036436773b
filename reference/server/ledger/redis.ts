/**
 * The Redis ledger, for many server processes sharing one Redis. Every step
 * that changes money is one Lua script, which Redis runs atomically, so a
 * balance and its journal entries change together (LEDG-2) and no check can
 * be overtaken between reading a balance and deducting from it (LEDG-1).
 * Scripts are loaded once and called with EVALSHA, reloaded if Redis forgot
 * them (a restart, SCRIPT FLUSH).
 *
 * Keys, under a configurable prefix:
 * - `balances`: a hash, field `<currency>:<clientId>`, value the balance;
 * - `journal:<currency>:<clientId>`: a list of JSON entries, oldest first,
 *   whose deltas sum to the balance;
 * - `credits`: a hash of credited PaymentIntents, so each credits once (LEDG-4);
 * - `started`: a hash of top-ups started and not yet credited (awaiting card
 *   authentication), by PaymentIntent id, so a resume is checked without
 *   Stripe (SEC-9);
 * - `topup-lock:<currency>:<clientId>`: the top-up lock, a random token set
 *   with NX and PX, deleted only by the holder of that token;
 * - `keyed-topup:<clientId>:<idempotencyKey>`: a hash, field `record` the
 *   keyed top-up (PROC-12) written with HSETNX before its Stripe call, field
 *   `pi` its PaymentIntent id once known; `customer:<clientId>`: the Stripe
 *   Customer of a client id; `keyed-topups-since`: when a ledger that had
 *   balances started recording keyed top-ups ("0" for one that had none).
 *   Each command on them names one key, so they need no hash tag on a cluster.
 *
 * Spends use group commit: one EVALSHA applies a whole batch in arrival order
 * and appends one aggregated journal entry per (account, route) (LEDG-3).
 * Numbers in Lua are doubles, exact up to 2^53-1, which is why no balance may
 * exceed that and why scripts format numbers with %d rather than tostring.
 * Scripts reply with numbers as strings: ioredis rounds integer replies near
 * 2^53 (9007199254740991 arrives as ...992).
 */

import { Redis } from 'ioredis';
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

export const DEFAULT_KEY_PREFIX = 'stripe402:ledger:';

/** Reported by a script when a credit would push a balance past 2^53-1. */
const BALANCE_LIMIT_ERROR = 'STRIPE402_BALANCE_LIMIT';

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
   * KEYS[1] balances; KEYS[1 + a] the journal of account a, whose name ends
   * with the account's balance field after ARGV[1] characters.
   * ARGV: the length of the journal key prefix, route count r, r routes,
   * then every spend packed into one string of "account:amount:route,"
   * (1-based indexes and integer amounts, so the packing is unambiguous):
   * one argument instead of three per spend keeps the command small to
   * encode and to parse. Returns one string, per spend the balance after it
   * or -(balance + 1) when it fell short, comma-separated: one bulk reply
   * costs the client far less to decode than an array of them.
   */
  spendBatch: `${LUA_PRELUDE}
local k = #KEYS - 1
local skip = tonumber(ARGV[1]) + 1
local fields = {}
for a = 1, k do fields[a] = string.sub(KEYS[1 + a], skip) end
local r = tonumber(ARGV[2])
local routes = {}
for t = 1, r do routes[t] = ARGV[2 + t] end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local balances = {}
for a = 1, k do balances[a] = stored[a] and tonumber(stored[a]) or false end
local results = {}
local totals = {}
local j = 0
for a_text, amount_text, route_text in string.gmatch(ARGV[3 + r], '(%d+):(%d+):(%d+),') do
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
    changed[#changed + 1] = fields[a]
    changed[#changed + 1] = string.format('%d', balances[a])
    local entries = {}
    for route, total in pairs(per_route) do
      entries[#entries + 1] = entry('spend', -total[2], total[1], routes[route], at)
    end
    redis.call('RPUSH', KEYS[1 + a], unpack(entries))
  end
end
if #changed > 0 then redis.call('HSET', KEYS[1], unpack(changed)) end
return table.concat(results, ',')
`,

  /* The baseline without group commit. KEYS: balances, journal. ARGV: field, amount, route. */
  spendOne: `${LUA_PRELUDE}
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local balance = stored and tonumber(stored) or false
local amount = tonumber(ARGV[2])
if not balance or balance < amount then return string.format('%d', -(balance or 0) - 1) end
balance = balance - amount
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[2], entry('spend', -amount, 1, ARGV[3], now_ms()))
return string.format('%d', balance)
`,

  /*
   * KEYS: balances, credits, journal. ARGV: field, payment intent, units,
   * charged minor, spend amount ('' for none), route, max balance.
   * Returns {credited, spent, balance}.
   */
  creditTopUp: `${LUA_PRELUDE}
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local balance = stored and tonumber(stored) or 0
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return { '0', '0', string.format('%d', balance) } end
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
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[3], unpack(entries))
return { '1', tostring(spent), string.format('%d', balance) }
`,

  /* KEYS: balances, journal. ARGV: field, amount, route, max balance. */
  restore: `${LUA_PRELUDE}
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local balance = (stored and tonumber(stored) or 0) + tonumber(ARGV[2])
if balance > tonumber(ARGV[4]) then return redis.error_reply('${BALANCE_LIMIT_ERROR}') end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', balance))
redis.call('RPUSH', KEYS[2], entry('restore', tonumber(ARGV[2]), 1, ARGV[3], now_ms()))
return string.format('%d', balance)
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

class RedisLedger implements Ledger {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #shas: Record<ScriptName, string>;
  readonly #groupCommit: GroupCommit | undefined;
  readonly #locks = new LocalLocks();
  readonly #lockWaitMs: number | undefined;
  readonly #balancesKey: string;
  /** Journal keys are this prefix and the account's balance field, which the batch script relies on. */
  readonly #journalPrefix: string;
  /** Its length in bytes, as Lua's string.sub counts. */
  readonly #journalPrefixBytes: number;
  #closed = false;

  constructor(redis: Redis, prefix: string, shas: Record<ScriptName, string>, options: LedgerOptions) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#balancesKey = `${prefix}balances`;
    this.#journalPrefix = `${prefix}journal:`;
    this.#journalPrefixBytes = Buffer.byteLength(this.#journalPrefix, 'utf8');
    this.#shas = shas;
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

  #journalKey(account: Account): string {
    return `${this.#journalPrefix}${account.currency}:${account.clientId}`;
  }

  async #script(name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      try {
        return await this.#redis.evalsha(this.#shas[name], keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        this.#shas[name] = (await this.#redis.script('LOAD', SCRIPTS[name])) as string;
        return await this.#redis.evalsha(this.#shas[name], keys.length, ...keys, ...args);
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
    if (this.#groupCommit !== undefined) return this.#groupCommit.submit(spend);
    return this.#spendOne(spend);
  }

  async #spendOne(spend: SpendRequest): Promise<SpendResult> {
    const encoded = await this.#script(
      'spendOne',
      [this.#balancesKey, this.#journalKey(spend)],
      [`${spend.currency}:${spend.clientId}`, spend.amount, spend.route],
    );
    return spendOutcome(toUnits(encoded));
  }

  async #applyBatch(spends: readonly SpendRequest[]): Promise<SpendResult[]> {
    // Accounts (as their journal keys) and routes are sent once each and
    // named by 1-based index, as Lua tables are.
    const accountIndex = new Map<string, number>();
    const routeIndex = new Map<string, number>();
    const keys = [this.#balancesKey];
    const routes: string[] = [];
    let packed = '';
    for (const spend of spends) {
      const field = `${spend.currency}:${spend.clientId}`;
      let account = accountIndex.get(field);
      if (account === undefined) {
        keys.push(this.#journalPrefix + field);
        account = keys.length - 1;
        accountIndex.set(field, account);
      }
      let route = routeIndex.get(spend.route);
      if (route === undefined) {
        routes.push(spend.route);
        route = routes.length;
        routeIndex.set(spend.route, route);
      }
      packed += `${account}:${spend.amount}:${route},`;
    }
    const encoded = await this.#script('spendBatch', keys, [this.#journalPrefixBytes, routes.length, ...routes, packed]);
    if (typeof encoded !== 'string') throw new LedgerUnavailableError('the ledger returned an unexpected result');
    const values = encoded.split(',');
    if (values.length !== spends.length) throw new LedgerUnavailableError('the ledger returned an unexpected result');
    const results = new Array<SpendResult>(values.length);
    for (let index = 0; index < values.length; index++) results[index] = spendOutcome(toUnits(values[index]));
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
    const reply = await this.#script(
      'creditTopUp',
      [this.#balancesKey, `${this.#prefix}credits`, this.#journalKey(credit)],
      [
        `${credit.currency}:${credit.clientId}`,
        credit.paymentIntentId,
        credit.units,
        credit.chargedMinor,
        credit.spend?.amount ?? '',
        credit.spend?.route ?? '',
        MAX_BALANCE,
      ],
    );
    const [credited, spent, balance] = (reply as unknown[]).map(toUnits);
    return { credited: credited === 1, spent: spent === 1, balance: balance ?? 0 };
  }

  async restore(request: RestoreRequest): Promise<{ balance: number }> {
    assertAccount(request);
    assertUnits('amount', request.amount);
    assertRoute(request.route);
    if (this.#closed) throw new LedgerUnavailableError('the ledger is closed');
    const balance = await this.#script(
      'restore',
      [this.#balancesKey, this.#journalKey(request)],
      [`${request.currency}:${request.clientId}`, request.amount, request.route, MAX_BALANCE],
    );
    return { balance: toUnits(balance) };
  }

  async balance(account: Account): Promise<number> {
    assertAccount(account);
    const stored = await this.#command((redis) => redis.hget(this.#balancesKey, `${account.currency}:${account.clientId}`));
    return stored === null ? 0 : toUnits(stored);
  }

  async isCredited(paymentIntentId: string): Promise<boolean> {
    assertPaymentIntentId(paymentIntentId);
    return (await this.#command((redis) => redis.hexists(`${this.#prefix}credits`, paymentIntentId))) === 1;
  }

  async recordTopUp(topUp: StartedTopUp): Promise<void> {
    assertAccount(topUp);
    assertPaymentIntentId(topUp.paymentIntentId);
    assertUnits('units', topUp.units);
    const record = JSON.stringify({ account: `${topUp.currency}:${topUp.clientId}`, units: topUp.units });
    await this.#command((redis) => redis.hsetnx(`${this.#prefix}started`, topUp.paymentIntentId, record));
  }

  async startedTopUp(paymentIntentId: string): Promise<StartedTopUp | null> {
    assertPaymentIntentId(paymentIntentId);
    // The record, or else the credit: a top-up that succeeded at once is in `credits` only. Both hold {account, units}.
    const [started, credited] = await this.#command((redis) =>
      Promise.all([redis.hget(`${this.#prefix}started`, paymentIntentId), redis.hget(`${this.#prefix}credits`, paymentIntentId)]),
    );
    const stored = started ?? credited;
    if (stored === null) return null;
    const { account, units } = JSON.parse(stored) as { account: string; units: number };
    // A balance field is "<currency>:<clientId>", currencies being three letters (UNIT-5).
    return { paymentIntentId, currency: account.slice(0, 3), clientId: account.slice(4), units };
  }

  #keyedTopUpKey(clientId: string, idempotencyKey: string): string {
    return `${this.#prefix}keyed-topup:${clientId}:${idempotencyKey}`;
  }

  async beginKeyedTopUp(topUp: KeyedTopUp): Promise<KeyedTopUpBegun> {
    assertKeyedTopUp(topUp);
    const key = this.#keyedTopUpKey(topUp.clientId, topUp.idempotencyKey);
    const record = JSON.stringify({ currency: topUp.currency, units: topUp.units, stripeKey: topUp.stripeIdempotencyKey, at: Date.now() });
    // One key per command, pipelined: HSETNX keeps an earlier record, HGETALL reads whichever holds.
    const [[created, stored], since, oldest] = await this.#command((redis) =>
      Promise.all([
        redis.pipeline().hsetnx(key, 'record', record).hgetall(key).exec(),
        redis.get(`${this.#prefix}keyed-topups-since`),
        redis.lindex(this.#journalKey(topUp), 0),
      ]).then(([replies, sinceText, first]) => {
        if (!replies || replies.some(([error]) => error)) throw replies?.find(([error]) => error)?.[0] ?? new Error('pipeline failed');
        return [[replies[0]![1] as number, replies[1]![1] as Record<string, string>], sinceText, first] as const;
      }),
    );
    const held = JSON.parse(stored.record!) as { currency: string; units: number; stripeKey: string; at: number };
    const sinceMs = Number(since ?? '0');
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
      created: created === 1,
      predatesRecords,
    };
  }

  async keyedTopUpCharged(clientId: string, idempotencyKey: string, paymentIntentId: string): Promise<void> {
    assertPaymentIntentId(paymentIntentId);
    await this.#command((redis) => redis.hsetnx(this.#keyedTopUpKey(clientId, idempotencyKey), 'pi', paymentIntentId));
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
    const lockKey = `${this.#prefix}topup-lock:${account.currency}:${account.clientId}`;
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
    const stored = await this.#command((redis) => redis.lrange(this.#journalKey(account), 0, -1));
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
    const all = await this.#command((redis) => redis.hgetall(this.#balancesKey));
    return Object.entries(all)
      .map(([field, balance]) => ({ currency: field.slice(0, 3), clientId: field.slice(4), balance: toUnits(balance) }))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.currency < b.currency ? -1 : 1));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#groupCommit?.drain();
    this.#closed = true;
    await closeClient(this.#redis);
  }
}

function spendOutcome(encoded: number): SpendResult {
  return encoded >= 0 ? { ok: true, balance: encoded } : { ok: false, balance: -encoded - 1 };
}

async function closeClient(redis: Redis): Promise<void> {
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

export async function openRedisLedger(url: string, options: LedgerOptions = {}): Promise<Ledger> {
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof prefix !== 'string' || prefix.length > 200) throw new TypeError('keyPrefix must be a string of at most 200 characters');
  resolveMaxBatchSize(options.maxBatchSize);
  resolveMaxBatchesInFlight(options.maxBatchesInFlight);
  if (options.lockWaitMs !== undefined) assertLockWait(options.lockWaitMs);

  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    // While Redis is down a command waits for one reconnection, then fails:
    // the server answers 503 quickly instead of holding requests.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    // A script whose reply was lost may have run: resending it could spend twice.
    autoResendUnfulfilledCommands: false,
  });
  // Connection errors surface as rejected commands; without a listener
  // ioredis would also print every one of them.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const shas = {} as Record<ScriptName, string>;
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      shas[name] = (await redis.script('LOAD', SCRIPTS[name])) as string;
    }
    // Once per ledger: a ledger with balances from before keyed top-ups were recorded says since when it records them.
    const hadBalances = (await redis.exists(`${prefix}balances`)) === 1;
    await redis.set(`${prefix}keyed-topups-since`, hadBalances ? String(Date.now()) : '0', 'NX');
    return new RedisLedger(redis, prefix, shas, options);
  } catch (error) {
    redis.disconnect();
    throw ledgerError(error);
  }
}
