/**
 * The spec pages: one page per file of spec/ (the README as the spec's
 * front page, the numbered sections in order, the primer last), with the
 * spec's table of contents as sidebar and previous/next links. Each
 * requirement lists the conformance checks and vector cases that cite it.
 * The build checks the rendered anchors against scripts/spec-requirements.ts,
 * so a requirement or heading the parser knows can never lack its anchor.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SiteContext } from './context.ts';
import { escapeHtml, relativeUrl } from './html.ts';
import { sidebarSection, tocList, type Page, type TocItem } from './layout.ts';
import { renderMarkdown, type RenderedMarkdown } from './markdown.ts';

/** A spec file and the page it becomes. */
export interface SpecFile {
  /** e.g. `03-encoding.md`. */
  file: string;
  page: string;
}

/** The page of a spec file: README.md is the spec's index. */
export function specPagePath(file: string): string {
  return file === 'README.md' ? 'spec/index.html' : `spec/${file.replace(/\.md$/, '.html')}`;
}

/** The order of the spec pages: the front page, the numbered sections, then the rest (the primer). */
export function orderSpecFiles(files: string[]): SpecFile[] {
  const ordered = [...files.filter((f) => f === 'README.md'), ...files.filter((f) => f !== 'README.md')];
  return ordered.map((file) => ({ file, page: specPagePath(file) }));
}

export interface RenderedSpecPage extends SpecFile {
  rendered: RenderedMarkdown;
  page: string;
  title: string;
}

export interface SpecRenderOptions {
  root: string;
  site: SiteContext;
  files: SpecFile[];
  sitePathOf(repoPath: string): string | undefined;
  /** The notes under a requirement (checks, vectors), as HTML fragments. */
  citations(id: string, page: string): { checks: string[]; vectors: string[] };
}

function requirementMeta(citations: { checks: string[]; vectors: string[] }): string {
  const parts: string[] = [];
  if (citations.checks.length) parts.push(`<span class="req-meta-item"><span class="req-meta-label">Checked by</span> ${citations.checks.join(', ')}</span>`);
  if (citations.vectors.length) parts.push(`<span class="req-meta-item"><span class="req-meta-label">Vectors</span> ${citations.vectors.join(', ')}</span>`);
  return parts.length ? `<div class="req-meta">${parts.join('')}</div>\n` : '';
}

/** Renders every spec file and checks its anchors against the requirement parser. */
export async function renderSpec(options: SpecRenderOptions): Promise<RenderedSpecPage[]> {
  const { root, site, files } = options;
  const pages: RenderedSpecPage[] = [];
  for (const { file, page } of files) {
    const markdown = await readFile(path.join(root, 'spec', file), 'utf8');
    const rendered = renderMarkdown(markdown, {
      sourcePath: `spec/${file}`,
      pagePath: page,
      sitePathOf: options.sitePathOf,
      requirementLevel: (id) => site.requirements.get(id)?.level,
      requirementMeta: (id) => requirementMeta(options.citations(id, page)),
    });
    const missing: string[] = [];
    for (const section of site.sections.filter((s) => s.file === file)) {
      if (!rendered.anchors.has(section.anchor)) missing.push(`heading ${section.number} (#${section.anchor})`);
    }
    const expected = [...site.requirements.values()].filter((r) => r.file === file).map((r) => r.id);
    for (const id of expected) if (!rendered.requirementIds.includes(id)) missing.push(`requirement ${id}`);
    for (const id of rendered.requirementIds) {
      if (!expected.includes(id)) missing.push(`requirement ${id} rendered but unknown to scripts/spec-requirements.ts`);
    }
    if (missing.length) throw new Error(`spec/${file}: the rendered page lacks anchors the spec parser defines: ${missing.join('; ')}`);
    pages.push({ file, page, rendered, title: rendered.title ?? file });
  }
  return pages;
}

/** The spec's table of contents for the sidebar, with the current page's sections expanded. */
export function specSidebar(site: SiteContext, pages: RenderedSpecPage[], current: string): string {
  const items: TocItem[] = [];
  for (const page of pages) {
    if (page.file === 'README.md') {
      items.push({ href: page.page, label: 'Status and abstract', current: page.page === current });
      continue;
    }
    const chapter = site.sections.find((s) => s.file === page.file && s.depth === 1);
    const isCurrent = page.page === current;
    const label = chapter
      ? `<span class="toc-num">${escapeHtml(chapter.number)}.</span> ${escapeHtml(chapter.title)}`
      : `${escapeHtml(page.title)}`;
    const children = isCurrent
      ? chapter
        ? site.sections
            .filter((s) => s.file === page.file && s.depth === 2)
            .map((s) => ({ href: `${page.page}#${s.anchor}`, label: `<span class="toc-num">${escapeHtml(s.number)}</span> ${escapeHtml(s.title)}` }))
        : page.rendered.blocks.filter((b) => b.depth === 2).map((b) => ({ href: `${page.page}#${b.anchor}`, label: escapeHtml(b.title) }))
      : undefined;
    items.push({ href: page.page, label, current: isCurrent, ...(children ? { children } : {}) });
  }
  return sidebarSection('Specification', tocList(current, items));
}

/** The Page objects of the spec, with previous/next links. */
export function specPages(site: SiteContext, pages: RenderedSpecPage[]): Page[] {
  return pages.map((page, index) => {
    const previous = pages[index - 1];
    const next = pages[index + 1];
    const pager = `<nav class="pager" aria-label="Previous and next">${
      previous ? `<a class="pager-prev" href="${escapeHtml(relativeUrl(page.page, previous.page))}"><span class="pager-label">Previous</span>${escapeHtml(previous.title)}</a>` : '<span></span>'
    }${next ? `<a class="pager-next" href="${escapeHtml(relativeUrl(page.page, next.page))}"><span class="pager-label">Next</span>${escapeHtml(next.title)}</a>` : ''}</nav>`;
    const normative = /^\d/.test(page.file)
      ? ''
      : page.file === 'README.md'
        ? '<p class="eyebrow">Specification</p>'
        : '<p class="eyebrow">Non-normative</p>';
    return {
      path: page.page,
      title: page.title,
      area: page.file === 'primer.md' ? 'primer' : 'spec',
      body: `${normative}<article class="prose spec-text">${page.rendered.html}</article>${pager}`,
      sidebar: specSidebar(site, pages, page.page),
    };
  });
}
