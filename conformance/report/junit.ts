/**
 * The JUnit XML report, generated from the JSON report alone: one testsuite
 * per spec section, one testcase per check; a failed MUST (or any failure in
 * strict mode) is a <failure>, a non-strict failure is reported in
 * <system-out> so CI dashboards show it without failing, and skipped and info
 * checks are <skipped> with their reason.
 */
import type { CheckResult, ConformanceReport } from '@stripe402/core';
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
  const fails = (c: CheckResult) => c.status === 'failed' && (c.severity === 'must' || report.strict === true);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = report.checks.length;
  const failures = report.checks.filter(fails).length;
  const skipped = report.checks.filter((c) => c.status === 'skipped' || c.status === 'info').length;
  out.push(
    `<testsuites name="stripe402 conformance v${report.specVersion}" tests="${total}" failures="${failures}" skipped="${skipped}" errors="0" time="${seconds(report.durationMs)}" timestamp="${xmlEscape(report.startedAt)}">`,
  );
  for (const [section, checks] of sections) {
    const name = `${section}. ${sectionTitle(section)}`;
    out.push(
      `  <testsuite name="${xmlEscape(name)}" tests="${checks.length}" failures="${checks.filter(fails).length}" skipped="${checks.filter((c) => c.status === 'skipped' || c.status === 'info').length}" errors="0" time="${seconds(checks.reduce((t, c) => t + c.durationMs, 0))}">`,
    );
    for (const check of checks) {
      const open = `    <testcase classname="${xmlEscape(`stripe402.${section}`)}" name="${xmlEscape(`${check.id} ${check.title}`)}" time="${seconds(check.durationMs)}"`;
      const detail = [`Requirement ${check.requirement.id}: ${check.requirement.text}`];
      if (check.expected) detail.push(`Expected: ${check.expected}`);
      if (check.actual) detail.push(`Actual: ${check.actual}`);
      if (check.property?.replay) detail.push(`Replay: ${check.property.replay}`);
      if (check.status === 'passed') {
        out.push(`${open}/>`);
      } else if (fails(check)) {
        out.push(`${open}>`, `      <failure message="${xmlEscape(check.expected ? `expected ${check.expected}` : 'failed')}" type="${check.severity}">${xmlEscape(detail.join('\n'))}</failure>`, '    </testcase>');
      } else if (check.status === 'failed') {
        out.push(`${open}>`, `      <system-out>${xmlEscape(`non-strict ${check.severity.toUpperCase()} failure\n${detail.join('\n')}`)}</system-out>`, '    </testcase>');
      } else {
        const reason = check.status === 'info' ? `info: ${check.reason ?? ''}` : check.reason ?? 'skipped';
        out.push(`${open}>`, `      <skipped message="${xmlEscape(reason)}"/>`, '    </testcase>');
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
