/**
 * Runs the conformance suite programmatically: select checks by level and
 * id prefix, resolve the target, connect to the Stripe backend when given,
 * run every check (late ones last), and return a ConformanceReport that
 * validates against schemas/conformance-report.schema.json. The CLI, the
 * tests and the broken-server proofs all go through runConformance. It also
 * decides what the run claims: a level only when every required check of it
 * that counts under the profile ran and passed or does not apply (CONF-6),
 * and the exit code from the same facts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  STRIPE402_VERSION,
  validateConformanceReport,
  type CheckResult,
  type ConformanceReport,
} from '@stripe402/core';
import { Backend } from './backend.ts';
import { CHECKS, sectionOf, type CheckDefinition, type Level } from './checks/index.ts';
import { CheckFailure, NotApplicable, SkipCheck } from './checks/types.ts';
import { RunContext, TargetError, resolveTarget, type Cards, type ResolvedOptions } from './context.ts';
import { HttpTransport, TransportError } from './http.ts';
import { PROFILES, counted, isDefect, isUnverified, required, resultCategory, type Profile } from './profiles.ts';
import { requirementText } from './requirements.ts';

/** Options of one run; everything but `target` has a default. */
export interface ConformanceOptions {
  /** A paid resource, or a base URL whose paid routes GET /.well-known/stripe402 lists. */
  target: string;
  /** core, ledger (core + ledger), extensions or all (every level). Default core. */
  level?: 'core' | 'ledger' | 'extensions' | 'all';
  /** Run only checks whose id starts with one of these prefixes (`3`, `3/`, `8/model-balances`). */
  only?: string[];
  /** SHOULD failures fail the run. */
  strict?: boolean;
  /** Runs per property. Default 25. */
  runs?: number;
  /** fast-check seed. Default: random. */
  seed?: number;
  /** fast-check path, to replay one property's counterexample (needs exactly one property selected). */
  path?: string;
  /** fast-check replayPath of a command sequence (printed with a failed model property). */
  commands?: string;
  /** Per-request timeout in milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Parallel requests in burst checks. Default 16. */
  concurrency?: number;
  /** Test cards; good cards are added to the defaults, unset roles default to Stripe's magic PaymentMethod ids. */
  cards?: Partial<Cards>;
  /** Use only the good cards given in `cards`, not the default ones too. */
  cardsOnly?: boolean;
  /** What the target is judged by: `spec` (default) or `v1` (Section 14.4). */
  profile?: Profile;
  /** A paid route whose handler answers 5xx (`/api/fail` or `POST /api/fail`). */
  failingRoute?: string;
  /** The server secret, for the client id derivation check. */
  serverSecret?: string;
  /** The Stripe backend's base URL (default https://api.stripe.com when a key is given). */
  stripeUrl?: string;
  /** A secret key of the Stripe backend: enables backend-verified checks. */
  stripeKey?: string;
  /** Called as each check starts and ends (the CLI draws progress with it). */
  onProgress?: (event: ProgressEvent) => void;
}

/** A check starting or finishing. */
export type ProgressEvent =
  | { type: 'start'; id: string; title: string; index: number; total: number }
  | { type: 'end'; result: CheckResult; index: number; total: number };

/** A check as `--list` and the docs show it. */
export interface CheckInfo {
  id: string;
  section: string;
  title: string;
  level: Level;
  severity: 'must' | 'should' | 'info';
  requirement: string;
  property: boolean;
}

/** A run that could not start or finish: `exitCode` is what the CLI exits with. */
export class ConformanceError extends Error {
  constructor(
    message: string,
    readonly exitCode: 2 | 3,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConformanceError';
  }
}

export const DEFAULT_CARDS: Cards = {
  good: ['pm_card_visa', 'pm_card_mastercard', 'pm_card_amex'],
  declined: 'pm_card_chargeDeclined',
  authentication: 'pm_card_authenticationRequired',
};

const DEFAULT_CONCURRENCY = 16;

const LEVELS: Record<NonNullable<ConformanceOptions['level']>, Level[]> = {
  core: ['core'],
  ledger: ['core', 'ledger'],
  extensions: ['core', 'ledger', 'extensions'],
  all: ['core', 'ledger', 'extensions'],
};

const TOOL = { name: 'stripe402-conformance', version: packageVersion() };

/** Every check of the registry, in order. */
export function listChecks(): CheckInfo[] {
  return CHECKS.map(info);
}

/** The checks a level and a set of id prefixes select. */
export function selectChecks(level: ConformanceOptions['level'] = 'core', only: string[] = []): CheckDefinition[] {
  const levels = LEVELS[level];
  return CHECKS.filter((check) => levels.includes(check.level) && (only.length === 0 || only.some((p) => matchesPrefix(check.id, p))));
}

/** `3` selects `3/...`, `3/rejects` selects `3/rejects-...`, a full id selects itself. */
function matchesPrefix(id: string, prefix: string): boolean {
  if (!prefix.includes('/')) return sectionOf(id) === prefix || sectionOf(id).startsWith(prefix + '.');
  return id.startsWith(prefix);
}

/** Runs the suite and returns its report. Throws ConformanceError for usage errors (2) and an unreachable target or backend (3). */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const resolved = resolveOptions(options);
  const selected = selectChecks(resolved.level, resolved.only);
  if (selected.length === 0) {
    throw new ConformanceError(`no check matches level ${resolved.level}${resolved.only.length ? ` and --only ${resolved.only.join(' ')}` : ''}`, 2);
  }
  if ((resolved.path || resolved.commands) && selected.filter((c) => c.property).length !== 1) {
    throw new ConformanceError('--path and --commands replay one property: select exactly one property check with --only', 2);
  }
  for (const check of selected) {
    if (requirementText(check.requirement) === undefined) {
      throw new ConformanceError(`check ${check.id} cites ${check.requirement}, which the spec does not define`, 3);
    }
  }

  const startedAt = new Date();
  const started = performance.now();
  const targetUrl = new URL(resolved.target);
  const transport = new HttpTransport(new URL(targetUrl.origin), resolved.timeoutMs);
  try {
    let target;
    try {
      target = await resolveTarget(transport, targetUrl, resolved.failingRoute?.replace(/^[A-Z]+ /, ''));
    } catch (error) {
      if (error instanceof TransportError) throw new ConformanceError(`target unreachable: ${error.message}`, 3, { cause: error });
      if (error instanceof TargetError) throw new ConformanceError(error.message, 2, { cause: error });
      throw error;
    }
    let backend: Backend | undefined;
    if (resolved.stripeKey) {
      // PaymentIntents created before the run belong to earlier runs; a second of slack for clock rounding.
      backend = Backend.connect(resolved.stripeUrl ?? 'https://api.stripe.com', resolved.stripeKey, Math.floor(startedAt.getTime() / 1000) - 1);
      try {
        await backend.ping();
      } catch (error) {
        throw new ConformanceError(`the Stripe backend at ${resolved.stripeUrl ?? 'https://api.stripe.com'} cannot be queried: ${(error as Error).message}`, 3, { cause: error });
      }
    }
    const ctx = new RunContext(resolved, transport, target, backend);
    const harnessErrors: string[] = [];
    const results = new Map<string, CheckResult>();
    const order = [...selected.filter((c) => !c.late), ...selected.filter((c) => c.late)];
    for (const [index, check] of order.entries()) {
      options.onProgress?.({ type: 'start', id: check.id, title: check.title, index, total: order.length });
      const result = await runCheck(ctx, check, harnessErrors);
      results.set(check.id, result);
      options.onProgress?.({ type: 'end', result, index, total: order.length });
    }
    const checks = selected.map((c) => results.get(c.id)!);
    for (const check of checks) check.category = resultCategory(check);
    const profile = options.profile ?? 'spec';
    const partial = isPartial(selected, LEVELS[resolved.level]);
    const unverified = checks.filter((c) => isUnverified(c, profile, resolved.strict)).map((c) => c.id);
    const report: ConformanceReport = {
      tool: TOOL,
      specVersion: STRIPE402_VERSION as 1,
      target: resolved.target,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - started),
      level: resolved.level,
      profile,
      levelReached: partial ? 'none' : levelReached(checks, LEVELS[resolved.level], resolved.strict, profile),
      unverified,
      ...(partial ? { partial } : {}),
      seed: resolved.seed,
      strict: resolved.strict,
      summary: summarize(checks, profile, resolved.strict),
      checks,
      ...(harnessErrors.length ? { harnessErrors } : {}),
    };
    const valid = validateConformanceReport(report);
    if (!valid.ok) throw new ConformanceError(`the report does not validate against its schema: ${valid.detail}`, 3);
    return report;
  } finally {
    transport.close();
  }
}

/**
 * Whether a report fails the run: a required check that counts under its
 * profile failed, or could not be verified (CONF-6: "every required check
 * passed" is what exit 0 says, and an unverified check did not pass).
 */
export function reportFails(report: ConformanceReport): boolean {
  const profile = report.profile ?? 'spec';
  const strict = report.strict === true;
  return report.checks.some((c) => isDefect(c, profile, strict) || isUnverified(c, profile, strict));
}

/** The process exit code for a finished report (usage errors and unreachable targets throw instead). */
export function exitCodeOf(report: ConformanceReport): 0 | 1 | 3 {
  if (report.harnessErrors?.length) return 3;
  return reportFails(report) ? 1 : 0;
}

async function runCheck(ctx: RunContext, check: CheckDefinition, harnessErrors: string[]): Promise<CheckResult> {
  const started = performance.now();
  const result: CheckResult = {
    id: check.id,
    section: sectionOf(check.id),
    title: check.title,
    level: check.level,
    severity: check.severity,
    requirement: { id: check.requirement, text: requirementText(check.requirement)! },
    status: 'passed',
    durationMs: 0,
  };
  try {
    const observation = await check.run(ctx);
    if (check.severity === 'info') {
      result.status = 'info';
      result.reason = observation ?? 'observed no deviation';
    }
  } catch (error) {
    if (error instanceof SkipCheck) {
      result.status = 'skipped';
      result.reason = error.reason;
      result.skipKind = error instanceof NotApplicable ? 'not-applicable' : 'unverified';
    } else if (error instanceof CheckFailure) {
      result.status = 'failed';
      result.expected = error.expected;
      result.actual = error.actual;
      if (error.property) {
        const { seed, path, counterexample, commands } = error.property;
        const replay = replayCommand(ctx.options, check, seed, path, commands);
        result.property = { seed, path, counterexample, replay };
      }
    } else {
      const message = error instanceof Error ? error.message : String(error);
      result.status = 'failed';
      result.expected = 'the check to run to completion';
      result.actual = `harness error: ${message}`;
      harnessErrors.push(`${check.id}: ${message}`);
    }
  }
  result.durationMs = Math.round(performance.now() - started);
  return result;
}

/** The one-line command that replays a property counterexample, with every option that shapes its inputs. */
function replayCommand(options: ResolvedOptions, check: CheckDefinition, seed: number, path: string, commands: string | undefined): string {
  // The scoped name: outside this repository an unrelated package owns `conformance`.
  const parts = [`npx @stripe402/conformance --target ${options.target} --only ${check.id} --seed ${seed} --path "${path}"`];
  if (commands) parts.push(`--commands "${commands}"`);
  if (check.level !== 'core') parts.push('--level all');
  if (options.concurrency !== DEFAULT_CONCURRENCY) parts.push(`--concurrency ${options.concurrency}`);
  const cards = options.cards;
  // --cards-only with every good card reproduces the exact list, whatever mix of given and default cards it was.
  if (cards.good.join() !== DEFAULT_CARDS.good.join()) parts.push('--cards-only', ...cards.good.map((c) => `--card ${c}`));
  if (cards.declined !== DEFAULT_CARDS.declined) parts.push(`--card declined:${cards.declined}`);
  if (cards.authentication !== DEFAULT_CARDS.authentication) parts.push(`--card auth:${cards.authentication}`);
  return parts.join(' ');
}

/** Whether --only left out some check of the requested levels: such a run claims no level. */
function isPartial(selected: CheckDefinition[], levels: Level[]): boolean {
  return CHECKS.some((c) => levels.includes(c.level) && !selected.includes(c));
}

/**
 * The highest level, in order, whose every required check that counts under
 * the profile passed or does not apply, with at least one passed: a failed or
 * unverified check stops the count at the level below it.
 */
function levelReached(checks: CheckResult[], levels: Level[], strict: boolean, profile: Profile): ConformanceReport['levelReached'] {
  let reached: ConformanceReport['levelReached'] = 'none';
  // stripe402 v1 has no extensions: a v1-profile run claims at most ledger (CONF-7).
  for (const level of profile === 'v1' ? levels.filter((l) => l !== 'extensions') : levels) {
    const binding = checks.filter((c) => c.level === level && required(c, strict) && counted(c, profile));
    const settled = binding.every((c) => c.status === 'passed' || (c.status === 'skipped' && c.skipKind === 'not-applicable'));
    if (!settled || !binding.some((c) => c.status === 'passed')) break;
    reached = level;
  }
  return reached;
}

function summarize(checks: CheckResult[], profile: Profile, strict: boolean): ConformanceReport['summary'] {
  const count = (f: (c: CheckResult) => boolean) => checks.filter(f).length;
  return {
    passed: count((c) => c.status === 'passed'),
    failed: count((c) => c.status === 'failed'),
    skipped: count((c) => c.status === 'skipped'),
    nonStrict: count((c) => c.status === 'failed' && c.severity !== 'must'),
    info: count((c) => c.status === 'info'),
    unverified: count((c) => isUnverified(c, profile, strict)),
    notApplicable: count((c) => c.status === 'skipped' && c.skipKind === 'not-applicable'),
    defects: count((c) => isDefect(c, profile, strict)),
    ...(profile === 'v1' ? { strictDifferences: count((c) => c.status === 'failed' && !counted(c, profile)) } : {}),
  };
}

function info(check: CheckDefinition): CheckInfo {
  return {
    id: check.id,
    section: sectionOf(check.id),
    title: check.title,
    level: check.level,
    severity: check.severity,
    requirement: check.requirement,
    property: check.property === true,
  };
}

function resolveOptions(options: ConformanceOptions): ResolvedOptions {
  let url: URL;
  try {
    url = new URL(options.target);
  } catch {
    throw new ConformanceError(`--target is not a URL: ${options.target}`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConformanceError('--target must be an http or https URL', 2);
  const level = options.level ?? 'core';
  if (!(level in LEVELS)) throw new ConformanceError(`--level must be core, ledger, extensions or all, not ${level}`, 2);
  const positive = (value: number | undefined, name: string, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 1) throw new ConformanceError(`${name} must be a positive integer`, 2);
    return value;
  };
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) throw new ConformanceError('--seed must be an integer', 2);
  if (options.stripeUrl && !options.stripeKey) throw new ConformanceError('--stripe-url needs --stripe-key', 2);
  if (options.profile !== undefined && !PROFILES.includes(options.profile)) {
    throw new ConformanceError(`--profile must be ${PROFILES.join(' or ')}, not ${options.profile}`, 2);
  }
  const given = options.cards?.good ?? [];
  if (options.cardsOnly && given.length === 0) throw new ConformanceError('--cards-only needs at least one good --card', 2);
  const cards: Cards = {
    // Cards given come first and add to the defaults: replacing them silently would leave checks that need several cards unverified.
    good: options.cardsOnly ? [...new Set(given)] : [...new Set([...given, ...DEFAULT_CARDS.good])],
    declined: options.cards?.declined ?? DEFAULT_CARDS.declined,
    authentication: options.cards?.authentication ?? DEFAULT_CARDS.authentication,
  };
  for (const card of [...cards.good, cards.declined, cards.authentication]) {
    if (!/^pm_[A-Za-z0-9_]+$/.test(card)) throw new ConformanceError(`--card must be a PaymentMethod id (pm_...), not ${card}`, 2);
  }
  return {
    target: options.target,
    level,
    only: options.only ?? [],
    strict: options.strict ?? false,
    runs: positive(options.runs, '--runs', 25),
    seed: options.seed ?? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0,
    ...(options.path ? { path: options.path } : {}),
    ...(options.commands ? { commands: options.commands } : {}),
    timeoutMs: positive(options.timeoutMs, '--timeout', 10_000),
    concurrency: positive(options.concurrency, '--concurrency', DEFAULT_CONCURRENCY),
    cards,
    ...(options.failingRoute ? { failingRoute: options.failingRoute } : {}),
    ...(options.serverSecret ? { serverSecret: options.serverSecret } : {}),
    ...(options.stripeUrl ? { stripeUrl: options.stripeUrl } : {}),
    ...(options.stripeKey ? { stripeKey: options.stripeKey } : {}),
  };
}

function packageVersion(): string {
  try {
    // The package's own manifest, found by name from source and from the build alike.
    return (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@stripe402/conformance/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
