/**
 * The terminal report: section titles, one line per check (pass mark or
 * cross, id, title), the requirement with Expected/Actual under each failure,
 * replay details under a failed property, then the defects, the required
 * checks left unverified, under `--profile v1` the spec-strict differences
 * apart from the defects, and the totals with the level reached and the time
 * taken.
 */
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { sectionTitle } from '../requirements.ts';
import { isUnverified } from '../profiles.ts';

export interface TextOptions {
  color: boolean;
}

const MARKS: Record<CheckResult['status'], string> = { passed: '✓', failed: '✗', skipped: '-', info: 'i' };

/** Renders a report as the CLI prints it. */
export function renderText(report: ConformanceReport, options: TextOptions = { color: false }): string {
  const paint = (code: number, text: string) => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const green = (t: string) => paint(32, t);
  const red = (t: string) => paint(31, t);
  const yellow = (t: string) => paint(33, t);
  const dim = (t: string) => paint(2, t);
  const bold = (t: string) => paint(1, t);

  const lines: string[] = [];
  const profile = report.profile ?? 'spec';
  const strict = report.strict === true;
  const difference = (c: CheckResult) => profile === 'v1' && c.status === 'failed' && c.category === 'strict';
  lines.push(
    bold(`stripe402 conformance v${report.specVersion}`) + dim(` · ${report.target} · level ${report.level}${profile === 'v1' ? ' · profile v1' : ''} · seed ${report.seed}`),
  );
  let section: string | undefined;
  for (const check of report.checks) {
    if (check.section !== section) {
      section = check.section;
      lines.push('', bold(`${section}. ${sectionTitle(section)}`));
    }
    const nonStrict = check.status === 'failed' && check.severity !== 'must';
    const mark =
      check.status === 'passed' ? green(MARKS.passed)
      : difference(check) ? yellow('≠')
      : check.status === 'failed' ? (nonStrict ? yellow(MARKS.failed) : red(MARKS.failed))
      : check.status === 'info' ? MARKS.info
      : isUnverified(check, profile, strict) ? yellow('?')
      : dim(MARKS.skipped);
    let line = `  ${mark} ${check.id}  ${check.title}`;
    if (check.status === 'skipped') {
      const kind = isUnverified(check, profile, strict) ? 'unverified' : check.skipKind === 'not-applicable' ? 'not applicable' : 'skipped';
      line += (kind === 'unverified' ? yellow : dim)(` (${kind}: ${check.reason})`);
    }
    if (difference(check)) line += yellow(' (spec-strict difference from v1)');
    if (check.status === 'info') line += dim(` (${check.reason})`);
    else if (nonStrict) line += yellow(` (${check.severity.toUpperCase()}, ${report.strict ? 'strict' : 'non-strict'})`);
    lines.push(line);
    if (check.status === 'failed') lines.push(...failureDetails(check).map((l) => '      ' + l));
  }
  const failures = report.checks.filter((c) => c.status === 'failed' && !difference(c));
  if (failures.length) {
    lines.push('', bold('Failures:'));
    for (const c of failures) lines.push(`  ${c.id} (${c.requirement.id}, ${c.severity.toUpperCase()}${profile === 'v1' ? `, ${c.category}` : ''})`);
  }
  const unverified = report.checks.filter((c) => isUnverified(c, profile, strict));
  if (unverified.length) {
    lines.push('', bold(`Unverified (${unverified.length} required checks did not run; their levels are not reached):`));
    for (const c of unverified) lines.push(`  ${c.id} (${c.requirement.id}, ${c.level}): ${c.reason}`);
  }
  const differences = report.checks.filter(difference);
  if (differences.length) {
    lines.push('', bold(`Spec-strict differences (${differences.length}; not defects under profile v1):`));
    for (const c of differences) lines.push(`  ${c.id} (${c.requirement.id})`);
  }
  if (report.harnessErrors?.length) {
    lines.push('', bold('Harness errors:'));
    for (const e of report.harnessErrors) lines.push(`  ${e}`);
  }
  const s = report.summary;
  const totals = `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped` + (s.info ? `, ${s.info} info` : '') + (s.nonStrict ? ` (${s.nonStrict} non-strict)` : '');
  const claim = report.partial ? 'none (--only ran part of the suite)' : report.levelReached + (unverified.length ? ` (${unverified.length} unverified)` : '');
  const v1 = profile === 'v1' ? ` · profile v1: ${s.defects ?? 0} defects, ${s.strictDifferences ?? 0} spec-strict differences` : '';
  lines.push('', `${totals} in ${(report.durationMs / 1000).toFixed(1)} s${v1} · level reached: ${claim}`);
  return lines.join('\n') + '\n';
}

function failureDetails(check: CheckResult): string[] {
  const out = [`Requirement ${check.requirement.id}: ${check.requirement.text}`];
  if (check.expected) out.push(`Expected: ${check.expected}`);
  if (check.actual) out.push(`Actual:   ${check.actual}`);
  if (check.property) {
    out.push(`Seed: ${check.property.seed}  Path: ${check.property.path}`);
    if (check.property.counterexample) out.push(`Counterexample: ${check.property.counterexample}`);
    if (check.property.replay) out.push(`Replay: ${check.property.replay}`);
  }
  return out;
}
