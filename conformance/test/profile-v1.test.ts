/**
 * `--profile v1` against a stripe402 v1 server (the imitation the client
 * tests use: v1's lax decoding, v1 error bodies without payment headers, no
 * extensions): the spec profile fails it on every spec-strict difference,
 * the v1 profile reports those apart and counts only failures of v1 promises
 * and of the money and safety rules; the same server with the paywall
 * defect of deployed v1 servers (Express's lenient routing) fails the v1
 * profile through the paywall checks that name the rule; a hardened v1
 * deployment passes it (at most at level ledger: v1 has no extensions), and
 * the plain one fails it on its crash on a JSON `null` payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '@stripe402/core';
import { categoryOf } from '../profiles.ts';
import { exitCodeOf, runConformance } from '../runner.ts';
import { startV1Target, type V1Target } from './v1-targets.ts';

async function judge(target: V1Target, profile: 'spec' | 'v1'): Promise<ConformanceReport> {
  return runConformance({
    target: target.url,
    level: 'all',
    stripeUrl: target.stripeUrl,
    stripeKey: target.stripeKey,
    seed: 402,
    runs: 10,
    profile,
    ...(target.failingRoute ? { failingRoute: target.failingRoute } : {}),
  });
}


const failed = (report: ConformanceReport) => report.checks.filter((c) => c.status === 'failed');

describe('a stripe402 v1 server', () => {
  let target: V1Target;
  let spec: ConformanceReport;
  let v1: ConformanceReport;
  beforeAll(async () => {
    target = await startV1Target({ serialized: true });
    spec = await judge(target, 'spec');
    v1 = await judge(target, 'v1');
  }, 120_000);
  afterAll(async () => {
    await target?.close();
  });

  it('fails the spec profile on the differences Table 15.2 lists', () => {
    expect(exitCodeOf(spec)).toBe(1);
    const ids = failed(spec).map((c) => c.id);
    for (const id of ['3/rejects-stray-characters', '3/challenge-not-stored', '4/rejects-payload-without-ids', '5/top-up-metadata-names-client-and-units']) {
      expect(ids).toContain(id);
    }
    expect(spec.summary.defects).toBe(failed(spec).filter((c) => c.severity === 'must').length);
  });

  it('reports those differences apart under --profile v1, never as defects', () => {
    const differences = failed(v1).filter((c) => c.category === 'strict');
    expect(differences.length).toBeGreaterThanOrEqual(10);
    expect(v1.summary.strictDifferences).toBe(differences.length);
    expect(v1.profile).toBe('v1');
    // A defect is a failed MUST of the v1 or safety category, and nothing else.
    expect(v1.summary.defects).toBe(failed(v1).filter((c) => c.category !== 'strict' && c.severity === 'must').length);
    expect(v1.summary.defects).toBeLessThan(spec.summary.defects!);
  });

  it('classifies every result by the one table, but for a 5xx answer and a paywall variant refused another way', () => {
    for (const check of v1.checks) {
      const fromTable = categoryOf(check.id);
      if (check.category === fromTable) continue;
      const seen = { id: check.id, category: check.category, actual: check.actual };
      if (check.category === 'safety') expect(seen).toMatchObject({ actual: expect.stringMatching(/HTTP 5\d\d/) });
      else expect(seen).toMatchObject({ id: expect.stringMatching(/^7\/.*-not-served$/), category: 'strict', actual: expect.not.stringMatching(/HTTP 2\d\d/) });
    }
  });

  it('does not count its 404 to HEAD, which serves nothing, as a defect', () => {
    expect(v1.checks.find((c) => c.id === '7/head-not-served')).toMatchObject({ status: 'failed', category: 'strict', actual: 'HTTP 404' });
  });
});

describe('a stripe402 v1 server whose router ignores letter case and a trailing slash and answers HEAD as GET', () => {
  let target: V1Target;
  let report: ConformanceReport;
  beforeAll(async () => {
    target = await startV1Target({ serialized: true, lenientRouting: true });
    report = await judge(target, 'v1');
  }, 120_000);
  afterAll(async () => {
    await target?.close();
  });

  it('fails the v1 profile through the paywall checks, as safety defects', () => {
    const defects = failed(report).filter((c) => c.category === 'safety').map((c) => c.id);
    expect(defects).toEqual(expect.arrayContaining(['7/trailing-slash-not-served', '7/letter-case-not-served', '7/head-not-served']));
    expect(report.checks.find((c) => c.id === '7/head-not-served')!.actual).toMatch(/HTTP 200/);
    expect(exitCodeOf(report)).toBe(1);
  });
});

describe('a v1 deployment judged by --profile v1', () => {
  let hardened: V1Target;
  let plain: V1Target;
  let passing: ConformanceReport;
  let crashing: ConformanceReport;
  beforeAll(async () => {
    [hardened, plain] = await Promise.all([startV1Target({ serialized: true, hardened: true }), startV1Target({ serialized: true })]);
    passing = await judge(hardened, 'v1');
    crashing = await judge(plain, 'v1');
  }, 180_000);
  afterAll(async () => {
    await hardened?.close();
    await plain?.close();
  });

  it('passes with no defect and no unverified check when it serializes top-ups, refuses a null payload and restores a failed handler\'s spend', () => {
    expect(failed(passing).filter((c) => c.category !== 'strict').map((c) => `${c.id}: ${c.actual}`)).toEqual([]);
    expect(passing.unverified).toEqual([]);
    expect(passing.summary.strictDifferences).toBeGreaterThan(10);
    expect(passing.levelReached).toBe('ledger');
    expect(exitCodeOf(passing)).toBe(0);
  });

  it('fails as a safety defect when a JSON null payload makes it answer 500', () => {
    const crash = crashing.checks.find((c) => c.id === '3/rejects-non-object-json')!;
    expect(crash).toMatchObject({ status: 'failed', category: 'safety', actual: expect.stringMatching(/HTTP 500/) });
    expect(exitCodeOf(crashing)).toBe(1);
  });
});
