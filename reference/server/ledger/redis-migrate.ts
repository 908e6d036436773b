/**
 * Migration of a single-instance Redis ledger from its first key layout
 * (one `balances` hash of every account, one `credits` hash of every
 * PaymentIntent, `journal:<currency>:<clientId>` lists) to the per-account
 * layout of redis.ts, whose keys share a hash slot per account and so also
 * run on Redis Cluster. A server opening a ledger runs it before serving.
 *
 * Each step is one script, atomic on its own: a PaymentIntent's credit
 * record moves to its account (and claims the PaymentIntent for it); an
 * account's balance and journal move together, the old field deleted in
 * the same script, so a step interrupted or run twice (two servers
 * upgrading at once) neither loses nor doubles a unit. Servers still on the
 * old layout must be stopped first: they would keep writing the old keys.
 * The earlier layout only ever ran on a single Redis, so a cluster never
 * needs this.
 */
import type { Redis } from 'ioredis';
import { accountKeys, paymentIntentOwnerKey } from './redis.ts';

const MIGRATE_CREDIT = `
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
redis.call('HSET', KEYS[3], ARGV[1], record)
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/*
 * KEYS: old balances hash, old journal, new balance, new journal. ARGV: the
 * account's field. The old balance is added to any new one, and the old
 * journal goes before any new entries, so even an account that was already
 * written in the new layout keeps balance = journal.
 */
const MIGRATE_ACCOUNT = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local current = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[3], string.format('%d', tonumber(old) + (current and tonumber(current) or 0)))
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    local entries = redis.call('LRANGE', KEYS[2], 0, -1)
    for i = #entries, 1, -1 do redis.call('LPUSH', KEYS[4], entries[i]) end
    redis.call('DEL', KEYS[2])
  else
    redis.call('RENAME', KEYS[2], KEYS[4])
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

export interface MigrationReport {
  accounts: number;
  credits: number;
}

/** Moves every account and credit of the first layout under `prefix` to the current one; a no-op when there is none. */
export async function migrateSingleInstanceLayout(redis: Redis, prefix: string): Promise<MigrationReport> {
  const balancesKey = `${prefix}balances`;
  const creditsKey = `${prefix}credits`;
  const report: MigrationReport = { accounts: 0, credits: 0 };
  if ((await redis.exists(balancesKey, creditsKey)) === 0) return report;

  // Credits first: an account's balance never moves ahead of the record that keeps its top-ups from crediting twice.
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(creditsKey, cursor, 'COUNT', 500);
    for (let index = 0; index < flat.length; index += 2) {
      const paymentIntentId = flat[index]!;
      const { account } = JSON.parse(flat[index + 1]!) as { account: string };
      const keys = accountKeys(prefix, { currency: account.slice(0, 3), clientId: account.slice(4) });
      report.credits += Number(
        await redis.eval(MIGRATE_CREDIT, 3, creditsKey, paymentIntentOwnerKey(prefix, paymentIntentId), keys.credits, paymentIntentId, account),
      );
    }
    cursor = next;
  } while (cursor !== '0');

  cursor = '0';
  do {
    const [next, flat] = await redis.hscan(balancesKey, cursor, 'COUNT', 500);
    for (let index = 0; index < flat.length; index += 2) {
      const field = flat[index]!;
      const keys = accountKeys(prefix, { currency: field.slice(0, 3), clientId: field.slice(4) });
      report.accounts += Number(await redis.eval(MIGRATE_ACCOUNT, 4, balancesKey, `${prefix}journal:${field}`, keys.balance, keys.journal, field));
    }
    cursor = next;
  } while (cursor !== '0');
  return report;
}
