/**
 * Starting the foreign targets (the spec-alone server, the v1-faithful
 * server, the reference server at any legal price) against one Stripe
 * emulator, running the conformance suite on them, and reading the report
 * the way the tests and the price benchmark judge it: MUST failures, and
 * MUST checks skipped below a level the run claims. Each target gets its own
 * server secret, so client ids, and the PaymentIntents the suite counts by
 * them, never collide between targets that share the emulator or a ledger.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import type { Ledger } from '@stripe402/server/ledger';
import { startServer } from 'stripe402';
import { runConformance, type ConformanceOptions } from '../../runner.ts';
import type { Emulator } from '@stripe402/stripe-emulator';
import type { Offer, ReferenceConfig } from './prices.ts';
import { startSpecServer, type SpecExtensions } from './spec-server.ts';
import { startV1Server, type V1Defect, type V1Route } from './v1-server.ts';

/** A running target: where the suite starts, and what it may know. */
export interface Target {
  /** The paid resource the suite is pointed at. */
  target: string;
  serverSecret: string;
  failingRoute: string;
  close(): Promise<void>;
}

export const PAID_PATH = '/api/joke';
export const FAILING_PATH = '/api/fail';

/** A configuration of the spec-alone server: prices, extensions, and who credits first. */
export interface SpecConfig {
  offers: Offer[];
  extensions: SpecExtensions;
  creditFrom: 'request' | 'webhook-first';
  /** Deliver Stripe's webhook events to the server (always, with webhook-first). */
  webhook: boolean;
}

const WEBHOOK_SECRET = 'whsec_foreign_targets_only';

/** The spec-alone server selling PAID_PATH and FAILING_PATH at `config.offers`. */
export async function startSpecTarget(emulator: Emulator, config: SpecConfig): Promise<Target> {
  const serverSecret = `foreign spec-alone server ${randomUUID()}`;
  const webhook = config.webhook || config.creditFrom === 'webhook-first';
  const server = await startSpecServer({
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    publishableKey: emulator.publishableKey,
    serverSecret,
    routes: [
      { method: 'GET', path: PAID_PATH, description: 'A paid joke', offers: config.offers },
      { method: 'GET', path: FAILING_PATH, description: 'Always fails', offers: config.offers, fails: true },
    ],
    extensions: { ...config.extensions, multiCurrency: config.extensions.multiCurrency || config.offers.length > 1 },
    creditFrom: config.creditFrom,
    ...(webhook ? { webhookSecret: WEBHOOK_SECRET } : {}),
  });
  emulator.setWebhook(webhook ? { url: server.webhookUrl, secret: WEBHOOK_SECRET, retryDelaysMs: [100] } : null);
  return {
    target: `${server.url}${PAID_PATH}`,
    serverSecret,
    failingRoute: FAILING_PATH,
    async close() {
      emulator.setWebhook(null);
      await server.close();
    },
  };
}

/** The v1-faithful server selling PAID_PATH (`route`) and FAILING_PATH, with `defects` switched on. */
export async function startV1Target(emulator: Emulator, defects: V1Defect[], route: V1Route = { amount: 100, description: 'A paid joke' }): Promise<Target> {
  const serverSecret = `foreign v1 server ${randomUUID()}`;
  const server = await startV1Server({
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    publishableKey: emulator.publishableKey,
    serverSecret,
    routes: { [`GET ${PAID_PATH}`]: route, [`GET ${FAILING_PATH}`]: { ...route, fails: true } },
    defects,
  });
  return { target: `${server.url}${PAID_PATH}`, serverSecret, failingRoute: FAILING_PATH, close: () => server.close() };
}

/** The reference server selling PAID_PATH and FAILING_PATH (its demo handlers) at `offers`, on a shared ledger. */
export async function startReferenceTarget(emulator: Emulator, ledger: Ledger, config: ReferenceConfig): Promise<Target> {
  const serverSecret = `foreign reference at ${randomUUID()}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stripe402-prices-'));
  const server = await startServer({
    port: 0,
    ledger,
    dataDir,
    stripeUrl: emulator.url,
    stripeSecretKey: emulator.secretKey,
    stripePublishableKey: emulator.publishableKey,
    serverSecret,
    log: false,
    routes: [
      { method: 'GET', path: PAID_PATH, accepts: config.offers },
      { method: 'GET', path: FAILING_PATH, accepts: config.offers },
    ],
    ...(config.returnUrl ? { returnUrl: 'https://example.com/stripe402/authenticated' } : {}),
    ...(config.webhook ? { webhookSecret: WEBHOOK_SECRET } : {}),
  });
  emulator.setWebhook(config.webhook ? { url: `${server.url}/stripe402/webhook`, secret: WEBHOOK_SECRET, retryDelaysMs: [100] } : null);
  return {
    target: `${server.url}${PAID_PATH}`,
    serverSecret,
    failingRoute: FAILING_PATH,
    async close() {
      emulator.setWebhook(null);
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The suite at level `all` against a target, backend-verified checks on. */
export function judge(emulator: Emulator, target: Target, extra: Partial<ConformanceOptions> = {}): Promise<ConformanceReport> {
  return runConformance({
    target: target.target,
    level: 'all',
    stripeUrl: emulator.url,
    stripeKey: emulator.secretKey,
    serverSecret: target.serverSecret,
    failingRoute: target.failingRoute,
    runs: 5,
    ...extra,
  });
}

/**
 * Whether a failed check counts as a defect of the target: under the v1
 * profile a failure of the `strict` category (the spec is stricter than v1)
 * is reported apart and never counts (issue 15, item 4).
 */
export function countsAsDefect(report: ConformanceReport, check: CheckResult): boolean {
  const profile = (report as ConformanceReport & { profile?: string }).profile;
  return check.status === 'failed' && !(profile === 'v1' && (check as CheckResult & { category?: string }).category === 'strict');
}

export const mustFailures = (report: ConformanceReport): CheckResult[] => report.checks.filter((c) => c.severity === 'must' && countsAsDefect(report, c));

const LEVEL_ORDER = ['none', 'core', 'ledger', 'extensions'] as const;

/**
 * MUST checks that were skipped at a level the run says it reached (issue
 * 15, item 3: a level is reached only when they all ran). A skip the report
 * marks `not-applicable` (the rule does not bind this target, CONF-5) does
 * not count; an unmarked skip does, since nothing says it may not apply.
 */
export function skippedUnderClaim(report: ConformanceReport): CheckResult[] {
  const reached = LEVEL_ORDER.indexOf(report.levelReached);
  return report.checks.filter(
    (c) =>
      c.status === 'skipped' &&
      c.severity === 'must' &&
      (c as CheckResult & { skipKind?: string }).skipKind !== 'not-applicable' &&
      LEVEL_ORDER.indexOf(c.level) <= reached,
  );
}

/** One line per check: id, requirement, then what it expected and saw (or why it skipped). */
export function explain(checks: CheckResult[]): string {
  return checks
    .map((c) => `${c.id} (${c.requirement.id}): ${c.status === 'failed' ? `expected ${c.expected ?? '?'}; actual ${c.actual ?? '?'}` : `${c.status}: ${c.reason ?? ''}`}`)
    .join('\n');
}

/**
 * What keeps a run from the verdict the foreign targets require: MUST
 * failures other than `expectedFailures` (check ids a configuration breaks
 * on purpose), an expected failure that did not happen, a level claimed
 * over a skipped MUST check, a harness error. Empty when the verdict holds.
 */
export function verdictProblems(report: ConformanceReport, expectedFailures: readonly string[] = []): string[] {
  const problems: string[] = [];
  const failed = mustFailures(report);
  const unexpected = failed.filter((c) => !expectedFailures.includes(c.id));
  if (unexpected.length > 0) problems.push(`MUST failures:\n${explain(unexpected)}`);
  const missed = expectedFailures.filter((id) => !failed.some((c) => c.id === id));
  if (missed.length > 0) problems.push(`expected to fail, but did not: ${missed.join(', ')}`);
  const skipped = skippedUnderClaim(report);
  if (skipped.length > 0) problems.push(`level ${report.levelReached} claimed over skipped MUST checks:\n${explain(skipped)}`);
  if (report.harnessErrors && report.harnessErrors.length > 0) problems.push(`harness errors:\n${report.harnessErrors.join('\n')}`);
  return problems;
}
