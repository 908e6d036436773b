/**
 * Regenerates conformance/requirements.generated.json from spec/: every
 * requirement's text (plain, as scripts/spec-requirements.ts extracts it) and
 * the title of every chapter. The conformance CLI reads that table instead of
 * parsing Markdown at run time, and conformance/test/requirements.test.ts
 * fails whenever the table and the spec disagree, so the spec stays the one
 * source of every quoted sentence.
 *
 *   npx tsx conformance/gen-requirements.ts
 */
import { writeFile } from 'node:fs/promises';
import { loadRequirements, loadSections } from '../scripts/spec-requirements.ts';

/** The table as it should be for the current spec. */
export async function buildRequirementTable(): Promise<RequirementTable> {
  const sections: Record<string, string> = {};
  for (const section of await loadSections()) {
    if (section.depth === 1) sections[section.number] = section.title;
  }
  const requirements: RequirementTable['requirements'] = {};
  for (const [id, requirement] of await loadRequirements()) {
    requirements[id] = { text: requirement.text, section: requirement.section, level: requirement.level };
  }
  return { sections, requirements };
}

/** The shape of requirements.generated.json. */
export interface RequirementTable {
  sections: Record<string, string>;
  requirements: Record<string, { text: string; section: string; level: 'MUST' | 'SHOULD' | 'MAY' }>;
}

export const TABLE_URL = new URL('./requirements.generated.json', import.meta.url);

export function serialize(table: RequirementTable): string {
  return JSON.stringify(table, null, 2) + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(TABLE_URL, serialize(await buildRequirementTable()));
  console.log(`wrote ${TABLE_URL.pathname}`);
}
