/**
 * The JUnit XML report, generated from the JSON report alone: one testsuite
 * per spec section, one testcase per check; a failed MUST (or any failure in
 * strict mode) that counts under the profile is a <failure>, and so is a
 * required check left unverified (its level is not reached); a non-strict
 * failure and, under `--profile v1`, a spec-strict difference are reported in
 * <system-out> so CI dashboards show them without failing; inapplicable,
 * other skipped and info checks are <skipped> with their reason. Each
 * testcase carries the check's category as a property.
 */
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { isDefect, isUnverified } from '../profiles.ts';
import { sectionTitle } from '../requirements.ts';

/** XML-escapes text for element content and attribute values, dropping characters XML 1.0 forbids. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Renders the JUnit XML document. */
export function renderJUnit(report: ConformanceReport): string {
  const sections = new Map<string, CheckResult[]>();
  for (const check of report.checks) {
    const list = sections.get(check.section) ?? [];
    list.push(check);
    sections.set(check.section, list);
  }
  const profile = report.profile ?? 'spec';
  const strict = report.strict === true;
  const fails = (c: CheckResult) => isDefect(c, profile, strict) || isUnverified(c, profile, strict);
  const skips = (c: CheckResult) => !fails(c) && (c.status === 'skipped' || c.status === 'info');
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = report.checks.length;
  const failures = report.checks.filter(fails).length;
  const skipped = report.checks.filter(skips).length;
  out.push(
    `<testsuites name="stripe402 conformance v${report.specVersion}" tests="${total}" failures="${failures}" skipped="${skipped}" errors="0" time="${seconds(report.durationMs)}" timestamp="${xmlEscape(report.startedAt)}">`,
  );
  for (const [section, checks] of sections) {
    const name = `${section}. ${sectionTitle(section)}`;
    out.push(
      `  <testsuite name="${xmlEscape(name)}" tests="${checks.length}" failures="${checks.filter(fails).length}" skipped="${checks.filter(skips).length}" errors="0" time="${seconds(checks.reduce((t, c) => t + c.durationMs, 0))}">`,
    );
    for (const check of checks) {
      const open = `    <testcase classname="${xmlEscape(`stripe402.${section}`)}" name="${xmlEscape(`${check.id} ${check.title}`)}" time="${seconds(check.durationMs)}"`;
      const detail = [`Requirement ${check.requirement.id}: ${check.requirement.text}`];
      if (check.expected) detail.push(`Expected: ${check.expected}`);
      if (check.actual) detail.push(`Actual: ${check.actual}`);
      if (check.property?.replay) detail.push(`Replay: ${check.property.replay}`);
      const properties = check.category ? `      <properties><property name="category" value="${check.category}"/></properties>` : undefined;
      const body = (...lines: string[]) => out.push(`${open}>`, ...(properties ? [properties] : []), ...lines, '    </testcase>');
      if (check.status === 'passed') {
        if (properties) body();
        else out.push(`${open}/>`);
      } else if (check.status === 'skipped' && fails(check)) {
        body(`      <failure message="${xmlEscape(`unverified: ${check.reason ?? 'skipped'}`)}" type="unverified">${xmlEscape(`${detail.join('\n')}\nUnverified: ${check.reason ?? ''}`)}</failure>`);
      } else if (fails(check)) {
        body(`      <failure message="${xmlEscape(check.expected ? `expected ${check.expected}` : 'failed')}" type="${check.severity}">${xmlEscape(detail.join('\n'))}</failure>`);
      } else if (check.status === 'failed') {
        const what = profile === 'v1' && check.category === 'strict' ? 'spec-strict difference from v1' : `non-strict ${check.severity.toUpperCase()} failure`;
        body(`      <system-out>${xmlEscape(`${what}\n${detail.join('\n')}`)}</system-out>`);
      } else {
        const reason =
          check.status === 'info' ? `info: ${check.reason ?? ''}`
          : check.skipKind === 'not-applicable' ? `not applicable: ${check.reason ?? ''}`
          : check.reason ?? 'skipped';
        body(`      <skipped message="${xmlEscape(reason)}"/>`);
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}
