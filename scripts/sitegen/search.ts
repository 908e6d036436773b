/**
 * The search index, built at site build time: every spec section (with the
 * text under its heading), every requirement, schema, vector file and
 * conformance check, each with the site-root relative URL of its anchor.
 * It is written twice: as search-index.json for tools, and as
 * search-index.js (one assignment) that assets/site.js loads with a script
 * tag, which also works when the site is opened from file:// where fetch()
 * of a local file is refused.
 */
import type { CheckEntry } from './checks.ts';
import { CHECKS_PAGE, checkAnchor } from './checks.ts';
import type { SiteContext } from './context.ts';
import { truncate } from './context.ts';
import type { SchemaDoc } from './schemas.ts';
import type { RenderedSpecPage } from './spec.ts';
import type { VectorFile } from './vectors.ts';
import { requirementAnchor } from '../spec-requirements.ts';

export type SearchKind = 'section' | 'requirement' | 'schema' | 'vector' | 'check';

/** One entry; short keys keep the file small. */
export interface SearchEntry {
  /** kind */
  k: SearchKind;
  /** title: a heading, a requirement id, a schema title, a file name, a check id */
  t: string;
  /** context shown under the title: the section, the level, the file */
  s: string;
  /** text searched and quoted in results */
  x: string;
  /** site-root relative URL with fragment */
  u: string;
}

export interface SearchSources {
  site: SiteContext;
  spec: RenderedSpecPage[];
  schemas: SchemaDoc[];
  vectors: VectorFile[];
  checks: CheckEntry[];
}

export function buildSearchIndex({ site, spec, schemas, vectors, checks }: SearchSources): SearchEntry[] {
  const entries: SearchEntry[] = [];
  for (const page of spec) {
    for (const block of page.rendered.blocks) {
      entries.push({ k: 'section', t: block.title, s: page.title, x: truncate(block.text, 600), u: `${page.page}#${block.anchor}` });
    }
  }
  for (const requirement of site.requirements.values()) {
    entries.push({
      k: 'requirement',
      t: requirement.id,
      s: `${requirement.section}. ${requirement.sectionTitle} · ${requirement.level}`,
      x: requirement.text,
      u: `${site.specPage(requirement.file)}#${requirementAnchor(requirement.id)}`,
    });
  }
  for (const doc of schemas) {
    const fields = Object.keys((doc.json.properties as Record<string, unknown> | undefined) ?? {}).join(' ');
    entries.push({ k: 'schema', t: doc.title, s: doc.repoPath, x: `${doc.description} ${fields}`.trim(), u: doc.page });
  }
  for (const vector of vectors) {
    entries.push({ k: 'vector', t: vector.file, s: `${vector.json.numberOfTests} test vectors`, x: vector.json.topic, u: vector.page });
  }
  for (const check of checks) {
    entries.push({
      k: 'check',
      t: check.id,
      s: `${check.level} · ${check.severity} · ${check.requirement}`,
      x: check.title,
      u: `${CHECKS_PAGE}#${checkAnchor(check.id)}`,
    });
  }
  return entries;
}

/** The script form of the index. `<` is escaped so no text can close the script element. */
export function searchIndexScript(entries: SearchEntry[]): string {
  return `window.STRIPE402_SEARCH_INDEX = ${JSON.stringify(entries).replace(/</g, '\\u003c')};\n`;
}
