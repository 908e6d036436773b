/**
 * `npm run site`: builds the static stripe402 site into site/ from the
 * repository itself, offline (every asset is a local file; nothing is
 * fetched at build time or at run time). The spec, schemas, vectors and
 * conformance-check pages come from the small generator in scripts/sitegen/
 * (named so because .gitignore's `site/` would also hide a scripts/site/).
 * They need the spec's requirement anchors and the cross-links between the
 * four, which no documentation tool knows. The API reference of
 * reference/ comes from typedoc into site/api/. The build writes everything,
 * checks every internal link of its own pages, and then fails (in strict
 * mode, the default) on any problem: a typedoc warning, a broken link, a
 * citation of a requirement the spec does not define.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { STRIPE402_VERSION } from '@stripe402/core';
import { loadRequirements, loadSections, specFiles } from './spec-requirements.ts';
import { buildApi, type ApiResult } from './sitegen/api.ts';
import { BADGE_PATH, REPORT_DIR, placeBadge, type BadgeResult } from './sitegen/badge.ts';
import { CHECKS_PAGE, checkCitations, loadChecks, renderChecksPage, type ChecksSource } from './sitegen/checks.ts';
import { SiteContext } from './sitegen/context.ts';
import { escapeHtml, relativeUrl } from './sitegen/html.ts';
import { renderPage, sidebarSection, tocList, type Page, type SiteInfo, type TocItem } from './sitegen/layout.ts';
import { renderMarkdown } from './sitegen/markdown.ts';
import { SchemaCatalog, loadSchemaDocs, renderSchemaPage, schemaTypeSummary, type SchemaDoc } from './sitegen/schemas.ts';
import { buildSearchIndex, searchIndexScript } from './sitegen/search.ts';
import { orderSpecFiles, renderSpec, specPages, type RenderedSpecPage } from './sitegen/spec.ts';
import { loadVectorFiles, renderVectorPage, vectorCitations, type VectorFile } from './sitegen/vectors.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const ASSETS = fileURLToPath(new URL('./sitegen/assets/', import.meta.url));

export interface BuildOptions {
  /** The repository root. Default: this script's repository. */
  root?: string;
  /** Where the site goes. Default: `<root>/site`. Emptied first. */
  outDir?: string;
  /** Throw after writing the site when there is any problem (default true). */
  strict?: boolean;
  /** Run typedoc for site/api/ (default true). */
  api?: boolean;
  /** Print typedoc's messages as it runs (default false). */
  verbose?: boolean;
}

export interface BuildReport {
  outDir: string;
  /** Site-root relative paths of the pages the generator wrote (site/api/ excluded). */
  pages: string[];
  /** typedoc's result, or undefined when the API step was skipped. */
  api: ApiResult | undefined;
  checks: { status: ChecksSource['status']; count: number };
  badge: BadgeResult['source'];
  /** Internal links of the generated pages that lead nowhere: `page -> href`. */
  brokenLinks: string[];
  /** Other errors: citations of undefined requirements, unresolved `$ref`s. */
  problems: string[];
  /** Repository paths the sources link to that the site has no page for (shown as text). */
  unlinked: string[];
}

/** Thrown by a strict build after the site is written. */
export class SiteBuildError extends Error {
  constructor(
    message: string,
    readonly report: BuildReport,
  ) {
    super(message);
    this.name = 'SiteBuildError';
  }
}

/** Builds the site; see BuildOptions. */
export async function buildSite(options: BuildOptions = {}): Promise<BuildReport> {
  const root = path.resolve(options.root ?? REPO_ROOT);
  const outDir = path.resolve(options.outDir ?? path.join(root, 'site'));
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'assets'), { recursive: true });

  const problems: string[] = [];
  const unlinked = new Set<string>();
  const specDir = path.join(root, 'spec');
  const files = orderSpecFiles(await specFiles(specDir));
  const site = new SiteContext(await loadRequirements(specDir), await loadSections(specDir), new Map(files.map((f) => [f.file, f.page])));

  const protocolSchemas = await loadSchemaDocs(root, 'schemas', 'schemas', 'protocol');
  const formatSchemas = await loadSchemaDocs(root, 'vectors/schemas', 'vectors/schemas', 'vector-format');
  const catalog = new SchemaCatalog([...protocolSchemas, ...formatSchemas]);
  const vectors = await loadVectorFiles(root);
  const checks = await loadChecks(root);

  for (const vector of vectors) {
    for (const id of vector.citations.keys()) if (!site.requirements.has(id)) problems.push(`vectors/${vector.file} cites ${id}, which spec/ does not define`);
  }

  const sitePaths = new Map<string, string>([
    ['README.md', 'index.html'],
    ['spec/', 'spec/index.html'],
    ['schemas/', 'schemas/index.html'],
    ['vectors/', 'vectors/index.html'],
    ['vectors/README.md', 'vectors/index.html'],
    ['vectors/schemas/', 'vectors/index.html#format-schemas'],
    ['conformance/', CHECKS_PAGE],
    ['reference/', 'api/index.html'],
  ]);
  for (const file of files) sitePaths.set(`spec/${file.file}`, file.page);
  for (const doc of catalog.docs) sitePaths.set(doc.repoPath, doc.page);
  for (const vector of vectors) sitePaths.set(vector.repoPath, vector.page);
  const sitePathOf = (repoPath: string): string | undefined => {
    const bare = repoPath.replace(/\/$/, '');
    return sitePaths.get(repoPath) ?? sitePaths.get(bare) ?? sitePaths.get(`${bare}/`) ?? (repoPath.startsWith('reference/') ? 'api/index.html' : undefined);
  };

  const spec = await renderSpec({
    root,
    site,
    files,
    sitePathOf,
    citations: (id, page) => ({ checks: checkCitations(checks, id, page), vectors: vectorCitations(vectors, id, page) }),
  });
  for (const page of spec) page.rendered.unlinked.forEach((p) => unlinked.add(p));

  const pages: Page[] = [...specPages(site, spec)];
  pages.push(...schemaPages(catalog, protocolSchemas, formatSchemas, site));
  const vectorsReadme = renderMarkdown(await readFile(path.join(root, 'vectors/README.md'), 'utf8'), {
    sourcePath: 'vectors/README.md',
    pagePath: 'vectors/index.html',
    sitePathOf,
  });
  vectorsReadme.unlinked.forEach((p) => unlinked.add(p));
  pages.push(...vectorPages(vectors, formatSchemas, catalog, site, vectorsReadme.html));

  const checksPage = renderChecksPage(checks, site);
  for (const id of checksPage.unknownRequirements) problems.push(`conformance check ${id} cites a requirement spec/ does not define`);
  pages.push({ path: CHECKS_PAGE, title: 'Conformance checks', area: 'checks', body: checksPage.body, sidebar: headingSidebar(CHECKS_PAGE, 'Checks by section', checksPage.body) });

  // Copy what the pages link to as raw files, and the assets.
  for (const doc of catalog.docs) await copyInto(path.join(root, doc.repoPath), path.join(outDir, doc.raw));
  for (const vector of vectors) await copyInto(path.join(root, vector.repoPath), path.join(outDir, vector.raw));
  for (const asset of await readdir(ASSETS)) {
    if (asset !== 'api.css') await copyFile(path.join(ASSETS, asset), path.join(outDir, 'assets', asset));
  }
  const badge = await placeBadge(root, outDir);

  const readmeText = await readFile(path.join(root, 'README.md'), 'utf8').catch(() => '');
  const specReadme = await readFile(path.join(specDir, 'README.md'), 'utf8');
  pages.push(homePage({ site, spec, catalog: protocolSchemas, vectors, checks, badge, readmeText, specReadme, sitePathOf }));

  const index = buildSearchIndex({ site, spec, schemas: catalog.docs, vectors, checks: checks.status === 'registry' ? checks.checks : [] });
  await writeFile(path.join(outDir, 'search-index.json'), JSON.stringify(index));
  await writeFile(path.join(outDir, 'search-index.js'), searchIndexScript(index));

  let api: ApiResult | undefined;
  if (options.api ?? true) {
    api = await buildApi(root, outDir, { echo: options.verbose ?? false });
    if (!api.generated) pages.push(apiPlaceholder(api));
  } else {
    pages.push(apiPlaceholder(undefined));
  }

  const info: SiteInfo = { specVersion: STRIPE402_VERSION, ...commitOf(root) };
  const html = new Map<string, string>();
  for (const page of pages) {
    const document = renderPage(page, info);
    html.set(page.path, document);
    await mkdir(path.dirname(path.join(outDir, page.path)), { recursive: true });
    await writeFile(path.join(outDir, page.path), document);
  }

  problems.push(...catalog.unresolved.map((ref) => `unresolved $ref in ${ref}`));
  const report: BuildReport = {
    outDir,
    pages: [...html.keys()],
    api,
    checks: { status: checks.status, count: checks.status === 'registry' ? checks.checks.length : 0 },
    badge: badge.source,
    brokenLinks: checkLinks(html, outDir),
    problems,
    unlinked: [...unlinked].sort(),
  };

  if (options.strict ?? true) {
    const failures = [
      ...(api?.errors ?? []).map((e) => `typedoc error: ${e}`),
      ...(api?.warnings ?? []).map((w) => `typedoc warning: ${w}`),
      ...report.brokenLinks.map((l) => `broken link: ${l}`),
      ...problems,
    ];
    if (failures.length) throw new SiteBuildError(`the site was written to ${outDir}, with ${failures.length} problem(s):\n  ${failures.join('\n  ')}`, report);
  }
  return report;
}

async function copyInto(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  await copyFile(from, to);
}

function commitOf(root: string): { commit?: string } {
  try {
    return { commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() };
  } catch {
    return {}; // not a git checkout (a tarball): the footer just omits the commit
  }
}

/** A sidebar from the h2 (and h3) headings with ids of a generated body. */
function headingSidebar(page: string, title: string, body: string, extra = ''): string {
  const items: TocItem[] = [];
  for (const match of body.matchAll(/<h([23]) id="([^"]+)">([\s\S]*?)<\/h\1>/g)) {
    const [, level, id = '', inner = ''] = match;
    const label = escapeHtml(inner.replace(/<a class="(anchor|section-link)"[\s\S]*?<\/a>/g, '').replace(/<span class="group-inputs">[\s\S]*<\/span>/, '').replace(/<[^>]+>/g, '').replace(/&amp;/g, '&').trim());
    const item = { href: `${page}#${id}`, label };
    const parent = items[items.length - 1];
    if (level === '3' && parent) parent.children = [...(parent.children ?? []), item];
    else items.push(item);
  }
  return extra + sidebarSection(title, tocList(page, items));
}

function schemaPages(catalog: SchemaCatalog, protocol: SchemaDoc[], formats: SchemaDoc[], site: SiteContext): Page[] {
  const pages: Page[] = [];
  const list = (docs: SchemaDoc[], current: string) =>
    tocList(current, docs.map((doc) => ({ href: doc.page, label: escapeHtml(doc.title), current: doc.page === current })));
  for (const doc of [...protocol, ...formats]) {
    const body = renderSchemaPage(catalog, doc, site);
    const own = doc.kind === 'protocol' ? protocol : formats;
    const sidebar = headingSidebar(doc.page, 'On this page', body, sidebarSection(doc.kind === 'protocol' ? 'Schemas' : 'Vector formats', list(own, doc.page)));
    pages.push({ path: doc.page, title: doc.title, area: doc.kind === 'protocol' ? 'schemas' : 'vectors', body, sidebar, description: doc.description });
  }
  const indexPath = 'schemas/index.html';
  const rows = protocol.map(
    (doc) => `<tr><td><a href="${escapeHtml(relativeUrl(indexPath, doc.page))}"><strong>${escapeHtml(doc.title)}</strong></a></td>
<td class="field-type">${schemaTypeSummary(catalog, doc, site, indexPath)}</td>
<td>${site.linkRequirementIds(doc.description, indexPath)}</td>
<td><a href="${escapeHtml(relativeUrl(indexPath, doc.raw))}"><code>${escapeHtml(path.posix.basename(doc.raw))}</code></a></td></tr>`,
  );
  const body = `<p class="eyebrow">JSON Schema draft 2020-12</p>
<h1 id="top">Schemas</h1>
<p class="lead">The JSON Schemas in <code>schemas/</code> define every stripe402 message and are part of the specification. They are the single source of the reference implementation's types. Each page shows a schema's fields and rules; the raw file is linked from it and below.</p>
<div class="table-wrap"><table class="schemas"><thead><tr><th>Schema</th><th>Type</th><th>Description</th><th>Raw file</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>
<p>The formats of the test-vector files have schemas of their own, listed with the <a href="${escapeHtml(relativeUrl(indexPath, 'vectors/index.html#format-schemas'))}">test vectors</a>.</p>`;
  pages.push({ path: indexPath, title: 'Schemas', area: 'schemas', body, sidebar: sidebarSection('Schemas', list(protocol, indexPath)) });
  return pages;
}

function vectorPages(vectors: VectorFile[], formats: SchemaDoc[], catalog: SchemaCatalog, site: SiteContext, readmeHtml: string): Page[] {
  const indexPath = 'vectors/index.html';
  const filesList = (current: string) => tocList(current, vectors.map((v) => ({ href: v.page, label: `<code>${escapeHtml(v.file)}</code>`, current: v.page === current })));
  const formatsList = (current: string) => tocList(current, formats.map((doc) => ({ href: doc.page, label: escapeHtml(doc.title), current: doc.page === current })));
  const pages: Page[] = vectors.map((vector) => {
    const body = renderVectorPage(vector, catalog, site);
    return {
      path: vector.page,
      title: vector.file,
      area: 'vectors',
      body,
      sidebar: headingSidebar(vector.page, 'On this page', body, sidebarSection('Vector files', filesList(vector.page))),
      description: vector.json.topic,
    };
  });
  const link = (target: string) => escapeHtml(relativeUrl(indexPath, target));
  const files = vectors
    .map((v) => `<tr><td><a href="${link(v.page)}"><code>${escapeHtml(v.file)}</code></a></td><td>${escapeHtml(v.json.topic)}</td><td class="num">${v.json.numberOfTests}</td><td><a href="${link(v.raw)}">raw</a></td></tr>`)
    .join('\n');
  const formatRows = formats
    .map((doc) => `<tr><td><a href="${link(doc.page)}">${escapeHtml(doc.title)}</a></td><td>${site.linkRequirementIds(doc.description, indexPath)}</td><td><a href="${link(doc.raw)}"><code>${escapeHtml(path.posix.basename(doc.raw))}</code></a></td></tr>`)
    .join('\n');
  const body = `<p class="eyebrow">Test vectors</p>
<article class="prose">${readmeHtml}</article>
<h2 id="vector-files">The vector files on this site</h2>
<div class="table-wrap"><table><thead><tr><th>File</th><th>Topic</th><th class="num">Cases</th><th>Raw</th></tr></thead><tbody>
${files}
</tbody></table></div>
<h2 id="format-schemas">Formats of the vector files</h2>
<div class="table-wrap"><table><thead><tr><th>Format</th><th>Description</th><th>Raw</th></tr></thead><tbody>
${formatRows}
</tbody></table></div>`;
  pages.push({
    path: indexPath,
    title: 'Test vectors',
    area: 'vectors',
    body,
    sidebar: sidebarSection('Vector files', filesList(indexPath)) + sidebarSection('Formats', formatsList(indexPath)),
  });
  return pages;
}

interface HomeInputs {
  site: SiteContext;
  spec: RenderedSpecPage[];
  catalog: SchemaDoc[];
  vectors: VectorFile[];
  checks: ChecksSource;
  badge: BadgeResult;
  readmeText: string;
  specReadme: string;
  sitePathOf(repoPath: string): string | undefined;
}

function homePage({ site, spec, catalog, vectors, checks, badge, readmeText, specReadme, sitePathOf }: HomeInputs): Page {
  const page = 'index.html';
  const link = (target: string) => escapeHtml(relativeUrl(page, target));
  const tagline = /^\*\*(.+)\*\*\s*$/m.exec(readmeText)?.[1] ?? 'Pay for an HTTP API with a card, on the first request.';
  const abstractMarkdown = /^## Abstract\s*\n([\s\S]*?)(?=^## )/m.exec(specReadme)?.[1] ?? '';
  const abstract = renderMarkdown(abstractMarkdown, { sourcePath: 'spec/README.md', pagePath: page, sitePathOf }).html;
  const cases = vectors.reduce((sum, v) => sum + v.json.numberOfTests, 0);
  const chapters = site.sections.filter((s) => s.depth === 1);

  const report = badge.report;
  const reportLink = badge.reportFile ? ` · <a href="${link(`${REPORT_DIR}/${badge.reportFile}`)}">JSON report</a>` : '';
  const reportDetail = report
    ? `level reached <strong>${escapeHtml(report.levelReached)}</strong> · ${report.summary.passed} passed, ${report.summary.failed} failed, ${report.summary.skipped} skipped · ${escapeHtml(report.startedAt.slice(0, 10))}${reportLink}`
    : '';
  const badgeHtml =
    badge.source === 'none'
      ? `<span class="badge-placeholder" id="conformance-badge">badge: run the conformance suite</span>
<span class="badge-detail">Run <code>npx @stripe402/conformance --target URL --json ${REPORT_DIR}/report.json --badge ${REPORT_DIR}/badge.svg</code> against the reference server, then <code>npm run site</code>.</span>`
      : `<img id="conformance-badge" src="${link(BADGE_PATH)}" alt="stripe402 conformance badge of the reference server${report ? `: ${escapeHtml(report.levelReached)}` : ''}" height="20">
<span class="badge-detail">${reportDetail || 'From the last conformance run of the reference server.'}</span>`;

  const card = (href: string, title: string, text: string, stat: string) =>
    `<a class="card" href="${link(href)}"><span class="card-title">${escapeHtml(title)}</span><span class="card-text">${text}</span><span class="card-stat">${stat}</span></a>`;
  const checkStat = checks.status === 'registry' ? `${checks.checks.length} checks` : 'registry not built yet';
  const cards = [
    card('spec/index.html', 'Specification', 'The normative protocol: headers, messages, units, client identity, processing, errors, ledger guarantees.', `${chapters.length} sections · ${site.requirements.size} requirements`),
    card('spec/primer.html', 'Primer', 'Why stripe402 is designed the way it is. Non-normative.', 'rationale'),
    card('schemas/index.html', 'JSON Schemas', 'Every message as JSON Schema 2020-12: the source of truth for the shapes.', `${catalog.length} schemas`),
    card('vectors/index.html', 'Test vectors', 'Language-neutral cases for the client id, header encoding, units and messages.', `${vectors.length} files · ${cases} cases`),
    card(CHECKS_PAGE, 'Conformance checks', 'What <code>npx @stripe402/conformance --target URL</code> tests, each check tied to the requirement it verifies.', checkStat),
    card('api/index.html', 'API reference', 'The TypeScript packages, one per job: core, server and ledgers, the Hono, Express and Fastify adapters, client, conformance, emulator.', 'typedoc'),
  ].join('\n');
  const chapterList = chapters
    .map((s) => `<li><a href="${link(`${site.specPage(s.file)}#${s.anchor}`)}"><span class="toc-num">${escapeHtml(s.number)}.</span> ${escapeHtml(s.title)}</a></li>`)
    .join('');
  const primer = spec.find((p) => p.file === 'primer.md');
  // The three steps of the flow, each linked to where the spec walks through it.
  const steps = [
    ['2.2.1', 'The challenge', 'An unpaid request gets <code>402</code> and a <code>payment-required</code> header with the price.'],
    ['2.2.2', 'The top-up', 'The client repeats it with a Stripe PaymentMethod in <code>payment</code>; the server charges a top-up and credits a balance.'],
    ['2.2.3', 'Spending the balance', 'Later requests present the client id, an HMAC of the card fingerprint, until the balance runs out.'],
  ]
    .filter(([number]) => site.sectionPath(number ?? '') !== undefined)
    .map(([number = '', title = '', text = '']) => `<li><a href="${link(site.sectionPath(number) ?? '')}">${escapeHtml(title)}</a><span>${text}</span></li>`)
    .join('');
  const body = `<section class="hero">
<div class="hero-main">
<p class="eyebrow">Protocol · wire version ${STRIPE402_VERSION}</p>
<h1>stripe402</h1>
<p class="tagline">${escapeHtml(tagline)}</p>
<div class="abstract">${abstract}</div>
</div>
<div class="hero-side">
<div class="badge-card"><span class="badge-label">Reference server conformance</span>${badgeHtml}</div>
${steps ? `<div class="flow"><h2 class="flow-title">How it works</h2><ol class="flow-steps">${steps}</ol></div>` : ''}
</div>
</section>
<h2 id="parts">The parts</h2>
<div class="cards">
${cards}
</div>
<h2 id="sections">The specification</h2>
<ul class="chapters">${chapterList}${primer ? `<li><a href="${link(primer.page)}">${escapeHtml(primer.title)}</a> <span class="muted">(non-normative)</span></li>` : ''}</ul>`;
  return { path: page, title: 'stripe402: the protocol, its schemas, vectors and conformance suite', area: 'home', body, description: tagline };
}

function apiPlaceholder(api: ApiResult | undefined): Page {
  const why = api
    ? `<p>typedoc could not generate it:</p><pre class="code"><code>${escapeHtml([...api.errors, ...api.warnings].join('\n') || 'no output')}</code></pre>`
    : '<p>This build skipped the API reference.</p>';
  return {
    path: 'api/index.html',
    title: 'API reference',
    area: 'home',
    body: `<h1 id="top">API reference</h1>${why}<p>Run <code>npm run site</code> to generate it.</p>`,
  };
}

function unescapeAttribute(value: string): string {
  return value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * Every href and src of the generated pages that is not an external URL must
 * name a file of the site and, when it has a fragment and names a generated
 * page, an id on that page. (typedoc's own pages are checked by the site test
 * in a browser.)
 */
function checkLinks(html: Map<string, string>, outDir: string): string[] {
  const ids = new Map<string, Set<string>>();
  for (const [page, document] of html) {
    ids.set(page, new Set([...document.matchAll(/\sid="([^"]*)"/g)].map((m) => unescapeAttribute(m[1] ?? ''))));
  }
  const broken: string[] = [];
  for (const [page, document] of html) {
    for (const match of document.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
      const href = unescapeAttribute(match[1] ?? '');
      if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) continue;
      const hashAt = href.indexOf('#');
      const target = hashAt === -1 ? href : href.slice(0, hashAt);
      const fragment = hashAt === -1 ? '' : decodeURIComponent(href.slice(hashAt + 1));
      const resolved = target === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), target));
      if (!html.has(resolved) && !existsSync(path.join(outDir, resolved))) {
        broken.push(`${page} -> ${href} (no such file)`);
        continue;
      }
      if (fragment && html.has(resolved) && !ids.get(resolved)?.has(fragment)) broken.push(`${page} -> ${href} (no id "${fragment}")`);
    }
  }
  return broken;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  const started = performance.now();
  try {
    const report = await buildSite({ verbose: true });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`site: ${report.pages.length} pages, ${report.checks.count} conformance checks, API reference ${report.api?.generated ? 'generated' : 'missing'}, badge: ${report.badge}`);
    if (report.unlinked.length) console.log(`site: shown as plain text (not on the site): ${report.unlinked.join(', ')}`);
    console.log(`site: written to ${path.relative(process.cwd(), report.outDir) || '.'}/ in ${seconds}s; open index.html`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
