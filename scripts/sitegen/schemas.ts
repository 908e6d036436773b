/**
 * Renders JSON Schemas (draft 2020-12) as readable pages: the title and
 * description, a table of fields (name, type, required, constraints,
 * description) with `$ref`s linked to the page of the schema they name, the
 * conditional rules (anyOf, if/then/else) in words, the `$defs`, the examples
 * pretty-printed, the schemas that use this one, and a link to the raw file.
 * The same renderer serves the protocol schemas of schemas/ and the vector
 * formats of vectors/schemas/, which refer to each other by `$id`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SiteContext } from './context.ts';
import { escapeHtml, jsonBlock, relativeUrl, slug } from './html.ts';

/** A JSON Schema node, loosely typed: the renderer reads what it knows and shows the rest as JSON. */
export type SchemaNode = { [keyword: string]: unknown } | boolean;
type SchemaObject = { [keyword: string]: unknown };

/** One schema file and where the site puts it. */
export interface SchemaDoc {
  /** Repository path, e.g. `schemas/payment-payload.schema.json`. */
  repoPath: string;
  /** The `$id`. */
  id: string;
  title: string;
  description: string;
  /** The readable page, e.g. `schemas/payment-payload.html`. */
  page: string;
  /** The copied raw file, e.g. `schemas/payment-payload.schema.json`. */
  raw: string;
  json: SchemaObject;
  kind: 'protocol' | 'vector-format';
}

/** Every schema the site shows, by `$id`. */
export class SchemaCatalog {
  readonly byId = new Map<string, SchemaDoc>();
  /** `$ref`s that resolve to no known schema, as `file: ref`. */
  readonly unresolved: string[] = [];

  constructor(readonly docs: SchemaDoc[]) {
    for (const doc of docs) this.byId.set(doc.id, doc);
  }

  /** The schema and `$defs` name a `$ref` in `from` points to. */
  resolve(ref: string, from: SchemaDoc): { doc: SchemaDoc; def?: string; node: SchemaNode } | undefined {
    const url = new URL(ref, from.id);
    const fragment = decodeURIComponent(url.hash.replace(/^#/, ''));
    url.hash = '';
    const doc = this.byId.get(url.href);
    if (!doc) return undefined;
    if (fragment === '') return { doc, node: doc.json };
    const def = /^\/\$defs\/([^/]+)$/.exec(fragment)?.[1];
    const defs = doc.json.$defs as Record<string, SchemaNode> | undefined;
    const node = def !== undefined ? defs?.[def] : undefined;
    return def !== undefined && node !== undefined ? { doc, def, node } : undefined;
  }

  /** The schemas whose text refers to `target`, for "Used by". */
  usersOf(target: SchemaDoc): SchemaDoc[] {
    return this.docs.filter((doc) => doc !== target && collectRefs(doc.json).some((ref) => this.resolve(ref, doc)?.doc === target));
  }
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => collectRefs(item, out));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push(value);
      else if (key !== 'examples' && key !== 'const' && key !== 'enum') collectRefs(value, out);
    }
  }
  return out;
}

/** Reads the JSON Schemas of `dir` (repository relative) into docs placed under `siteDir`. */
export async function loadSchemaDocs(root: string, dir: string, siteDir: string, kind: SchemaDoc['kind']): Promise<SchemaDoc[]> {
  const files = (await readdir(path.join(root, dir))).filter((name) => name.endsWith('.json')).sort();
  const docs: SchemaDoc[] = [];
  for (const file of files) {
    const json = JSON.parse(await readFile(path.join(root, dir, file), 'utf8')) as SchemaObject;
    const base = file.replace(/\.schema\.json$|\.json$/, '');
    const id = typeof json.$id === 'string' ? json.$id : `urn:stripe402:${dir}/${file}`;
    docs.push({
      repoPath: `${dir}/${file}`,
      id,
      title: typeof json.title === 'string' ? json.title : base,
      description: typeof json.description === 'string' ? json.description : '',
      page: `${siteDir}/${base}.html`,
      raw: `${siteDir}/${file}`,
      json,
      kind,
    });
  }
  return docs;
}

const isObject = (node: unknown): node is SchemaObject => typeof node === 'object' && node !== null && !Array.isArray(node);
const code = (value: unknown) => `<code>${escapeHtml(typeof value === 'string' ? value : JSON.stringify(value))}</code>`;
const jsonCode = (value: unknown) => `<code>${escapeHtml(JSON.stringify(value))}</code>`;

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Renders the pages of the schemas of one catalog. */
class SchemaRenderer {
  constructor(
    private readonly catalog: SchemaCatalog,
    private readonly doc: SchemaDoc,
    private readonly site: SiteContext,
    /** The page the HTML is for (relative links start there). */
    private readonly page: string = doc.page,
  ) {}

  text(value: unknown): string {
    return typeof value === 'string' ? this.site.linkRequirementIds(value, this.page) : '';
  }

  refLink(ref: string): string {
    const target = this.catalog.resolve(ref, this.doc);
    if (!target) {
      this.catalog.unresolved.push(`${this.doc.repoPath}: ${ref}`);
      return code(ref);
    }
    const sameDoc = target.doc === this.doc;
    const label = target.def === undefined ? target.doc.title : sameDoc ? target.def : `${target.doc.title} › ${target.def}`;
    const href = target.doc.page + (target.def === undefined ? '' : `#def-${slug(target.def)}`);
    return `<a class="schema-ref" href="${escapeHtml(relativeUrl(this.page, href))}">${escapeHtml(label)}</a>`;
  }

  /** The type column: JSON types, `array of …`, linked `$ref`s. */
  type(node: SchemaNode): string {
    if (node === true) return 'any';
    if (node === false) return 'nothing';
    const parts: string[] = [];
    if (typeof node.$ref === 'string') {
      parts.push(this.refLink(node.$ref));
      // Say what a named type is underneath (Units is an integer) when it is a plain JSON type.
      const target = this.catalog.resolve(node.$ref, this.doc)?.node;
      if (isObject(target) && typeof target.type === 'string' && target.type !== 'object' && node.type === undefined) {
        parts.push(`<span class="muted">(${escapeHtml(target.type)})</span>`);
      }
    }
    const types = Array.isArray(node.type) ? (node.type as string[]) : typeof node.type === 'string' ? [node.type] : [];
    for (const type of types) {
      if (type === 'array') parts.push(`array of ${isObject(node.items) || typeof node.items === 'boolean' ? this.type(node.items as SchemaNode) : 'any'}`);
      else if (!(type === 'object' && typeof node.$ref === 'string')) parts.push(escapeHtml(type));
    }
    if (types.length === 0 && typeof node.$ref !== 'string') {
      if ('const' in node) parts.push(jsonTypeOf(node.const));
      else if (Array.isArray(node.enum)) parts.push([...new Set(node.enum.map(jsonTypeOf))].join(' or '));
      else if (isObject(node.properties)) parts.push('object');
      else if (node.items !== undefined) parts.push(`array of ${this.type(node.items as SchemaNode)}`);
    }
    for (const keyword of ['anyOf', 'oneOf'] as const) {
      const options = node[keyword];
      if (Array.isArray(options) && options.every((o) => isObject(o) && (o.type !== undefined || o.$ref !== undefined))) {
        parts.push(options.map((o) => this.type(o as SchemaNode)).join(' or '));
      }
    }
    return parts.join(' ') || 'any';
  }

  /** The constraints column. */
  constraints(node: SchemaNode): string[] {
    if (!isObject(node)) return [];
    const out: string[] = [];
    if ('const' in node) out.push(`always ${jsonCode(node.const)}`);
    if (Array.isArray(node.enum)) out.push(`one of ${node.enum.map(jsonCode).join(', ')}`);
    if (typeof node.pattern === 'string') out.push(`pattern ${code(node.pattern)}`);
    if (typeof node.format === 'string') out.push(`format ${code(node.format)}`);
    const range = (min: unknown, max: unknown, what: string) => {
      if (typeof min === 'number' && typeof max === 'number') out.push(min === max ? `${what} ${min}` : `${what} ${min} to ${max}`);
      else if (typeof min === 'number') out.push(`${what} ≥ ${min}`);
      else if (typeof max === 'number') out.push(`${what} ≤ ${max}`);
    };
    range(node.minimum, node.maximum, 'value');
    if (typeof node.exclusiveMinimum === 'number') out.push(`value &gt; ${node.exclusiveMinimum}`);
    if (typeof node.exclusiveMaximum === 'number') out.push(`value &lt; ${node.exclusiveMaximum}`);
    range(node.minLength, node.maxLength, 'length');
    range(node.minItems, node.maxItems, 'items');
    range(node.minProperties, node.maxProperties, 'members');
    if (node.uniqueItems === true) out.push('unique items');
    if (node.additionalProperties === false || node.unevaluatedProperties === false) out.push('no other members');
    if (isObject(node.additionalProperties)) {
      const inner = [this.type(node.additionalProperties), ...this.constraints(node.additionalProperties)].join(', ');
      out.push(`each member's value: ${inner}`);
    }
    if (isObject(node.propertyNames)) out.push(`member names: ${this.type(node.propertyNames)}`);
    if (isObject(node.items) && !isObject(node.items.properties)) {
      const inner = this.constraints(node.items);
      if (inner.length) out.push(`each item: ${inner.join(', ')}`);
    }
    return out;
  }

  /** A description, falling back to that of the schema a `$ref` names (marked as inherited). */
  description(node: SchemaNode): string {
    if (!isObject(node)) return '';
    if (typeof node.description === 'string') return this.text(node.description);
    if (typeof node.$ref === 'string') {
      const target = this.catalog.resolve(node.$ref, this.doc)?.node;
      if (isObject(target) && typeof target.description === 'string') {
        return `<span class="inherited">${this.site.linkRequirementIds(target.description, this.page)}</span>`;
      }
    }
    return '';
  }

  /** One table row per member, nested objects flattened as `parent.child` and `list[].child`. */
  fieldRows(node: SchemaObject, prefix: string, depth: number): string[] {
    const properties = isObject(node.properties) ? node.properties : {};
    const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
    const rows: string[] = [];
    for (const [name, child] of Object.entries(properties)) {
      const field = child as SchemaNode;
      const full = prefix + name;
      const constraints = this.constraints(field);
      if (constraints.length === 0 && isObject(field) && typeof field.$ref === 'string') {
        // Show the constraints a field gets from the schema it names, marked as coming from there.
        const target = this.catalog.resolve(field.$ref, this.doc);
        if (target && isObject(target.node) && !isObject(target.node.properties)) {
          // Refs inside the target are relative to its own document.
          const there = new SchemaRenderer(this.catalog, target.doc, this.site, this.page);
          constraints.push(...there.constraints(target.node).map((c) => `<span class="inherited-constraint">${c}</span>`));
        }
      }
      rows.push(`<tr id="field-${escapeHtml(slug(full))}">
<td class="field-name"><code>${prefix ? `<span class="field-parent">${escapeHtml(prefix)}</span>` : ''}${escapeHtml(name)}</code></td>
<td class="field-type">${this.type(field)}</td>
<td class="field-required">${required.has(name) ? '<span class="pill pill-required">required</span>' : '<span class="pill">optional</span>'}</td>
<td class="field-constraints">${constraints.length ? constraints.join('<br>') : '<span class="muted">—</span>'}</td>
<td class="field-description">${this.description(field)}</td>
</tr>`);
      if (depth < 4 && isObject(field)) {
        if (isObject(field.properties)) rows.push(...this.fieldRows(field, `${full}.`, depth + 1));
        else if (isObject(field.items) && isObject(field.items.properties)) rows.push(...this.fieldRows(field.items, `${full}[].`, depth + 1));
      }
    }
    return rows;
  }

  fieldTable(node: SchemaObject): string {
    const rows = this.fieldRows(node, '', 0);
    if (rows.length === 0) return '';
    return `<div class="table-wrap"><table class="fields">
<thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Constraints</th><th>Description</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table></div>`;
  }

  /** A condition or requirement of a combinator, in words where its shape is a common one. */
  describe(node: SchemaNode): string {
    if (!isObject(node)) return node ? 'anything' : 'nothing';
    const parts: string[] = [];
    const known = new Set(['required', 'properties', 'not', 'anyOf', 'oneOf', 'allOf', 'description']);
    if (Array.isArray(node.required)) {
      const names = (node.required as string[]).map(code);
      parts.push(`${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} present`);
    }
    if (isObject(node.properties)) {
      for (const [name, child] of Object.entries(node.properties)) {
        if (isObject(child) && 'const' in child && Object.keys(child).length === 1) parts.push(`${code(name)} is ${jsonCode(child.const)}`);
        else parts.push(`${code(name)} is ${this.type(child as SchemaNode)}${this.constraints(child as SchemaNode).map((c) => `, ${c}`).join('')}`);
      }
    }
    if (node.not !== undefined) {
      const not = node.not;
      if (isObject(not) && Array.isArray(not.required) && Object.keys(not).length === 1) {
        const names = (not.required as string[]).map(code);
        parts.push(`${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} absent`);
      } else parts.push(`not (${this.describe(not as SchemaNode)})`);
    }
    for (const [keyword, joiner] of [['anyOf', ' or '], ['oneOf', ' or exactly one of '], ['allOf', ' and ']] as const) {
      const options = node[keyword];
      if (Array.isArray(options)) parts.push(`(${options.map((o) => this.describe(o as SchemaNode)).join(joiner)})`);
    }
    const unknown = Object.keys(node).filter((key) => !known.has(key));
    if (unknown.length) parts.push(jsonCode(Object.fromEntries(unknown.map((key) => [key, node[key]]))));
    return parts.join(' and ') || 'anything';
  }

  /** The rules a field table cannot show: combinators and conditionals. */
  rules(node: SchemaObject): string {
    const items: string[] = [];
    if (Array.isArray(node.anyOf) && !node.properties) {
      // A type union is already in the type column.
    } else if (Array.isArray(node.anyOf)) {
      items.push(`At least one of these holds: ${(node.anyOf as SchemaNode[]).map((o) => this.describe(o)).join('; or ')}.`);
    }
    if (Array.isArray(node.oneOf)) items.push(`Exactly one of these holds: ${(node.oneOf as SchemaNode[]).map((o) => this.describe(o)).join('; ')}.`);
    if (Array.isArray(node.allOf)) items.push(`Each of these holds: ${(node.allOf as SchemaNode[]).map((o) => this.describe(o)).join('; ')}.`);
    if (node.if !== undefined) {
      const then = node.then !== undefined ? this.describe(node.then as SchemaNode) : 'nothing more is required';
      const otherwise = node.else !== undefined ? `; otherwise ${this.describe(node.else as SchemaNode)}` : '';
      items.push(`When ${this.describe(node.if as SchemaNode)}: ${then}${otherwise}.`);
    }
    if (node.not !== undefined) items.push(`Never: ${this.describe(node.not as SchemaNode)}.`);
    if (typeof node.$ref === 'string' && isObject(node.properties)) {
      items.unshift(`Has every member and rule of ${this.refLink(node.$ref)}, and these:`);
    }
    if (items.length === 0) return '';
    return `<ul class="rules">${items.map((item) => `<li>${item}</li>`).join('')}</ul>`;
  }

  /** Type, constraints, fields and rules of one schema node (the document or a `$defs` entry). */
  body(node: SchemaObject, headingLevel: number): string {
    const out: string[] = [];
    const facts: [string, string][] = [['Type', this.type(node)]];
    const constraints = this.constraints(node);
    if (constraints.length) facts.push(['Constraints', constraints.join('<br>')]);
    out.push(`<dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`);
    const rules = this.rules(node);
    if (rules) out.push(rules);
    const table = this.fieldTable(node);
    if (table) out.push(`<h${headingLevel}>Fields</h${headingLevel}>`, table);
    if (isObject(node.items) && isObject(node.items.properties)) {
      out.push(`<h${headingLevel}>Items</h${headingLevel}>`, this.fieldTable(node.items));
    }
    return out.join('\n');
  }

  render(): { body: string; anchors: string[] } {
    const { doc } = this;
    const json = doc.json;
    const anchors = ['fields', 'examples', 'definitions'];
    const out: string[] = [];
    const kindLabel = doc.kind === 'protocol' ? 'JSON Schema' : 'Vector file format';
    out.push(`<p class="eyebrow">${kindLabel} · <a href="${escapeHtml(relativeUrl(this.page, doc.raw))}" class="raw-link">${escapeHtml(doc.repoPath.split('/').pop() ?? '')} (raw)</a></p>`);
    out.push(`<h1 id="top">${escapeHtml(doc.title)}</h1>`);
    if (doc.description) out.push(`<p class="lead">${this.text(doc.description)}</p>`);
    out.push(`<p class="schema-id"><span class="muted">$id</span> <code>${escapeHtml(doc.id)}</code></p>`);
    out.push(this.body(json, 2).replace('<h2>Fields</h2>', '<h2 id="fields">Fields</h2>'));

    const defs = isObject(json.$defs) ? json.$defs : {};
    if (Object.keys(defs).length) {
      out.push('<h2 id="definitions">Definitions</h2>');
      for (const [name, def] of Object.entries(defs)) {
        const anchor = `def-${slug(name)}`;
        anchors.push(anchor);
        out.push(`<section class="definition"><h3 id="${anchor}"><code>${escapeHtml(name)}</code> <a class="anchor" href="#${anchor}" aria-label="Link to this definition">¶</a></h3>`);
        if (isObject(def)) {
          if (typeof def.description === 'string') out.push(`<p>${this.text(def.description)}</p>`);
          out.push(this.body(def, 4));
        }
        out.push('</section>');
      }
    }

    if (Array.isArray(json.examples) && json.examples.length) {
      out.push(`<h2 id="examples">Examples</h2>`);
      json.examples.forEach((example, index) => {
        out.push(`<figure class="example"><figcaption>Example ${index + 1}</figcaption>${jsonBlock(example)}</figure>`);
      });
    }

    const users = this.catalog.usersOf(doc);
    if (users.length) {
      out.push('<h2 id="used-by">Used by</h2>');
      out.push(`<ul class="inline-list">${users.map((u) => `<li><a href="${escapeHtml(relativeUrl(this.page, u.page))}">${escapeHtml(u.title)}</a></li>`).join('')}</ul>`);
    }
    return { body: out.join('\n'), anchors };
  }
}

/** The body HTML of a schema's page. */
export function renderSchemaPage(catalog: SchemaCatalog, doc: SchemaDoc, site: SiteContext): string {
  return new SchemaRenderer(catalog, doc, site).render().body;
}

/** A one-line summary of a schema's type, for an index table on `page`. */
export function schemaTypeSummary(catalog: SchemaCatalog, doc: SchemaDoc, site: SiteContext, page: string): string {
  return new SchemaRenderer(catalog, doc, site, page).type(doc.json);
}
