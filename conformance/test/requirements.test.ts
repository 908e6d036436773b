/**
 * The checks and the spec agree: every quoted requirement sentence is the
 * spec's current text (through the generated table), every check cites a
 * requirement that exists with a matching strength, every check sits at the
 * level Table 14.1 gives its requirement, and ids are unique and stable in
 * form.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadRequirements } from '../../scripts/spec-requirements.ts';
import { TABLE_URL, buildRequirementTable, serialize } from '../gen-requirements.ts';
import { listChecks } from '../runner.ts';
import { requirementText } from '../requirements.ts';

/** Table 14.1 of spec/14-conformance-levels.md: requirement id -> the server levels listing it. */
function levelTable(): Map<string, Set<string>> {
  const text = readFileSync(new URL('../../spec/14-conformance-levels.md', import.meta.url), 'utf8');
  const levels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 7 || !/^[A-Z]+$/.test(cells[1] ?? '')) continue;
    (['core', 'ledger', 'extensions'] as const).forEach((level, i) => {
      for (const [, id] of (cells[2 + i] ?? '').matchAll(/\[([A-Z]+-\d+)\]/g)) {
        if (!levels.has(id!)) levels.set(id!, new Set());
        levels.get(id!)!.add(level);
      }
    });
  }
  return levels;
}

describe('the requirements the checks quote', () => {
  it('are the spec\'s current text (regenerate with npx tsx conformance/gen-requirements.ts)', async () => {
    expect(readFileSync(TABLE_URL, 'utf8')).toBe(serialize(await buildRequirementTable()));
  });

  it('exist in the spec for every check, quoted verbatim', async () => {
    const spec = await loadRequirements();
    for (const check of listChecks()) {
      expect(spec.has(check.requirement), `${check.id} cites ${check.requirement}`).toBe(true);
      expect(requirementText(check.requirement)).toBe(spec.get(check.requirement)!.text);
    }
  });

  it('are as strong as the severity of the checks citing them', async () => {
    const spec = await loadRequirements();
    for (const check of listChecks()) {
      const text = spec.get(check.requirement)!.text;
      if (check.severity === 'must') expect(text, check.id).toMatch(/\bMUST\b/);
      if (check.severity === 'should') expect(text, check.id).toMatch(/\bSHOULD\b/);
    }
  });

  it('put each check at the level Table 14.1 gives its requirement', () => {
    const table = levelTable();
    expect(table.size).toBeGreaterThan(40);
    for (const check of listChecks()) {
      const levels = table.get(check.requirement);
      if (!levels) continue; // untestable or info-only requirements (Section 14.3)
      expect([...levels], `${check.id} (${check.requirement})`).toContain(check.level);
    }
  });
});

describe('Table 14.1 and the checks', () => {
  it('cite every requirement of a server level, or Section 14.3 says why no check can', () => {
    const text = readFileSync(new URL('../../spec/14-conformance-levels.md', import.meta.url), 'utf8');
    const untestable = new Set([...(text.split(/^## 14\.3\./m)[1] ?? '').matchAll(/^\| \[([A-Z]+-\d+)\]/gm)].map((m) => m[1]));
    const cited = new Set(listChecks().map((c) => c.requirement));
    const uncovered = [...levelTable().keys()].filter((id) => !cited.has(id) && !untestable.has(id));
    expect(uncovered).toEqual([]);
  });
});

describe('the check registry', () => {
  it('has unique ids of the form <section>/<slug>, grouped in section order', () => {
    const checks = listChecks();
    const ids = checks.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9]+(\.[0-9]+)*\/[a-z0-9-]+$/);
    const sections = checks.map((c) => Number(c.section));
    expect(sections).toEqual([...sections].sort((a, b) => a - b));
  });

  it('has checks at every level and property checks among them', () => {
    const checks = listChecks();
    for (const level of ['core', 'ledger', 'extensions']) expect(checks.some((c) => c.level === level)).toBe(true);
    expect(checks.filter((c) => c.property).map((c) => c.id)).toEqual(['8/model-balances', '10/invalid-input-never-served']);
  });
});
