/**
 * Budgets written as text: the JSON budget file that `stripe402 fetch
 * --budget FILE` and the MCP server read, and the per-currency limits of
 * their flags (`5000`, `jpy=1000000,usd=50000`, `*=unlimited`). Both turn
 * into the `BudgetOptions` of the paying fetch, with every number checked,
 * so a typo refuses to start instead of paying with a default.
 */
import type { BudgetOptions, ChargeCaps, UnitsLimit } from './budget.ts';

/** A budget file or flag that cannot be read; `message` says which entry and why. */
export class BudgetConfigError extends Error {
  override readonly name = 'BudgetConfigError';
}

/** The keys of a budget file: the serializable part of `BudgetOptions`. */
const FILE_KEYS = [
  'maxPricePerRequest',
  'maxTopUp',
  'topUpTarget',
  'topUpMultiplier',
  'perOrigin',
  'total',
  'allowedOrigins',
  'deniedOrigins',
  'allowInsecureHttp',
  'unconfirmedCharges',
] as const;
const CAP_KEYS = ['perHour', 'perDay', 'overall'] as const;

/**
 * Parses a limit in units as flags write it: a whole number for every
 * currency (`50000`), or `CURRENCY=N` pairs separated by commas
 * (`jpy=1000000,usd=50000`, `*` for the other currencies); `unlimited`
 * stands for no limit.
 */
export function parseUnitsLimit(text: string): UnitsLimit {
  const trimmed = text.trim();
  if (!trimmed.includes('=')) return parseUnits(trimmed, text);
  const limit: Record<string, number> = {};
  for (const part of trimmed.split(',')) {
    const [currency, value, extra] = part.split('=').map((s) => s.trim());
    if (extra !== undefined || !currency || value === undefined || !/^([a-z]{3}|\*)$/i.test(currency)) {
      throw new BudgetConfigError(`'${text}' is not a limit: write N, or CURRENCY=N[,CURRENCY=N...] (e.g. jpy=1000000,usd=50000)`);
    }
    const key = currency.toLowerCase();
    if (key in limit) throw new BudgetConfigError(`'${text}' names ${key} twice`);
    limit[key] = parseUnits(value, text);
  }
  return limit;
}

function parseUnits(value: string, whole: string): number {
  if (value.toLowerCase() === 'unlimited') return Infinity;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new BudgetConfigError(`'${whole}' is not a limit: ${value} is not a whole number of units (1 unit = 1/10,000 of the currency) or 'unlimited'`);
  }
  return n;
}

/**
 * Reads a budget file's JSON (already parsed) into `BudgetOptions`. Limits
 * are numbers, `"unlimited"`, or objects of currency to either; unknown keys
 * are refused, since a misspelled cap would silently not apply.
 */
export function budgetFromJson(value: unknown, source = 'the budget'): BudgetOptions {
  if (!isRecord(value)) throw new BudgetConfigError(`${source} must be a JSON object`);
  for (const key of Object.keys(value)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      throw new BudgetConfigError(`${source}: unknown key '${key}' (known: ${FILE_KEYS.join(', ')})`);
    }
  }
  const budget: BudgetOptions = {};
  for (const key of ['maxPricePerRequest', 'maxTopUp', 'topUpTarget'] as const) {
    if (value[key] !== undefined) budget[key] = limitFromJson(value[key], `${source}: ${key}`);
  }
  if (value.topUpMultiplier !== undefined) {
    const m = value.topUpMultiplier;
    if (typeof m !== 'number' || !Number.isFinite(m) || m < 1) throw new BudgetConfigError(`${source}: topUpMultiplier must be a number of at least 1`);
    budget.topUpMultiplier = m;
  }
  for (const scope of ['perOrigin', 'total'] as const) {
    const caps = value[scope];
    if (caps === undefined) continue;
    if (!isRecord(caps)) throw new BudgetConfigError(`${source}: ${scope} must be an object with perHour, perDay or overall`);
    const parsed: ChargeCaps = {};
    for (const key of Object.keys(caps)) {
      if (!(CAP_KEYS as readonly string[]).includes(key)) throw new BudgetConfigError(`${source}: ${scope}.${key} is not perHour, perDay or overall`);
      parsed[key as (typeof CAP_KEYS)[number]] = limitFromJson(caps[key], `${source}: ${scope}.${key}`);
    }
    budget[scope] = parsed;
  }
  for (const key of ['allowedOrigins', 'deniedOrigins'] as const) {
    const list = value[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p.length > 0)) {
      throw new BudgetConfigError(`${source}: ${key} must be a list of origins (https://api.example.com or https://*.example.com)`);
    }
    budget[key] = list as string[];
  }
  if (value.allowInsecureHttp !== undefined) {
    if (typeof value.allowInsecureHttp !== 'boolean') throw new BudgetConfigError(`${source}: allowInsecureHttp must be true or false`);
    budget.allowInsecureHttp = value.allowInsecureHttp;
  }
  if (value.unconfirmedCharges !== undefined) {
    if (value.unconfirmedCharges !== 'worst-case' && value.unconfirmedCharges !== 'as-specified') {
      throw new BudgetConfigError(`${source}: unconfirmedCharges must be "worst-case" or "as-specified"`);
    }
    budget.unconfirmedCharges = value.unconfirmedCharges;
  }
  return budget;
}

function limitFromJson(value: unknown, where: string): UnitsLimit {
  const one = (v: unknown): number => {
    if (v === 'unlimited') return Infinity;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    throw new BudgetConfigError(`${where} must be a whole number of units or "unlimited", not ${JSON.stringify(v)}`);
  };
  if (!isRecord(value)) return one(value);
  const limit: Record<string, number> = {};
  for (const [currency, v] of Object.entries(value)) {
    if (!/^([a-z]{3}|\*)$/.test(currency)) throw new BudgetConfigError(`${where}: '${currency}' is not a lower-case currency code or '*'`);
    limit[currency] = one(v);
  }
  return limit;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
