/**
 * The profile table and what a run claims from it: every check id of the
 * registry has exactly one category and every category names a check that
 * exists; a spec-strict difference never counts under `--profile v1` while a
 * defect always does; a strict check that failed on a 5xx counts as a safety
 * defect; and an unverified required check keeps its level and fails the run
 * under every profile unless it is spec-strict under `v1`.
 */
import { describe, expect, it } from 'vitest';
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { CHECK_CATEGORIES, categoryOf, isDefect, isUnverified, resultCategory } from '../profiles.ts';
import { exitCodeOf, listChecks } from '../runner.ts';

function result(id: string, status: CheckResult['status'], extra: Partial<CheckResult> = {}): CheckResult {
  return {
    id,
    section: id.split('/')[0]!,
    title: id,
    level: 'core',
    severity: 'must',
    requirement: { id: 'ENC-5', text: 'text' },
    status,
    durationMs: 1,
    ...extra,
  };
}

function report(profile: 'spec' | 'v1', checks: CheckResult[]): ConformanceReport {
  for (const check of checks) check.category = resultCategory(check);
  return {
    tool: { name: 'stripe402-conformance', version: '0' },
    specVersion: 1,
    target: 'http://127.0.0.1/api/joke',
    startedAt: '2026-11-22T00:00:00Z',
    durationMs: 1,
    level: 'core',
    profile,
    levelReached: 'none',
    seed: 1,
    strict: false,
    summary: { passed: 0, failed: 0, skipped: 0 },
    checks,
  };
}

describe('the profile table', () => {
  it('classifies every check of the registry', () => {
    expect(listChecks().filter((c) => CHECK_CATEGORIES[c.id] === undefined).map((c) => c.id)).toEqual([]);
  });

  it('classifies only checks that exist', () => {
    const ids = new Set(listChecks().map((c) => c.id));
    expect(Object.keys(CHECK_CATEGORIES).filter((id) => !ids.has(id))).toEqual([]);
  });

  it('refuses to guess the category of an unknown check', () => {
    expect(() => categoryOf('99/no-such-check')).toThrow(/no category/);
  });

  it('keeps every paywall check, and the money checks of the ledger, out of the strict category', () => {
    const strict = (id: string) => categoryOf(id) === 'strict';
    expect(listChecks().filter((c) => (c.section === '7' || c.section === '11') && strict(c.id)).map((c) => c.id)).toEqual([]);
    for (const id of ['5/charge-rounds-up', '8/concurrent-top-ups-charge-once', '10/declined-card-credits-nothing', '10/error-messages-carry-no-internals']) {
      expect(categoryOf(id)).toBe('safety');
    }
  });
});

describe('a run under --profile v1', () => {
  const strictFailure = () => result('3/rejects-stray-characters', 'failed', { actual: 'HTTP 200, payment-response {success true}' });

  it('does not count a failed spec-strict check, which the spec profile counts', () => {
    expect(isDefect(report('v1', [strictFailure()]).checks[0]!, 'v1', false)).toBe(false);
    expect(exitCodeOf(report('v1', [strictFailure(), result('3/challenge-header-is-standard-base64', 'passed')]))).toBe(0);
    expect(exitCodeOf(report('spec', [strictFailure()]))).toBe(1);
  });

  it('counts a failed safety or v1 check as a defect', () => {
    expect(exitCodeOf(report('v1', [result('7/head-not-served', 'failed', { actual: 'HTTP 200' })]))).toBe(1);
    expect(exitCodeOf(report('v1', [result('8/spend-deducts-amount', 'failed', { actual: 'HTTP 402' })]))).toBe(1);
  });

  it('counts a spec-strict check that failed on a 5xx as a safety defect', () => {
    const crashed = report('v1', [result('3/rejects-non-object-json', 'failed', { actual: 'HTTP 500, no payment-response' })]);
    expect(crashed.checks[0]!.category).toBe('safety');
    expect(exitCodeOf(crashed)).toBe(1);
  });

  it('counts a paywall variant refused with another status than the spec asks as a spec-strict difference, and a served one as a defect', () => {
    const refused = report('v1', [result('7/head-not-served', 'failed', { actual: 'HTTP 404' })]);
    expect(refused.checks[0]!.category).toBe('strict');
    expect(exitCodeOf(refused)).toBe(0);
    expect(report('v1', [result('7/head-not-served', 'failed', { actual: 'HTTP 200' })]).checks[0]!.category).toBe('safety');
  });

  it('lets an unverified spec-strict check pass, but not an unverified safety check', () => {
    const skipped = (id: string) => result(id, 'skipped', { skipKind: 'unverified', reason: 'needs more cards' });
    expect(isUnverified(report('v1', [skipped('8/idempotency-key-charges-once')]).checks[0]!, 'v1', false)).toBe(false);
    expect(exitCodeOf(report('v1', [skipped('8/concurrent-top-ups-charge-once')]))).toBe(1);
  });
});

describe('a run under the spec profile', () => {
  it('fails on an unverified required check and not on one that does not apply', () => {
    expect(exitCodeOf(report('spec', [result('8/rejects-top-up-above-maximum', 'skipped', { skipKind: 'not-applicable', reason: 'no maxTopUp' })]))).toBe(0);
    expect(exitCodeOf(report('spec', [result('8/rejects-top-up-above-maximum', 'skipped', { skipKind: 'unverified', reason: 'pricing' })]))).toBe(1);
  });

  it('does not fail on an unverified SHOULD check unless strict', () => {
    const should = result('5/advertises-max-top-up', 'skipped', { severity: 'should', skipKind: 'unverified', reason: 'x' });
    expect(exitCodeOf(report('spec', [should]))).toBe(0);
    expect(exitCodeOf({ ...report('spec', [should]), strict: true })).toBe(1);
  });
});
