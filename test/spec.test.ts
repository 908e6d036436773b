/**
 * Checks the specification in spec/ against itself, against the JSON Schemas
 * and against the decision record it implements: requirement ids are well
 * formed, unique and contiguous; every cross-reference resolves; every JSON
 * example of a message validates against its schema; every raw HTTP example
 * carries header values that really decode to valid messages; and the terms
 * each design decision (D0-D12) fixes appear where the spec defines them.
 * Nothing here repeats the spec's text: the expectations come from the
 * schemas, from the spec's own structure, or from the decision record.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SPEC_DIR,
  REQUIREMENT_ID_PATTERN,
  loadRequirements,
  loadSections,
  loadSpec,
  parseSpecFile,
  requirementAnchor,
  specFiles,
  type Requirement,
  type Section,
} from '../scripts/spec-requirements.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SCHEMA_DIR = path.join(ROOT, 'schemas');

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv2020,
) => Ajv2020;

interface Block {
  file: string;
  line: number;
  lang: string;
  /** The HTML comment on the line just before the opening fence, if any. */
  comment: string | undefined;
  body: string;
}

/** Every fenced code block of a Markdown text, with the comment that precedes it. */
function fencedBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    const previous = (lines[start - 1] ?? '').trim();
    blocks.push({
      file,
      line: start + 1,
      lang: open[1] ?? '',
      comment: /^<!--.*-->$/.test(previous) ? previous : undefined,
      body: body.join('\n'),
    });
  }
  return blocks;
}

interface Link {
  file: string;
  text: string;
  target: string;
}

/** Every inline Markdown link outside code blocks and code spans. */
function links(file: string, markdown: string): Link[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\[([^\]]+)\]\(([^)\s]+)\)/g)].map((m) => ({ file, text: m[1] ?? '', target: m[2] ?? '' }));
}

let markdownByFile: Map<string, string>;
let requirements: Map<string, Requirement>;
let sections: Section[];
let anchorsByFile: Map<string, Set<string>>;
let validators: Map<string, ValidateFunction>;
let schemas: Map<string, { examples?: unknown[]; properties?: Record<string, unknown>; enum?: unknown[] }>;

beforeAll(async () => {
  markdownByFile = new Map();
  for (const file of await specFiles()) {
    markdownByFile.set(file, await readFile(path.join(DEFAULT_SPEC_DIR, file), 'utf8'));
  }
  requirements = await loadRequirements();
  sections = await loadSections();
  anchorsByFile = new Map([...(await loadSpec()).entries()].map(([file, parsed]) => [file, parsed.anchors]));

  const ajv = new Ajv2020({ allErrors: true, strictRequired: false });
  addFormats(ajv);
  schemas = new Map();
  for (const name of (await readdir(SCHEMA_DIR)).filter((f) => f.endsWith('.schema.json'))) {
    const schema = JSON.parse(await readFile(path.join(SCHEMA_DIR, name), 'utf8'));
    ajv.addSchema(schema);
    schemas.set(name.replace(/\.schema\.json$/, ''), schema);
  }
  validators = new Map();
  for (const [name, schema] of schemas) {
    const validate = ajv.getSchema((schema as { $id: string }).$id);
    if (!validate) throw new Error(`schema ${name} did not compile`);
    validators.set(name, validate);
  }
});

function allBlocks(): Block[] {
  return [...markdownByFile].flatMap(([file, markdown]) => fencedBlocks(file, markdown));
}

function describeErrors(validate: ValidateFunction): string {
  return JSON.stringify(validate.errors, null, 1);
}

describe('requirement ids', () => {
  it('every id has the form AREA-N', () => {
    const malformed = [...requirements.keys()].filter((id) => !REQUIREMENT_ID_PATTERN.test(id));
    expect(malformed).toEqual([]);
  });

  it('the ids of each area run from 1 without a gap', () => {
    const numbersByArea = new Map<string, number[]>();
    for (const id of requirements.keys()) {
      const [area = '', n = ''] = id.split('-');
      numbersByArea.set(area, [...(numbersByArea.get(area) ?? []), Number(n)]);
    }
    for (const [area, numbers] of numbersByArea) {
      const sorted = [...numbers].sort((a, b) => a - b);
      expect(sorted, `area ${area}`).toEqual(sorted.map((_, i) => i + 1));
    }
  });

  it('the areas of the requirement catalog all have requirements', () => {
    const areas = new Set([...requirements.keys()].map((id) => id.split('-')[0]));
    for (const area of ['ENC', 'MSG', 'UNIT', 'CID', 'PAY', 'PROC', 'AUTH', 'ERR', 'LEDG', 'DISC', 'SEC', 'CONF', 'COMPAT']) {
      expect(areas.has(area), area).toBe(true);
    }
  });

  it('requirements live only in the numbered sections, never in the README or the primer', () => {
    for (const requirement of requirements.values()) expect(requirement.file).toMatch(/^\d\d-/);
    for (const file of ['README.md', 'primer.md']) {
      expect(markdownByFile.get(file), file).not.toMatch(/\*\*\[[A-Z]+-\d+\]\*\*/);
    }
  });

  it('every requirement text is one non-empty paragraph with a keyword', () => {
    for (const requirement of requirements.values()) {
      expect(requirement.text.length, requirement.id).toBeGreaterThan(20);
      expect(requirement.text, requirement.id).not.toMatch(/\n/);
      expect(requirement.text, requirement.id).toMatch(new RegExp(`\\b${requirement.level}\\b`));
    }
  });

  it('every requirement is either assigned to a level or listed as untestable in section 14', () => {
    const section14 = markdownByFile.get('14-conformance-levels.md') ?? '';
    const cited = new Set([...section14.matchAll(/\[([A-Z]+-\d+)\]\(/g)].map((m) => m[1]));
    const defined = [...requirements.values()].filter((r) => r.file !== '14-conformance-levels.md');
    expect(defined.filter((r) => !cited.has(r.id)).map((r) => r.id)).toEqual([]);
  });
});

describe('cross-references', () => {
  it('every link whose text is a requirement id points to the file and anchor that define it', () => {
    const broken: string[] = [];
    for (const [file, markdown] of markdownByFile) {
      for (const link of links(file, markdown)) {
        if (!/^[A-Z]+-\d+$/.test(link.text)) continue;
        const requirement = requirements.get(link.text);
        const [targetFile = '', anchor] = link.target.split('#');
        const expectedFile = targetFile === '' ? file : targetFile;
        if (!requirement) broken.push(`${file}: [${link.text}] is not defined`);
        else if (requirement.file !== expectedFile || anchor !== requirementAnchor(link.text)) {
          broken.push(`${file}: [${link.text}](${link.target}) should be ${requirement.file}#${requirementAnchor(link.text)}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('every relative link points to an existing file and, for spec files, an existing anchor', () => {
    const broken: string[] = [];
    for (const [file, markdown] of markdownByFile) {
      for (const link of links(file, markdown)) {
        if (/^[a-z]+:/.test(link.target)) continue;
        const [targetFile = '', anchor] = link.target.split('#');
        const resolvedFile = targetFile === '' ? file : targetFile;
        if (!existsSync(path.join(DEFAULT_SPEC_DIR, resolvedFile))) {
          broken.push(`${file}: ${link.target} (no such file)`);
          continue;
        }
        if (anchor === undefined) continue;
        const anchors = anchorsByFile.get(resolvedFile);
        if (!anchors?.has(anchor)) broken.push(`${file}: ${link.target} (no such anchor)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README table of contents links every numbered section in order', () => {
    const readme = markdownByFile.get('README.md') ?? '';
    const contents = readme.slice(readme.indexOf('## Contents'));
    expect(contents.startsWith('## Contents')).toBe(true);
    const tocTargets = links('README.md', contents)
      .map((l) => l.target)
      .filter((t) => /^\d\d-.*\.md#/.test(t));
    expect(tocTargets).toEqual(sections.filter((s) => s.depth <= 3).map((s) => `${s.file}#${s.anchor}`));
  });
});

describe('sections', () => {
  it('each numbered file opens with the heading of its own section number', async () => {
    for (const file of (await specFiles()).filter((f) => /^\d\d-/.test(f))) {
      const first = sections.find((s) => s.file === file);
      expect(first?.depth, file).toBe(1);
      expect(first?.number, file).toBe(String(Number(file.slice(0, 2))));
    }
  });

  it('section numbers are consecutive at every level', () => {
    const lastChild = new Map<string, number>();
    for (const section of sections) {
      const parts = section.number.split('.');
      const parent = parts.slice(0, -1).join('.');
      const n = Number(parts.at(-1));
      expect(n, section.number).toBe((lastChild.get(parent) ?? 0) + 1);
      lastChild.set(parent, n);
      expect(parts.length, section.number).toBe(section.depth);
    }
  });

  it('section 1.1 is Conformance and cites RFC 2119 and RFC 8174', () => {
    const conformance = sections.find((s) => s.number === '1.1');
    expect(conformance?.title).toBe('Conformance');
    const intro = markdownByFile.get('01-introduction.md') ?? '';
    expect(intro).toMatch(/RFC 2119/);
    expect(intro).toMatch(/RFC 8174/);
  });

  it('requirement keywords appear in upper case only inside requirements or the conformance boilerplate', () => {
    // A normative keyword outside a requirement paragraph would be a requirement without an id.
    const strays: string[] = [];
    for (const [file, markdown] of markdownByFile) {
      if (!/^\d\d-/.test(file)) continue;
      const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
      const paragraphs = prose.split(/\n\s*\n/);
      for (const paragraph of paragraphs) {
        if (/\*\*\[[A-Z]+-\d+\]\*\*/.test(paragraph)) continue;
        if (/BCP 14/.test(paragraph)) continue;
        if (/^\|/m.test(paragraph)) continue; // tables restate requirements by reference
        const keyword = /\b(MUST|SHOULD|SHALL|REQUIRED|RECOMMENDED|MAY|OPTIONAL)\b/.exec(paragraph);
        if (keyword) strays.push(`${file}: "${keyword[1]}" in: ${paragraph.slice(0, 80).replace(/\s+/g, ' ')}`);
      }
    }
    expect(strays).toEqual([]);
  });
});

describe('JSON examples', () => {
  it('every json block names the schema it exemplifies', () => {
    const unmarked = allBlocks()
      .filter((b) => b.lang === 'json' && !/^<!-- (schema|no-schema): /.test(b.comment ?? ''))
      .map((b) => `${b.file}:${b.line}`);
    expect(unmarked).toEqual([]);
  });

  it('every json block marked with a schema validates against that schema', () => {
    const failures: string[] = [];
    const marked = allBlocks().filter((b) => b.lang === 'json' && /^<!-- schema: /.test(b.comment ?? ''));
    expect(marked.length).toBeGreaterThan(10);
    for (const block of marked) {
      const name = /^<!-- schema: ([a-z0-9-]+) -->$/.exec(block.comment ?? '')?.[1] ?? '';
      const validate = validators.get(name);
      if (!validate) {
        failures.push(`${block.file}:${block.line}: no schema named ${name}`);
        continue;
      }
      if (!validate(JSON.parse(block.body))) failures.push(`${block.file}:${block.line}: ${describeErrors(validate)}`);
    }
    expect(failures).toEqual([]);
  });

  it('every client-id derivation shown in the spec is the true HMAC of its inputs', () => {
    const derivations = allBlocks().filter((b) => b.comment === '<!-- schema: client-id-derivation -->');
    expect(derivations.length).toBeGreaterThan(0);
    for (const block of derivations) {
      const { serverSecret, fingerprint, clientId } = JSON.parse(block.body) as Record<string, string>;
      const derived = createHmac('sha256', Buffer.from(serverSecret ?? '', 'utf8'))
        .update(Buffer.from(fingerprint ?? '', 'utf8'))
        .digest('hex');
      expect(clientId, `${block.file}:${block.line}`).toBe(derived);
      expect(Buffer.byteLength(serverSecret ?? '', 'utf8')).toBeGreaterThanOrEqual(32);
    }
  });

  it("every schema's own examples validate against it", () => {
    for (const [name, schema] of schemas) {
      const validate = validators.get(name)!;
      for (const example of schema.examples ?? []) {
        expect(validate(example), `${name}: ${JSON.stringify(example)} ${describeErrors(validate)}`).toBe(true);
      }
    }
  });
});

interface HttpMessage {
  block: Block;
  startLine: string;
  status: number | undefined;
  headers: Array<[string, string]>;
  body: string;
}

function parseHttp(block: Block): HttpMessage {
  const [head = '', ...rest] = block.body.split(/\n\n/);
  const [startLine = '', ...headerLines] = head.split('\n');
  const headers = headerLines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
  const status = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(startLine)?.[1];
  return { block, startLine, status: status ? Number(status) : undefined, headers, body: rest.join('\n\n') };
}

const HEADER_SCHEMAS: Record<string, string> = {
  'payment-required': 'payment-required-response',
  payment: 'payment-payload',
  'payment-response': 'payment-response',
};

function header(message: HttpMessage, name: string): string | undefined {
  return message.headers.find(([n]) => n === name)?.[1];
}

/** Decodes a header value and insists it is exactly what a conforming sender emits (ENC-2). */
function decodeCanonical(value: string): unknown {
  const bytes = Buffer.from(value, 'base64');
  expect(bytes.toString('base64'), 'standard padded base64 with nothing else in it').toBe(value);
  const json: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  expect(typeof json === 'object' && json !== null && !Array.isArray(json)).toBe(true);
  return json;
}

describe('raw HTTP examples', () => {
  let messages: HttpMessage[];
  beforeAll(() => {
    messages = allBlocks()
      .filter((b) => b.lang === 'http')
      .map(parseHttp);
  });

  it('section 2 shows a challenge, a top-up with a paymentMethodId and a spend with a clientId', () => {
    const overview = messages.filter((m) => m.block.file === '02-overview.md');
    const payloads = overview.flatMap((m) => {
      const value = header(m, 'payment');
      return value ? [decodeCanonical(value) as Record<string, unknown>] : [];
    });
    expect(overview.some((m) => m.status === 402 && header(m, 'payment-required'))).toBe(true);
    expect(payloads.some((p) => typeof p.paymentMethodId === 'string')).toBe(true);
    expect(payloads.some((p) => typeof p.clientId === 'string' && p.paymentMethodId === undefined)).toBe(true);
    expect(overview.filter((m) => m.status === 200 && header(m, 'payment-response')).length).toBeGreaterThanOrEqual(2);
  });

  it('every stripe402 header value decodes to a message valid against its schema', () => {
    let checked = 0;
    for (const message of messages) {
      for (const [name, value] of message.headers) {
        const schema = HEADER_SCHEMAS[name];
        if (!schema) continue;
        const validate = validators.get(schema)!;
        const decoded = decodeCanonical(value);
        expect(validate(decoded), `${message.block.file}:${message.block.line} ${name}: ${describeErrors(validate)}`).toBe(
          true,
        );
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it('every 402 example carries the challenge in its header and, identically, in its body', () => {
    for (const message of messages.filter((m) => m.status === 402)) {
      const where = `${message.block.file}:${message.block.line}`;
      const value = header(message, 'payment-required');
      expect(value, where).toBeDefined();
      expect(JSON.parse(message.body), where).toEqual(decodeCanonical(value ?? ''));
      expect(header(message, 'content-type'), where).toBe('application/json');
      expect(header(message, 'cache-control'), where).toMatch(/\bno-store\b/);
    }
  });

  it('every error 402 example names the same code in both headers', () => {
    for (const message of messages.filter((m) => m.status === 402)) {
      const challenge = decodeCanonical(header(message, 'payment-required') ?? '') as { error?: string };
      if (challenge.error === undefined) continue;
      const where = `${message.block.file}:${message.block.line}`;
      const outcome = decodeCanonical(header(message, 'payment-response') ?? '') as { errorCode?: string; success?: boolean };
      expect(outcome.success, where).toBe(false);
      expect(outcome.errorCode, where).toBe(challenge.error);
    }
  });

  it('every response example with a payment-response forbids shared caching', () => {
    for (const message of messages.filter((m) => header(m, 'payment-response'))) {
      expect(header(message, 'cache-control'), `${message.block.file}:${message.block.line}`).toMatch(/\b(no-store|private)\b/);
    }
  });

  it('every Content-Length matches the body shown', () => {
    for (const message of messages.filter((m) => header(m, 'content-length'))) {
      expect(Number(header(message, 'content-length')), `${message.block.file}:${message.block.line}`).toBe(
        Buffer.byteLength(message.body, 'utf8'),
      );
    }
  });

  it('the JSON shown after each header example is the decoded value of that header', () => {
    // Each "Decoded" json block follows the http block it explains; its value must equal the decoded header.
    for (const [file, markdown] of markdownByFile) {
      const blocks = fencedBlocks(file, markdown);
      for (let i = 0; i + 1 < blocks.length; i++) {
        const http = blocks[i]!;
        const json = blocks[i + 1]!;
        if (http.lang !== 'http' || json.lang !== 'json') continue;
        const schema = /^<!-- schema: ([a-z0-9-]+) -->$/.exec(json.comment ?? '')?.[1];
        const headerName = Object.entries(HEADER_SCHEMAS).find(([, s]) => s === schema)?.[0];
        const value = headerName ? header(parseHttp(http), headerName) : undefined;
        if (value === undefined) continue;
        expect(JSON.parse(json.body), `${file}:${json.line}`).toEqual(decodeCanonical(value));
      }
    }
  });
});

describe('the decisions of the protocol brief are in the spec', () => {
  function text(file: string): string {
    const markdown = markdownByFile.get(file);
    if (markdown === undefined) throw new Error(`missing spec file ${file}`);
    return markdown;
  }

  it('D1: the three headers, the 4096-character limit, no-store and the CORS exposure', () => {
    for (const name of ['payment-required', 'payment', 'payment-response']) expect(text('03-encoding.md')).toContain(`\`${name}\``);
    expect(text('03-encoding.md')).toContain('4096');
    expect(text('03-encoding.md')).toContain('no-store');
    expect(text('03-encoding.md')).toContain('Access-Control-Expose-Headers: payment-required, payment-response');
  });

  it('D2: every member of every message schema is described in section 4', () => {
    for (const name of ['payment-required-response', 'resource-info', 'payment-requirements', 'payment-payload', 'payment-response']) {
      for (const member of Object.keys(schemas.get(name)?.properties ?? {})) {
        expect(text('04-messages.md'), `${name}.${member}`).toContain(`\`${member}\``);
      }
    }
  });

  it('D3: the charge formula and every currency with a non-default exponent', () => {
    expect(text('05-units.md')).toContain('ceil(u × 10^e / 10^4)');
    const zeroDecimal = 'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' ');
    const threeDecimal = 'bhd jod kwd omr tnd'.split(' ');
    const table = text('05-units.md').split('\n');
    const row = (e: string) => table.find((line) => line.startsWith(`| ${e} |`)) ?? '';
    for (const currency of zeroDecimal) expect(row('0'), currency).toContain(`\`${currency}\``);
    for (const currency of threeDecimal) expect(row('3'), currency).toContain(`\`${currency}\``);
  });

  it('D4: the HMAC definition, the 32-byte secret and the answer to unknown ids', () => {
    const identity = text('06-client-identity.md');
    expect(identity).toContain('HMAC-SHA256(key = UTF-8(serverSecret), message = UTF-8(fingerprint))');
    expect(identity).toContain('32 bytes');
    expect(identity).toContain('insufficient_credits');
  });

  it('D5: the path and method variants', () => {
    for (const variant of ['trailing slash', 'letter case', 'repeated slashes', 'percent-encoding', 'HEAD', 'mount prefix']) {
      expect(text('07-paywall.md'), variant).toContain(variant);
    }
  });

  it('D6: the PaymentIntent metadata keys and the Stripe Idempotency-Key', () => {
    for (const term of ['stripe402_client_id', 'stripe402_units', 'Idempotency-Key', 'idempotencyKey']) {
      expect(text('08-processing.md'), term).toContain(term);
    }
  });

  it('D7: requires_action, the PaymentIntent id and the next-action URL', () => {
    for (const term of ['requires_action', 'paymentIntentId', 'nextActionUrl', 'succeeded']) {
      expect(text('09-authentication.md'), term).toContain(term);
    }
  });

  it('D8: every error code of the schema appears in section 10, with 503 and Retry-After', () => {
    const codes = schemas.get('error-code')?.enum ?? [];
    expect(codes.length).toBeGreaterThanOrEqual(10);
    for (const code of codes) expect(text('10-errors.md'), String(code)).toContain(`\`${String(code)}\``);
    expect(text('10-errors.md')).toContain('Retry-After');
    expect(text('10-errors.md')).toContain('503');
  });

  it('D9: journal, aggregation, conservation and recovery', () => {
    for (const term of ['journal', 'aggregated', 'payment_intent.succeeded', 'reconciliation', 'at most once']) {
      expect(text('11-ledger.md'), term).toContain(term);
    }
  });

  it('D10: the well-known discovery path and every member of the discovery schema', () => {
    expect(text('12-discovery.md')).toContain('/.well-known/stripe402');
    for (const member of Object.keys(schemas.get('discovery')?.properties ?? {})) {
      expect(text('12-discovery.md'), member).toContain(`\`${member}\``);
    }
  });

  it('D11: bearer credential, HTTPS, redaction, rate limits, PCI scope, chargebacks and replay', () => {
    for (const term of ['bearer credential', 'HTTPS', 'logs', 'rate', 'PCI', 'dispute', 'Replay']) {
      expect(text('13-security.md'), term).toContain(term);
    }
  });

  it('D12: the three levels and the list of requirements no black-box check can test', () => {
    for (const level of ['`core`', '`ledger`', '`extensions`']) expect(text('14-conformance-levels.md')).toContain(level);
    expect(sections.some((s) => s.file === '14-conformance-levels.md' && /no black-box check/.test(s.title))).toBe(true);
  });

  it('D0: section 15 names the v1 behaviours a conforming peer must tolerate', () => {
    for (const term of ['payment_required', '`clientId: ""`', 'PaymentResponse', 'junk']) {
      expect(text('15-compatibility.md') + text('primer.md'), term).toContain(term);
    }
  });
});

describe('spec-requirements module', () => {
  async function withSpec(files: Record<string, string>, run: (dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(path.join(tmpdir(), 'stripe402-spec-'));
    try {
      for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
      await run(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('a duplicated id makes loadRequirements throw', async () => {
    await withSpec(
      {
        '01-a.md': '# 1. A\n\n**[X-1]** One MUST hold.\n',
        '02-b.md': '# 2. B\n\n**[X-1]** Another MUST hold.\n',
      },
      async (dir) => {
        await expect(loadRequirements(dir)).rejects.toThrow(/X-1 is defined twice/);
      },
    );
  });

  it('a requirement without a keyword makes loadRequirements throw', async () => {
    await withSpec({ '01-a.md': '# 1. A\n\n**[X-1]** This states nothing.\n' }, async (dir) => {
      await expect(loadRequirements(dir)).rejects.toThrow(/states no MUST/);
    });
  });

  it('a paragraph requirement keeps its list, and a list-item requirement stops at the next item', () => {
    const parsed = parseSpecFile(
      '03-x.md',
      [
        '# 3. X',
        '',
        '## 3.4. The `payment` header',
        '',
        '**[X-1]** A receiver MUST reject a value when:',
        '- it is *empty*;',
        '- it has [junk](03-x.md#x).',
        '',
        'Not part of it.',
        '',
        '1. **[X-2]** First, the server SHOULD check.',
        '   - a nested detail',
        '2. **[X-3]** Then it MAY go on.',
      ].join('\n'),
    );
    const byId = new Map(parsed.requirements.map((r) => [r.id, r]));
    expect(byId.get('X-1')?.text).toBe('A receiver MUST reject a value when: it is empty; it has junk.');
    expect(byId.get('X-1')?.section).toBe('3.4');
    expect(byId.get('X-1')?.sectionTitle).toBe('The payment header');
    expect(byId.get('X-2')?.text).toBe('First, the server SHOULD check. a nested detail');
    expect(byId.get('X-2')?.level).toBe('SHOULD');
    expect(byId.get('X-3')?.level).toBe('MAY');
    expect(parsed.sections.map((s) => s.anchor)).toEqual(['3-x', '34-the-payment-header']);
    expect(parsed.anchors.has('x-2')).toBe(true);
  });

  it('MUST NOT counts as MUST, and MUST outranks a MAY in the same requirement', () => {
    const parsed = parseSpecFile('01-a.md', '# 1. A\n\n**[X-1]** A server MAY wait but MUST NOT charge.\n');
    expect(parsed.requirements[0]?.level).toBe('MUST');
  });

  it('markers inside code blocks define nothing', () => {
    const parsed = parseSpecFile('01-a.md', '# 1. A\n\n```text\n**[X-1]** MUST\n```\n');
    expect(parsed.requirements).toEqual([]);
  });
});
