/**
 * Runs the conformance suite against the fixture server: once correct, once
 * per conforming variant (a behaviour the spec allows, where nothing but the
 * variant's own `failsOnly` may fail), and once per break with only the
 * checks that break should fail (plus the ones they need), a few servers at
 * a time against one Stripe emulator. Shared by broken.test.ts (which
 * asserts on the results) and table.ts (which renders them for the issue
 * note).
 */
import { randomUUID } from 'node:crypto';
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { runConformance } from '../runner.ts';
import { BREAKS, VARIANTS, startBrokenServer, type BreakInfo, type BreakName, type VariantName } from './server.ts';

/** The Stripe backend the servers and the suite share. */
export interface Backend {
  url: string;
  secretKey: string;
  publishableKey: string;
}

/** One run of the suite against the fixture. */
export interface ProofRun {
  /** The break or variant, or undefined for the correct server. */
  name: BreakName | VariantName | undefined;
  /** The check ids the break must fail (none for the correct server; a variant's failsOnly). */
  expected: readonly string[];
  /** Failed checks that were not expected: must be none for the correct server and for a variant. */
  unexpected: string[];
  /** Every check id the run reported as failed. */
  failed: string[];
  /** Expected check ids that did not fail, each with what the run reported instead. */
  missing: Array<{ id: string; status: string; detail: string }>;
  report: ConformanceReport;
  durationMs: number;
}

/** Fixed, so a failure reproduces; small, so the whole proof stays fast. */
export const PROOF_SEED = 402;
export const PROOF_RUNS = 10;

/** The id prefixes to run for a break: the checks it must fail and what they need. */
export function onlyFor(name: BreakName): string[] {
  const info: BreakInfo = BREAKS[name];
  return [...new Set([...info.checks, ...(info.alsoRun ?? [])])];
}

/** Starts the fixture (correct, or with one break), runs the suite at level all, and stops the fixture. */
export async function runAgainst(backend: Backend, name: BreakName | VariantName | undefined, only?: string[]): Promise<ProofRun> {
  // A secret per server: the run's client ids, and so the PaymentIntents the suite counts, never collide with another run's.
  const serverSecret = `stripe402-fixture-${name ?? 'correct'}-${randomUUID()}`;
  const server = await startBrokenServer({
    stripeUrl: backend.url,
    stripeSecretKey: backend.secretKey,
    publishableKey: backend.publishableKey,
    serverSecret,
    ...(name ? { break: name } : {}),
  });
  const started = performance.now();
  try {
    const report = await runConformance({
      target: `${server.url}/api/joke`,
      level: 'all',
      stripeUrl: backend.url,
      stripeKey: backend.secretKey,
      serverSecret,
      failingRoute: '/api/fail',
      seed: PROOF_SEED,
      runs: PROOF_RUNS,
      ...(only ? { only } : {}),
    });
    const expected: readonly string[] = name === undefined ? [] : isVariant(name) ? VARIANTS[name].failsOnly : BREAKS[name].checks;
    const failed = report.checks.filter((c) => c.status === 'failed').map((c) => c.id);
    const unexpected = failed.filter((id) => !expected.includes(id));
    const missing = expected
      .filter((id) => !failed.includes(id))
      .map((id) => {
        const result = report.checks.find((c) => c.id === id);
        return { id, status: result?.status ?? 'not run', detail: result ? detailOf(result) : 'the run did not select it' };
      });
    return { name, expected, unexpected, failed, missing, report, durationMs: Math.round(performance.now() - started) };
  } finally {
    await server.close();
  }
}

/** Whether a name is a conforming variant rather than a break. */
export function isVariant(name: BreakName | VariantName): name is VariantName {
  return Object.hasOwn(VARIANTS, name);
}

/** Runs the correct server, every conforming variant and every named break, `concurrency` servers at a time. */
export async function proveAll(
  backend: Backend,
  names: readonly BreakName[] = Object.keys(BREAKS) as BreakName[],
  options: { concurrency?: number; onRun?: (run: ProofRun) => void; variants?: readonly VariantName[] } = {},
): Promise<{ correct: ProofRun; breaks: Map<BreakName, ProofRun>; variants: Map<VariantName, ProofRun> }> {
  const breaks = new Map<BreakName, ProofRun>();
  const variants = new Map<VariantName, ProofRun>();
  let correct: ProofRun | undefined;
  // The longest runs first (the correct server and the variants run every check, then slow breaks), so the pool does not end waiting on one of them.
  const isSlow = (name: BreakName) => (BREAKS[name] as BreakInfo).slow === true;
  const ordered = [...names.filter(isSlow), ...names.filter((name) => !isSlow(name))];
  const variantNames = options.variants ?? (Object.keys(VARIANTS) as VariantName[]);
  const jobs: Array<{ name: BreakName | VariantName | undefined }> = [
    { name: undefined },
    ...variantNames.map((name) => ({ name })),
    ...ordered.map((name) => ({ name })),
  ];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { name } = jobs[next++]!;
      if (name === undefined) {
        correct = await runAgainst(backend, undefined);
        options.onRun?.(correct);
      } else if (isVariant(name)) {
        const run = await runAgainst(backend, name);
        variants.set(name, run);
        options.onRun?.(run);
      } else {
        const run = await runAgainst(backend, name, onlyFor(name));
        breaks.set(name, run);
        options.onRun?.(run);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 3) }, worker));
  return { correct: correct!, breaks, variants };
}

/** A short account of a result that is not the expected failure. */
export function detailOf(result: CheckResult): string {
  if (result.status === 'failed') return `expected ${result.expected}; actual ${result.actual}`;
  return result.reason ?? result.status;
}

/** The proof as a Markdown table: break, requirement, expected checks, and what actually failed; then the conforming variants. */
export function renderTable(correct: ProofRun, breaks: Map<BreakName, ProofRun>, variants: Map<VariantName, ProofRun> = new Map()): string {
  const lines = [
    '| break | requirements | what the server does wrong | checks that must fail | checks that failed | ms |',
    '|---|---|---|---|---|---|',
  ];
  for (const name of Object.keys(BREAKS) as BreakName[]) {
    const run = breaks.get(name);
    if (!run) continue;
    const info: BreakInfo = BREAKS[name];
    const failed = run.failed.map((id) => (run.expected.includes(id) ? `**${id}**` : id)).join('<br>') || '(none)';
    const mark = run.missing.length ? ' ✗' : '';
    lines.push(
      `| \`${name}\`${mark} | ${info.requirements.join(', ')} | ${info.description.replaceAll('|', '\\|')} | ${info.checks.join('<br>')} | ${failed} | ${run.durationMs} |`,
    );
  }
  const { summary } = correct.report;
  const correctLine =
    `Correct server: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped, ${summary.info ?? 0} info, ` +
    `level reached ${correct.report.levelReached}, ${correct.durationMs} ms.`;
  const variantLines = [
    '| variant (the spec allows it) | requirements | what the server does | checks it may fail | checks that failed | ms |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, run] of variants) {
    const info = VARIANTS[name];
    const mark = run.unexpected.length || run.missing.length ? ' ✗' : '';
    variantLines.push(
      `| \`${name}\`${mark} | ${info.requirements.join(', ')} | ${info.description.replaceAll('|', '\\|')} | ${info.failsOnly.join('<br>') || '(none)'} | ${run.failed.join('<br>') || '(none)'} | ${run.durationMs} |`,
    );
  }
  return [correctLine, '', ...lines, ...(variants.size ? ['', ...variantLines] : [])].join('\n');
}
