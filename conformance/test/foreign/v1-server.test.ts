/**
 * The conformance suite against a stripe402 v1 server it has never seen
 * (v1-server.ts): each of v1's known defects, switched on alone, must fail a
 * check that cites the rule the defect breaks, with a failure the same
 * server without the defect does not produce (so the failure is the
 * defect's, not the suite's, nor one of v1's spec-strict differences); under
 * the v1 profile those checks must not fail the defect-free server at all.
 * The defect-free v1 server, judged with the v1 profile,
 * must pass with no MUST failure: v1's wire is legal there (issue 15, items
 * 4 and 5, and the acceptance's "defective ones must fail with the defect
 * named").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, ConformanceReport } from '@stripe402/core';
import { listChecks, type ConformanceOptions } from '../../runner.ts';
import { startEmulator, type Emulator } from '@stripe402/stripe-emulator';
import { countsAsDefect, explain, judge, mustFailures, startV1Target } from './targets.ts';
import { V1_DEFECTS, type V1Defect, type V1Route } from './v1-server.ts';

/** The profile option of issue 15 item 4, as the runner will take it. */
const PROFILE_V1 = { profile: 'v1' } as Partial<ConformanceOptions>;

/**
 * The rules each defect breaks, as groups: for every group, a check citing
 * one of its rules must fail with the defect in a way the defect-free server
 * does not, and, under the v1 profile, no check citing them may fail without
 * it. A group with several rules accepts whichever of them the suite (or its
 * v1 profile) judges the defect by.
 */
const DEFECT_RULES: Record<V1Defect, { groups: string[][]; route?: V1Route }> = {
  paywallVariants: { groups: [['PAY-1'], ['PAY-2']] },
  centsForEveryCurrency: { groups: [['UNIT-2']], route: { amount: 10_000, currency: 'jpy', minTopUp: 1_000_000, description: 'A joke in yen' } },
  noRestoreOn5xx: { groups: [['PROC-10']] },
  // ERR-6 is the rule; the check that sends JSON null is the one for ENC-7, which reports the 500.
  nullPayload500: { groups: [['ERR-6', 'ENC-7']] },
  fractionalTopUpLost: { groups: [['MSG-3', 'UNIT-4', 'LEDG-5']] },
  concurrentTopUps: { groups: [['PROC-7']] },
  internalErrorText: { groups: [['ERR-4']] },
};

/** The ids of every check citing one of `requirements`. */
function checksCiting(requirements: string[]): string[] {
  return listChecks()
    .filter((check) => requirements.includes(check.requirement))
    .map((check) => check.id);
}

/** A failed check and what it observed, without the ids and amounts that differ from run to run. */
const signature = (check: CheckResult): string =>
  `${check.id} ${(check.actual ?? '').replace(/[0-9a-f]{64}/g, '<client>').replace(/\b(pi|pm|cus|req)_[A-Za-z0-9]+/g, '<$1>').replace(/[0-9a-f]{12}…/g, '<client>').replace(/\d{4,}/g, '<n>')}`;

const failedCiting = (report: ConformanceReport, requirement: string): CheckResult[] =>
  report.checks.filter((c) => c.requirement.id === requirement && countsAsDefect(report, c));

describe('the suite against a stripe402 v1 server it has never seen', () => {
  let emulator: Emulator;
  /** Whether the runner knows profiles: a report it writes under one names it. */
  let profiles = false;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    const target = await startV1Target(emulator, []);
    try {
      const probe = await judge(emulator, target, { ...PROFILE_V1, only: ['13/'] });
      profiles = (probe as { profile?: unknown }).profile === 'v1';
    } finally {
      await target.close();
    }
  });
  afterAll(async () => {
    await emulator?.close();
  });

  async function run(defects: V1Defect[], route: V1Route | undefined, extra: Partial<ConformanceOptions>): Promise<ConformanceReport> {
    const target = await startV1Target(emulator, defects, route);
    try {
      return await judge(emulator, target, { seed: 402, ...(profiles ? PROFILE_V1 : {}), ...extra });
    } finally {
      await target.close();
    }
  }

  for (const [defect, { groups, route }] of Object.entries(DEFECT_RULES) as [V1Defect, (typeof DEFECT_RULES)[V1Defect]][]) {
    const named = groups.map((group) => group.join(' or ')).join(' and ');
    it(`names the defect "${V1_DEFECTS[defect]}" through a check citing ${named}`, async () => {
      // The whole suite, not only these checks: some judge what earlier checks observed (charges, error messages).
      const rules = groups.flat();
      expect(checksCiting(rules), `checks citing ${rules.join(', ')}`).not.toEqual([]);
      const broken = await run([defect], route, {});
      const fixed = await run([], route, {});
      // A failure the defect-free server does not produce (same check, same observation): the defect's own.
      const baseline = new Set(fixed.checks.filter((c) => countsAsDefect(fixed, c)).map(signature));
      for (const group of groups) {
        const failed = group.flatMap((requirement) => failedCiting(broken, requirement)).filter((c) => !baseline.has(signature(c)));
        expect(failed.map((c) => c.id), `a failed check citing ${group.join(' or ')} that the defect-free server does not fail alike; the run said:\n${explain(broken.checks.filter((c) => group.includes(c.requirement.id)))}`).not.toEqual([]);
      }
      // Under the v1 profile the defect-free server keeps every money and safety rule: none of these may fail it.
      if (profiles) {
        const falseFailures = rules.flatMap((requirement) => failedCiting(fixed, requirement));
        expect(falseFailures.map((c) => c.id), `the same checks fail the server without the defect:\n${explain(falseFailures)}`).toEqual([]);
      }
    }, 120_000);
  }

  it('finds every defect at once in v1 as deployed', async () => {
    const report = await run(Object.keys(V1_DEFECTS) as V1Defect[], undefined, {});
    const missed = Object.values(DEFECT_RULES)
      .flatMap(({ groups, route }) => (route ? [] : groups))
      .filter((group) => group.every((requirement) => failedCiting(report, requirement).length === 0))
      .map((group) => group.join(' or '));
    expect(missed, `rules with no failed check; the run said:\n${explain(report.checks.filter((c) => c.status !== 'passed'))}`).toEqual([]);
  }, 120_000);

  it('passes the defect-free v1 server under the v1 profile with no MUST failure', async (context) => {
    if (!profiles) context.skip('the runner has no v1 profile yet (issue 15 item 4): its reports name no profile');
    const report = await run([], undefined, {});
    expect(explain(mustFailures(report))).toBe('');
  }, 120_000);
});
