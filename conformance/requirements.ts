/**
 * The requirement sentences the checks quote, verbatim from spec/, through
 * the table conformance/gen-requirements.ts generates (a test keeps it equal
 * to the spec). Reading a JSON table keeps the CLI working from an installed
 * package without a Markdown parser.
 */
import { readFileSync } from 'node:fs';

interface RequirementTable {
  sections: Record<string, string>;
  requirements: Record<string, { text: string; section: string; level: 'MUST' | 'SHOULD' | 'MAY' }>;
}

let table: RequirementTable | undefined;

function load(): RequirementTable {
  table ??= JSON.parse(readFileSync(new URL('./requirements.generated.json', import.meta.url), 'utf8')) as RequirementTable;
  return table;
}

/** The text of a requirement, or undefined when the spec does not define the id. */
export function requirementText(id: string): string | undefined {
  return load().requirements[id]?.text;
}

/** The title of a top-level spec section (`3` -> `Headers and encoding`). */
export function sectionTitle(section: string): string {
  return load().sections[section] ?? `Section ${section}`;
}
