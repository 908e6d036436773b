/**
 * The machine-readable reports: JUnit stays well-formed whatever the text it
 * carries (markup characters, control characters), failures and non-strict
 * failures land where CI tools look for them, a required check left
 * unverified fails like a defect in every form, a v1-profile run keeps its
 * spec-strict differences apart from its defects, and the badge and its
 * shields.io endpoint say the spec version, the level reached and the date.
 */
import { describe, expect, it } from 'vitest';
import { validateConformanceReport, type CheckResult, type ConformanceReport } from '@stripe402/core';
import { badgeContent, renderBadgeSvg, shieldsEndpoint } from '../report/badge.ts';
import { renderJUnit, xmlEscape } from '../report/junit.ts';
import { renderText } from '../report/text.ts';
import { parseXml } from './xml.ts';

const nasty = 'Expected <payment-required> & "payment-response" \'here\' \u0000\u0007\u001b[31m \uFFFE';

function check(id: string, status: CheckResult['status'], severity: CheckResult['severity'], extra: Partial<CheckResult> = {}): CheckResult {
  return {
    id,
    section: id.split('/')[0]!,
    title: `title of ${id} ${nasty}`,
    level: 'core',
    severity,
    requirement: { id: 'ENC-5', text: `requirement ${nasty}` },
    status,
    durationMs: 3,
    ...extra,
  };
}

function report(levelReached: ConformanceReport['levelReached'], checks: CheckResult[], strict = false, extra: Partial<ConformanceReport> = {}): ConformanceReport {
  const value: ConformanceReport = {
    tool: { name: 'stripe402-conformance', version: '0.1.0' },
    specVersion: 1,
    target: 'http://127.0.0.1:4021/api/joke',
    startedAt: '2026-11-22T10:00:00.000Z',
    durationMs: 1500,
    level: 'all',
    levelReached,
    seed: 7,
    strict,
    summary: {
      passed: checks.filter((c) => c.status === 'passed').length,
      failed: checks.filter((c) => c.status === 'failed').length,
      skipped: checks.filter((c) => c.status === 'skipped').length,
    },
    checks,
    ...extra,
  };
  expect(validateConformanceReport(value).ok).toBe(true);
  return value;
}

const sample = () =>
  report('none', [
    check('3/a', 'passed', 'must'),
    check('3/b', 'failed', 'must', { expected: nasty, actual: nasty, property: { seed: 7, path: '1:2', counterexample: nasty, replay: 'npx conformance --seed 7' } }),
    check('4/c', 'failed', 'should', { expected: 'x', actual: 'y' }),
    check('4/d', 'skipped', 'must', { reason: nasty, skipKind: 'not-applicable' }),
    check('13/e', 'info', 'info', { reason: 'observed' }),
  ]);

describe('the JUnit report', () => {
  it('is well-formed XML with one testsuite per section even when texts hold markup and control characters', () => {
    const xml = parseXml(renderJUnit(sample()));
    expect(xml.name).toBe('testsuites');
    expect(xml.children.map((s) => s.attributes.name)).toEqual(['3. Headers and encoding', '4. Messages', '13. Security considerations']);
    expect(xml.children.map((s) => s.children.length)).toEqual([2, 2, 1]);
  });

  it('reports a MUST failure as <failure>, a non-strict SHOULD failure as output, skips and info as <skipped>', () => {
    const xml = parseXml(renderJUnit(sample()));
    const [encoding, messages, security] = xml.children as [typeof xml, typeof xml, typeof xml];
    expect(encoding.children[1]!.children[0]!.name).toBe('failure');
    expect(encoding.children[1]!.children[0]!.text).toContain('Replay: npx conformance --seed 7');
    expect(messages.children[0]!.children[0]!.name).toBe('system-out');
    expect(messages.children[1]!.children[0]!.name).toBe('skipped');
    expect(security.children[0]!.children[0]!.attributes.message).toBe('info: observed');
    expect(xml.attributes.failures).toBe('1');
  });

  it('turns a SHOULD failure into <failure> in strict mode', () => {
    const strict = { ...sample(), strict: true };
    const xml = parseXml(renderJUnit(strict));
    expect(xml.children[1]!.children[0]!.children[0]!.name).toBe('failure');
    expect(xml.attributes.failures).toBe('2');
  });

  it('escapes the five markup characters and replaces characters XML forbids', () => {
    expect(xmlEscape('<a href="x">&\'\u0001</a>')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;\uFFFD&lt;/a&gt;');
  });
});

describe('the badge', () => {
  it('names the spec version, the level reached and the date, in SVG and as a shields.io endpoint', () => {
    const passing = report('ledger', [check('3/a', 'passed', 'must')]);
    expect(badgeContent(passing)).toMatchObject({ label: 'stripe402 v1', message: 'ledger · 2026-11-22' });
    expect(shieldsEndpoint(passing)).toEqual({ schemaVersion: 1, label: 'stripe402 v1', message: 'ledger · 2026-11-22', color: '97ca00' });
    const svg = parseXml(renderBadgeSvg(passing));
    expect(svg.name).toBe('svg');
    expect(svg.attributes['aria-label']).toBe('stripe402 v1: ledger · 2026-11-22');
  });

  it('says failing in red when no level was reached', () => {
    const failing = sample();
    expect(shieldsEndpoint(failing)).toMatchObject({ message: 'failing · 2026-11-22', color: 'e05d44' });
    expect(() => parseXml(renderBadgeSvg(failing))).not.toThrow();
  });
});

describe('the text report', () => {
  it('prints section titles, a line per check, Expected/Actual and replay details for failures, and the totals', () => {
    const text = renderText(sample());
    expect(text).toContain('3. Headers and encoding');
    expect(text).toMatch(/✓ 3\/a /);
    expect(text).toMatch(/✗ 3\/b /);
    expect(text).toContain('Requirement ENC-5: requirement');
    expect(text).toContain(`Expected: ${nasty}`);
    expect(text).toContain('Seed: 7  Path: 1:2');
    expect(text).toContain('Replay: npx conformance --seed 7');
    expect(text).toContain('(SHOULD, non-strict)');
    expect(text).toContain('Failures:\n  3/b (ENC-5, MUST)\n  4/c (ENC-5, SHOULD)');
    expect(text).toContain('1 passed, 2 failed, 1 skipped in 1.5 s');
  });
});

/** A run at level ledger whose ledger check could not run for want of a Stripe backend. */
const unverifiedRun = () =>
  report('core', [check('3/a', 'passed', 'must'), check('11/x', 'skipped', 'must', { level: 'ledger', reason: 'needs access to the Stripe backend', skipKind: 'unverified' })], false, {
    unverified: ['11/x'],
  });

/** A v1-profile run with one spec-strict difference and one money defect. */
const v1Run = () =>
  report(
    'none',
    [
      check('3/a', 'passed', 'must', { category: 'v1' }),
      check('3/rejects-stray-characters', 'failed', 'must', { category: 'strict', expected: 'invalid_payment', actual: 'HTTP 200' }),
      check('7/head-not-served', 'failed', 'must', { category: 'safety', expected: 'the challenge', actual: 'HTTP 200' }),
    ],
    false,
    { profile: 'v1' },
  );

describe('a required check left unverified', () => {
  it('is a <failure> of type unverified in JUnit, not a <skipped>', () => {
    const xml = parseXml(renderJUnit(unverifiedRun()));
    const ledger = xml.children[1]!.children[0]!;
    expect(ledger.children.find((c) => c.name === 'failure')!.attributes.type).toBe('unverified');
    expect(xml.attributes.failures).toBe('1');
  });

  it('is listed in the text with its reason, and the level line says how many', () => {
    const text = renderText(unverifiedRun());
    expect(text).toContain('? 11/x');
    expect(text).toContain('Unverified (1 required checks did not run; their levels are not reached):\n  11/x (ENC-5, ledger): needs access to the Stripe backend');
    expect(text).toContain('level reached: core (1 unverified)');
  });

  it('is counted on the badge next to the level reached', () => {
    expect(shieldsEndpoint(unverifiedRun()).message).toBe('core · 1 unverified · 2026-11-22');
  });

  it('is not confused with a check that does not apply, which stays <skipped>', () => {
    const xml = parseXml(renderJUnit(sample()));
    expect(xml.children[1]!.children[1]!.children[0]!.attributes.message).toMatch(/^not applicable: /);
  });
});

describe('a v1-profile report', () => {
  it('keeps spec-strict differences out of the JUnit failures and marks them in system-out', () => {
    const xml = parseXml(renderJUnit(v1Run()));
    expect(xml.attributes.failures).toBe('1');
    const [encoding, paywall] = xml.children as [typeof xml, typeof xml];
    const strict = encoding.children[1]!;
    expect(strict.children.map((c) => c.name)).toEqual(['properties', 'system-out']);
    expect(strict.children[1]!.text).toMatch(/^spec-strict difference from v1/);
    expect(paywall.children[0]!.children.map((c) => c.name)).toEqual(['properties', 'failure']);
  });

  it('lists defects and spec-strict differences apart in the text', () => {
    const text = renderText(v1Run());
    expect(text).toContain('· profile v1 ·');
    expect(text).toContain('Failures:\n  7/head-not-served (ENC-5, MUST, safety)\n');
    expect(text).toContain('Spec-strict differences (1; not defects under profile v1):\n  3/rejects-stray-characters (ENC-5)');
    expect(text).toContain('≠ 3/rejects-stray-characters');
  });

  it('says v1 profile on the badge', () => {
    expect(badgeContent(report('ledger', [check('3/a', 'passed', 'must')], false, { profile: 'v1' })).message).toBe('v1 profile ledger · 2026-11-22');
  });
});
