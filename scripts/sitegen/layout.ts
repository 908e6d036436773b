/**
 * The page shell every generated page shares: the header with the site
 * navigation and the search box, a sidebar (the page's table of contents),
 * the content and the footer. Every URL in it is relative to the page, and
 * every asset is a file of the site itself: the site works offline.
 */
import { escapeHtml, relativeUrl, rootPrefix } from './html.ts';

export type Area = 'home' | 'spec' | 'primer' | 'schemas' | 'vectors' | 'checks';

/** One generated page before the shell is put around it. */
export interface Page {
  /** Site-root relative path, e.g. `spec/03-encoding.html`. */
  path: string;
  title: string;
  area: Area;
  /** The HTML of the main column. */
  body: string;
  /** The HTML of the sidebar; none for a page without one. */
  sidebar?: string;
  description?: string;
}

/** An entry of a sidebar list. */
export interface TocItem {
  /** Site path (with optional fragment) the entry links to. */
  href: string;
  /** HTML of the label. */
  label: string;
  current?: boolean;
  children?: TocItem[];
}

const NAV: { area: Area | 'api'; label: string; href: string }[] = [
  { area: 'spec', label: 'Specification', href: 'spec/index.html' },
  { area: 'primer', label: 'Primer', href: 'spec/primer.html' },
  { area: 'schemas', label: 'Schemas', href: 'schemas/index.html' },
  { area: 'vectors', label: 'Vectors', href: 'vectors/index.html' },
  { area: 'checks', label: 'Conformance', href: 'conformance/index.html' },
  { area: 'api', label: 'API', href: 'api/index.html' },
];

/** A nested list of links for a sidebar, relative to `page`. */
export function tocList(page: string, items: TocItem[], className = 'toc-list'): string {
  const entries = items.map((item) => {
    const current = item.current ? ' aria-current="page"' : '';
    const children = item.children?.length ? tocList(page, item.children, 'toc-sub') : '';
    return `<li><a href="${escapeHtml(relativeUrl(page, item.href))}"${current}>${item.label}</a>${children}</li>`;
  });
  return `<ul class="${className}">${entries.join('')}</ul>`;
}

/** A sidebar block with a heading. */
export function sidebarSection(title: string, content: string): string {
  return `<section class="sidebar-section"><h2 class="sidebar-title">${escapeHtml(title)}</h2>${content}</section>`;
}

/** Facts about the build shown in the footer. */
export interface SiteInfo {
  commit?: string;
  specVersion: number;
}

/** The complete HTML document of a page. */
export function renderPage(page: Page, info: SiteInfo): string {
  const root = rootPrefix(page.path);
  const link = (target: string) => escapeHtml(relativeUrl(page.path, target));
  const nav = NAV.map(
    (item) =>
      `<a href="${link(item.href)}"${item.area === page.area ? ' aria-current="true"' : ''}>${escapeHtml(item.label)}</a>`,
  ).join('');
  const title = page.area === 'home' ? page.title : `${page.title} · stripe402`;
  const sidebar = page.sidebar
    ? `<aside class="sidebar" aria-label="Contents"><details class="sidebar-toggle" open><summary>Contents</summary>${page.sidebar}</details></aside>`
    : '';
  const commit = info.commit ? ` Built from commit <code>${escapeHtml(info.commit)}</code>.` : '';
  return `<!doctype html>
<html lang="en" data-root="${escapeHtml(root)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
${page.description ? `<meta name="description" content="${escapeHtml(page.description)}">\n` : ''}<link rel="icon" href="${link('assets/favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${link('assets/style.css')}">
<script defer src="${link('assets/site.js')}"></script>
</head>
<body class="area-${page.area}${page.sidebar ? ' has-sidebar' : ''}">
<a class="skip-link" href="#content">Skip to content</a>
<header class="site-header">
  <div class="header-inner">
    <a class="brand" href="${link('index.html')}"><span class="brand-mark" aria-hidden="true">402</span><span class="brand-name">stripe402</span></a>
    <nav class="site-nav" aria-label="Site">${nav}</nav>
    <div class="search" role="search">
      <label class="visually-hidden" for="site-search">Search the specification</label>
      <input id="site-search" class="search-input" type="search" placeholder="Search the spec   /" autocomplete="off" spellcheck="false" aria-controls="search-results" aria-expanded="false">
      <div id="search-results" class="search-results" role="listbox" aria-label="Search results" hidden></div>
    </div>
  </div>
</header>
<div class="layout">
${sidebar}<main id="content" class="content">
${page.body}
</main>
</div>
<footer class="site-footer">
  <p>stripe402 protocol, wire version ${info.specVersion}. This site is generated from the repository's <code>spec/</code>, <code>schemas/</code>, <code>vectors/</code>, <code>conformance/</code> and <code>reference/</code> by <code>npm run site</code>.${commit}</p>
</footer>
</body>
</html>
`;
}
