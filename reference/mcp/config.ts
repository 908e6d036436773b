/**
 * The MCP server's configuration: what it pays with, its budget, where it
 * keeps client ids, and when it asks the person before a top-up. Read from a
 * JSON file (`--config FILE` or `STRIPE402_MCP_CONFIG`) with the environment
 * on top, the same variables as `stripe402 fetch`, and checked as a whole at
 * start-up: a typo stops the server instead of paying with a default.
 */
import { readFile } from 'node:fs/promises';
import { budgetFromJson, parseCardText, parseUnitsLimit, BudgetConfigError, type BudgetOptions, type CardDetails, type UnitsLimit } from '@stripe402/client';
import { defaultStorePath } from '@stripe402/client/node';

/** Everything the MCP server needs, after defaults. */
export interface McpConfig {
  /** The PaymentMethod to charge for top-ups (`pm_...`). */
  paymentMethodId?: string;
  /** Card data to tokenize instead (test cards; puts the host in PCI scope). */
  card?: CardDetails;
  /** Where cards are tokenized (default Stripe's API). */
  stripeUrl?: string;
  /** A JSON file of client ids, or undefined to keep them in memory. */
  store?: string;
  /** The budget of every paid fetch (see docs/client.md). */
  budget: BudgetOptions;
  /** Top-ups above this (units, per currency) are put to the person first. Default: every top-up. */
  approveTopUpsAbove: UnitsLimit;
  /** What to do when approval is needed and the MCP host cannot ask (no elicitation). Default refuse. */
  withoutApproval: 'refuse' | 'allow';
  /** Currencies to prefer when a server offers several. */
  preferredCurrencies?: string[];
  /** Most bytes of a response body handed to the model. Default 100,000. */
  maxResponseBytes: number;
}

/** A configuration that cannot be used; the message names the entry. */
export class McpConfigError extends Error {
  override readonly name = 'McpConfigError';
}

const FILE_KEYS = ['paymentMethodId', 'card', 'stripeUrl', 'store', 'budget', 'approveTopUpsAbove', 'withoutApproval', 'preferredCurrencies', 'maxResponseBytes'];

/**
 * Loads the configuration: the file (when given), then the environment
 * (`STRIPE402_PAYMENT_METHOD`, `STRIPE402_CARD`, `STRIPE402_STORE`,
 * `STRIPE402_STRIPE_URL`, `STRIPE402_BUDGET` for a budget file,
 * `STRIPE402_APPROVE_ABOVE`), which wins.
 */
export async function loadMcpConfig(env: NodeJS.ProcessEnv, file = env.STRIPE402_MCP_CONFIG): Promise<McpConfig> {
  const raw = file ? await readJson(file) : {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new McpConfigError(`${file} must hold a JSON object`);
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!FILE_KEYS.includes(key)) throw new McpConfigError(`${file}: unknown key '${key}' (known: ${FILE_KEYS.join(', ')})`);
  }
  const config: McpConfig = {
    budget: {},
    approveTopUpsAbove: 0,
    withoutApproval: 'refuse',
    maxResponseBytes: 100_000,
  };
  try {
    if (o.budget !== undefined) config.budget = budgetFromJson(o.budget, `${file}: budget`);
    const budgetFile = env.STRIPE402_BUDGET;
    if (budgetFile) config.budget = budgetFromJson(await readJson(budgetFile), budgetFile);
    const approve = env.STRIPE402_APPROVE_ABOVE ?? (o.approveTopUpsAbove === undefined ? undefined : toLimitText(o.approveTopUpsAbove));
    if (approve !== undefined) config.approveTopUpsAbove = parseUnitsLimit(approve);
  } catch (error) {
    if (error instanceof BudgetConfigError) throw new McpConfigError(error.message);
    throw error;
  }
  const pm = env.STRIPE402_PAYMENT_METHOD || str(o.paymentMethodId, 'paymentMethodId', file);
  if (pm !== undefined) {
    if (!/^pm_[A-Za-z0-9_]+$/.test(pm)) throw new McpConfigError('the PaymentMethod must be a PaymentMethod id (pm_...)');
    config.paymentMethodId = pm;
  }
  const cardText = env.STRIPE402_CARD || str(o.card, 'card', file);
  if (cardText !== undefined && !config.paymentMethodId) {
    const card = parseCardText(cardText);
    if (!card) throw new McpConfigError('the card must be written NUMBER:MM:YYYY[:CVC]');
    config.card = card;
  }
  const stripeUrl = env.STRIPE402_STRIPE_URL || str(o.stripeUrl, 'stripeUrl', file);
  if (stripeUrl !== undefined) config.stripeUrl = stripeUrl;
  const store = env.STRIPE402_STORE || str(o.store, 'store', file);
  if (store !== undefined) config.store = store === 'default' ? defaultStorePath() : store;
  if (o.withoutApproval !== undefined) {
    if (o.withoutApproval !== 'refuse' && o.withoutApproval !== 'allow') throw new McpConfigError(`${file}: withoutApproval must be "refuse" or "allow"`);
    config.withoutApproval = o.withoutApproval;
  }
  if (o.preferredCurrencies !== undefined) {
    const list = o.preferredCurrencies;
    if (!Array.isArray(list) || !list.every((c) => typeof c === 'string' && /^[a-z]{3}$/.test(c))) {
      throw new McpConfigError(`${file}: preferredCurrencies must be a list of lower-case currency codes`);
    }
    config.preferredCurrencies = list as string[];
  }
  if (o.maxResponseBytes !== undefined) {
    const n = o.maxResponseBytes;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new McpConfigError(`${file}: maxResponseBytes must be a positive integer`);
    config.maxResponseBytes = n;
  }
  return config;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new McpConfigError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new McpConfigError(`${file} is not JSON`);
  }
}

function str(value: unknown, key: string, file: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw new McpConfigError(`${file}: ${key} must be a non-empty string`);
  return value;
}

/** A file's approval threshold (number, "unlimited" or per-currency object) in the flag syntax. */
function toLimitText(value: unknown): string {
  if (typeof value === 'number' || value === 'unlimited') return String(value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value)
      .map(([currency, v]) => `${currency}=${String(v)}`)
      .join(',');
  }
  throw new McpConfigError(`approveTopUpsAbove must be a number of units, "unlimited" or an object of currency to units`);
}
