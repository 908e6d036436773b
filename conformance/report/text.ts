/**
 * The terminal report: section titles, one line per check (pass mark or
 * cross, id, title), the requirement with Expected/Actual under each failure,
 * replay details under a failed property, then the list of failures and the
 * totals with the time taken.
 */
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { sectionTitle } from '../requirements.ts';

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
  lines.push(bold(`stripe402 conformance v${report.specVersion}`) + dim(` · ${report.target} · level ${report.level} · seed ${report.seed}`));
  let section: string | undefined;
  for (const check of report.checks) {
    if (check.section !== section) {
      section = check.section;
      lines.push('', bold(`${section}. ${sectionTitle(section)}`));
    }
    const nonStrict = check.status === 'failed' && check.severity !== 'must';
    const mark =
      check.status === 'passed' ? green(MARKS.passed)
      : check.status === 'failed' ? (nonStrict ? yellow(MARKS.failed) : red(MARKS.failed))
      : check.status === 'info' ? MARKS.info
      : dim(MARKS.skipped);
    let line = `  ${mark} ${check.id}  ${check.title}`;
    if (check.status === 'skipped') line += dim(` (skipped: ${check.reason})`);
    if (check.status === 'info') line += dim(` (${check.reason})`);
    if (nonStrict) line += yellow(` (${check.severity.toUpperCase()}, ${report.strict ? 'strict' : 'non-strict'})`);
    lines.push(line);
    if (check.status === 'failed') lines.push(...failureDetails(check).map((l) => '      ' + l));
  }
  const failures = report.checks.filter((c) => c.status === 'failed');
  if (failures.length) {
    lines.push('', bold('Failures:'));
    for (const c of failures) lines.push(`  ${c.id} (${c.requirement.id}, ${c.severity.toUpperCase()})`);
  }
  if (report.harnessErrors?.length) {
    lines.push('', bold('Harness errors:'));
    for (const e of report.harnessErrors) lines.push(`  ${e}`);
  }
  const s = report.summary;
  const totals = `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped` + (s.info ? `, ${s.info} info` : '') + (s.nonStrict ? ` (${s.nonStrict} non-strict)` : '');
  lines.push('', `${totals} in ${(report.durationMs / 1000).toFixed(1)} s · level reached: ${report.levelReached}`);
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
