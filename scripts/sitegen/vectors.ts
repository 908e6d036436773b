/**
 * Pages for the test vectors: one page per vector file with its flags, the
 * requirements it cites (each linked to its anchor in the spec and to the
 * cases citing it), and a table of every case (tcId, comment, flags, result,
 * error, spec ids, inputs). The files are read as they are, so the pages show
 * exactly what an implementer's runner reads.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { requirementAnchor } from '../spec-requirements.ts';
import type { SiteContext } from './context.ts';
import { escapeHtml, relativeUrl } from './html.ts';
import type { SchemaCatalog } from './schemas.ts';

interface VectorCase {
  tcId: number;
  comment: string;
  flags: string[];
  result: string;
  error?: string;
  spec: string[];
  [input: string]: unknown;
}

interface VectorGroup {
  tests: VectorCase[];
  [shared: string]: unknown;
}

interface VectorJson {
  schema: string;
  topic: string;
  numberOfTests: number;
  notes: Record<string, string>;
  testGroups: VectorGroup[];
}

/** One vector file and where the site puts it. */
export interface VectorFile {
  /** e.g. `header_encoding.json`. */
  file: string;
  repoPath: string;
  page: string;
  raw: string;
  json: VectorJson;
  /** Requirement id to the tcIds citing it, in file order. */
  citations: Map<string, number[]>;
}

/** Reads every vector file of vectors/. */
export async function loadVectorFiles(root: string): Promise<VectorFile[]> {
  const dir = path.join(root, 'vectors');
  const names = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort();
  const files: VectorFile[] = [];
  for (const file of names) {
    const json = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as VectorJson;
    const citations = new Map<string, number[]>();
    for (const group of json.testGroups) {
      for (const test of group.tests) {
        for (const id of test.spec) citations.set(id, [...(citations.get(id) ?? []), test.tcId]);
      }
    }
    const base = file.replace(/\.json$/, '');
    files.push({ file, repoPath: `vectors/${file}`, page: `vectors/${base}.html`, raw: `vectors/${file}`, json, citations });
  }
  return files;
}

/** The anchor of the list of cases of a vector page that cite a requirement. */
export function citationAnchor(id: string): string {
  return `cites-${requirementAnchor(id)}`;
}

const CASE_KEYS = new Set(['tcId', 'comment', 'flags', 'result', 'error', 'spec']);

/** The value of an input exactly as the file has it: strings as JSON strings, so whitespace and escapes show. */
function inputValue(value: unknown): string {
  return `<code>${escapeHtml(JSON.stringify(value))}</code>`;
}

/** The body HTML of a vector file's page. */
export function renderVectorPage(vector: VectorFile, catalog: SchemaCatalog, site: SiteContext): string {
  const page = vector.page;
  const link = (target: string) => escapeHtml(relativeUrl(page, target));
  const { json } = vector;
  const format = catalog.docs.find((doc) => doc.repoPath === `vectors/schemas/${json.schema}`);
  const schemaByFile = (file: string) => catalog.docs.find((doc) => doc.repoPath === `schemas/${file}`);
  const out: string[] = [];

  out.push(`<p class="eyebrow">Test vectors · <a class="raw-link" href="${link(vector.raw)}">${escapeHtml(vector.file)} (raw)</a></p>`);
  out.push(`<h1 id="top"><code>${escapeHtml(vector.file)}</code></h1>`);
  out.push(`<p class="lead">${escapeHtml(json.topic)}</p>`);
  const flagCount = new Map<string, number>();
  const allCases = json.testGroups.flatMap((group) => group.tests);
  for (const test of allCases) for (const flag of test.flags) flagCount.set(flag, (flagCount.get(flag) ?? 0) + 1);
  const invalid = allCases.filter((test) => test.result === 'invalid').length;
  out.push(`<dl class="facts">
<dt>Cases</dt><dd>${json.numberOfTests} (${json.numberOfTests - invalid} valid, ${invalid} invalid) in ${json.testGroups.length} group${json.testGroups.length === 1 ? '' : 's'}</dd>
<dt>Format</dt><dd>${format ? `<a href="${link(format.page)}">${escapeHtml(format.title)}</a>` : `<code>${escapeHtml(json.schema)}</code>`}</dd>
<dt>Raw file</dt><dd><a href="${link(vector.raw)}">${escapeHtml(vector.file)}</a></dd>
</dl>`);

  out.push('<h2 id="flags">Flags</h2>');
  out.push(`<div class="table-wrap"><table class="flags"><thead><tr><th>Flag</th><th>Meaning</th><th>Cases</th></tr></thead><tbody>
${Object.entries(json.notes)
  .map(([flag, note]) => `<tr id="flag-${escapeHtml(flag.toLowerCase())}"><td><code class="flag">${escapeHtml(flag)}</code></td><td>${site.linkRequirementIds(note, page)}</td><td class="num">${flagCount.get(flag) ?? 0}</td></tr>`)
  .join('\n')}
</tbody></table></div>`);

  out.push('<h2 id="requirements">Requirements cited</h2>');
  out.push(`<div class="table-wrap"><table class="citations"><thead><tr><th>Requirement</th><th>Section</th><th>Cases</th></tr></thead><tbody>
${[...vector.citations.entries()]
  .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
  .map(([id, tcIds]) => {
    const requirement = site.requirements.get(id);
    const section = requirement ? `${escapeHtml(requirement.section)}. ${escapeHtml(requirement.sectionTitle)}` : '';
    const cases = tcIds.map((tc) => `<a href="#tc-${tc}">${tc}</a>`).join(', ');
    return `<tr id="${citationAnchor(id)}"><td>${site.requirementLink(id, page)}</td><td>${section}</td><td class="tc-list">${cases}</td></tr>`;
  })
  .join('\n')}
</tbody></table></div>`);

  out.push('<h2 id="cases">Cases</h2>');
  json.testGroups.forEach((group, index) => {
    const shared = Object.entries(group).filter(([key]) => key !== 'tests');
    const sharedHtml = shared
      .map(([key, value]) => {
        const schema = key === 'schemaFile' && typeof value === 'string' ? schemaByFile(value) : undefined;
        const shown = schema ? `<a href="${link(schema.page)}">${inputValue(value)}</a>` : inputValue(value);
        return `<span class="group-input"><span class="muted">${escapeHtml(key)}</span> ${shown}</span>`;
      })
      .join(' ');
    out.push(`<h3 id="group-${index + 1}">Group ${index + 1} <span class="group-inputs">${sharedHtml}</span></h3>`);
    const rows = group.tests.map((test) => {
      const flags = test.flags
        .map((flag) => `<a class="flag" href="#flag-${escapeHtml(flag.toLowerCase())}" title="${escapeHtml(json.notes[flag] ?? '')}">${escapeHtml(flag)}</a>`)
        .join(' ');
      const inputs = Object.entries(test)
        .filter(([key]) => !CASE_KEYS.has(key))
        .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${inputValue(value)}</dd>`)
        .join('');
      const spec = test.spec.map((id) => site.requirementLink(id, page)).join(' ');
      return `<tr id="tc-${test.tcId}" class="result-${escapeHtml(test.result)}">
<td class="num"><a class="tc-id" href="#tc-${test.tcId}">${test.tcId}</a></td>
<td>${escapeHtml(test.comment)}</td>
<td class="flags-cell">${flags}</td>
<td><span class="pill pill-${escapeHtml(test.result)}">${escapeHtml(test.result)}</span></td>
<td>${test.error ? `<code>${escapeHtml(test.error)}</code>` : ''}</td>
<td class="spec-cell">${spec}</td>
<td class="inputs-cell"><dl class="inputs">${inputs}</dl></td>
</tr>`;
    });
    out.push(`<div class="table-wrap"><table class="cases"><thead><tr><th>tcId</th><th>Comment</th><th>Flags</th><th>Result</th><th>Error</th><th>Spec</th><th>Inputs and expected output</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>`);
  });
  return out.join('\n');
}

/** The spec-side note listing the vector cases that cite a requirement. */
export function vectorCitations(vectors: VectorFile[], id: string, fromPage: string): string[] {
  return vectors
    .filter((vector) => vector.citations.has(id))
    .map((vector) => {
      const count = vector.citations.get(id)?.length ?? 0;
      return `<a href="${escapeHtml(relativeUrl(fromPage, `${vector.page}#${citationAnchor(id)}`))}">${escapeHtml(vector.file)}</a> (${count} case${count === 1 ? '' : 's'})`;
    });
}
