/**
 * Renders the repository's Markdown (the spec, the primer, the vector
 * README) to HTML for the site with markdown-it, adding what the site needs
 * on top of CommonMark: heading ids with GitHub's slugs (the anchors the
 * spec's own cross-links use, via headingAnchor() of scripts/spec-requirements.ts),
 * an element with the id requirementAnchor() gives for every `**[ENC-5]**`
 * requirement marker, with a visible ¶ link, repository links rewritten to
 * the generated pages, and highlighted JSON and HTTP code blocks. It also
 * collects the plain text under each heading for the search index.
 */
import MarkdownIt from 'markdown-it';
import path from 'node:path';
import { headingAnchor, plainText, requirementAnchor } from '../spec-requirements.ts';
import { escapeHtml, highlightHttp, highlightJson, relativeUrl } from './html.ts';

type Token = ReturnType<MarkdownIt['parse']>[number];

/** What a page tells the renderer about where it lives and how to link. */
export interface MarkdownContext {
  /** The repository path of the Markdown file, e.g. `spec/03-encoding.md`. */
  sourcePath: string;
  /** The site path of the page it becomes, e.g. `spec/03-encoding.html`. */
  pagePath: string;
  /** The site path (optionally with `#fragment`) of a repository path, or undefined when the site has no page for it. */
  sitePathOf(repoPath: string): string | undefined;
  /** HTML appended inside a requirement's element (the checks and vectors that cite it). */
  requirementMeta?(id: string): string;
  /** MUST, SHOULD or MAY, for the requirement's styling. */
  requirementLevel?(id: string): string | undefined;
}

/** The text under one heading, for search. */
export interface TextBlock {
  anchor: string;
  /** The heading text, Markdown stripped. */
  title: string;
  depth: number;
  text: string;
}

export interface RenderedMarkdown {
  html: string;
  /** The text of the first heading, or undefined when there is none. */
  title: string | undefined;
  /** Every id the page defines: headings and requirements. */
  anchors: Set<string>;
  /** The requirement ids found, in document order. */
  requirementIds: string[];
  blocks: TextBlock[];
  /** Repository paths linked from the file that the site has no page for (shown as plain text). */
  unlinked: string[];
}

interface Env {
  context: MarkdownContext;
  anchors: Set<string>;
  requirementIds: string[];
  blocks: TextBlock[];
  unlinked: string[];
  title?: string;
}

const REQUIREMENT_MARKER = /^\*\*\[([^\]\s]+)\]\*\*/;

function createRenderer(): MarkdownIt {
  // Raw HTML in the sources is shown as text: the generator adds every
  // element the site needs itself.
  const md = new MarkdownIt({ html: false, linkify: false, typographer: false });
  md.core.ruler.push('stripe402_site', (state) => {
    const env = state.env as Env;
    anchorHeadings(state.tokens, env, (type, tag, nesting) => new state.Token(type, tag, nesting));
    rewriteLinks(state.tokens, env, (type, tag, nesting) => new state.Token(type, tag, nesting));
    state.tokens = markRequirements(state.tokens, env, (type, tag, nesting) => new state.Token(type, tag, nesting));
    collectText(state.tokens, env);
  });
  md.renderer.rules.table_open = () => '<div class="table-wrap"><table>\n';
  md.renderer.rules.table_close = () => '</table></div>\n';
  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx] as Token;
    const lang = token.info.trim().split(/\s+/)[0] ?? '';
    const text = token.content.replace(/\n$/, '');
    const code = lang === 'json' ? highlightJson(text) : lang === 'http' ? highlightHttp(text) : escapeHtml(text);
    const label = lang === '' ? '' : ` data-lang="${escapeHtml(lang)}"`;
    return `<pre class="code"${label}><code>${code}</code></pre>\n`;
  };
  return md;
}

type MakeToken = (type: string, tag: string, nesting: -1 | 0 | 1) => Token;

function htmlInline(make: MakeToken, html: string): Token {
  const token = make('html_inline', '', 0);
  token.content = html;
  return token;
}

function htmlBlock(make: MakeToken, html: string): Token {
  const token = make('html_block', '', 0);
  token.content = html;
  token.block = true;
  return token;
}

/** Gives every heading its GitHub slug as id (with -1, -2 for repeats, as GitHub does) and a ¶ link. */
function anchorHeadings(tokens: Token[], env: Env, make: MakeToken): void {
  const counts = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) {
    const open = tokens[i] as Token;
    if (open.type !== 'heading_open') continue;
    const inline = tokens[i + 1] as Token;
    const base = headingAnchor(inline.content);
    const seen = counts.get(base) ?? 0;
    counts.set(base, seen + 1);
    const anchor = seen === 0 ? base : `${base}-${seen}`;
    open.attrSet('id', anchor);
    env.anchors.add(anchor);
    env.title ??= plainText(inline.content);
    inline.children?.push(
      htmlInline(make, ` <a class="anchor" href="#${escapeHtml(anchor)}" aria-label="Link to this section">¶</a>`),
    );
  }
}

/** Points links to repository files at the pages generated from them. */
function rewriteLinks(tokens: Token[], env: Env, make: MakeToken): void {
  const { context } = env;
  for (const block of tokens) {
    const children = block.children;
    if (block.type !== 'inline' || !children) continue;
    for (let i = 0; i < children.length; i++) {
      const link = children[i] as Token;
      if (link.type !== 'link_open') continue;
      const href = link.attrGet('href') ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(href)) {
        link.attrSet('class', 'external');
        continue;
      }
      if (href.startsWith('#')) continue;
      const [target = '', fragment] = href.split('#', 2);
      // join normalizes `..` and keeps a trailing slash, so `../schemas/` stays a directory.
      const repoPath = path.posix.join(path.posix.dirname(context.sourcePath), target);
      const sitePath = context.sitePathOf(repoPath);
      if (sitePath !== undefined) {
        const withFragment = fragment !== undefined ? sitePath.replace(/#.*$/, '') + '#' + fragment : sitePath;
        link.attrSet('href', relativeUrl(context.pagePath, withFragment));
        continue;
      }
      // Not on the site (a test file, a guide): keep the text, drop the link.
      env.unlinked.push(repoPath);
      const close = children.findIndex((token, j) => j > i && token.type === 'link_close');
      children[i] = htmlInline(make, `<span class="repo-path" title="In the repository: ${escapeHtml(repoPath)}">`);
      if (close !== -1) children[close] = htmlInline(make, '</span>');
    }
  }
}

/** The index of the token closing the one at `open`. */
function closeOf(tokens: Token[], open: number): number {
  const start = tokens[open] as Token;
  const closeType = start.type.replace(/_open$/, '_close');
  for (let j = open + 1; j < tokens.length; j++) {
    const token = tokens[j] as Token;
    if (token.type === closeType && token.level === start.level) return j;
  }
  throw new Error(`unclosed ${start.type}`);
}

/**
 * Gives each requirement an element with its anchor id. A requirement that is
 * a list item marks the item; one that is a paragraph is wrapped, together
 * with a list that continues it without a blank line (as scripts/spec-requirements.ts
 * reads it), in a div.
 */
function markRequirements(tokens: Token[], env: Env, make: MakeToken): Token[] {
  const before = new Map<number, Token[]>();
  const after = new Map<number, Token[]>();
  const add = (map: Map<number, Token[]>, index: number, token: Token) => map.set(index, [...(map.get(index) ?? []), token]);
  const { context } = env;

  for (let i = 1; i < tokens.length; i++) {
    const inline = tokens[i] as Token;
    const paragraph = tokens[i - 1] as Token;
    if (inline.type !== 'inline' || paragraph.type !== 'paragraph_open') continue;
    const marker = REQUIREMENT_MARKER.exec(inline.content);
    if (!marker) continue;
    const id = marker[1] ?? '';
    const anchor = requirementAnchor(id);
    env.requirementIds.push(id);
    env.anchors.add(anchor);

    const children = inline.children ?? [];
    // markdown-it may open the children with an empty text token.
    const first = children.findIndex((child) => !(child.type === 'text' && child.content === ''));
    if (children[first]?.type === 'strong_open' && children[first + 2]?.type === 'strong_close') {
      children.splice(
        first,
        3,
        htmlInline(
          make,
          `<strong class="req-id">[${escapeHtml(id)}]</strong><a class="anchor req-anchor" href="#${escapeHtml(anchor)}" aria-label="Link to requirement ${escapeHtml(id)}">¶</a>`,
        ),
      );
    }

    const level = context.requirementLevel?.(id);
    const classes = `requirement${level ? ` req-${level.toLowerCase()}` : ''}`;
    const meta = context.requirementMeta?.(id) ?? '';
    const item = tokens[i - 2];
    if (item?.type === 'list_item_open') {
      item.attrSet('id', anchor);
      item.attrJoin('class', classes);
      if (meta) add(before, closeOf(tokens, i - 2), htmlBlock(make, meta));
      continue;
    }
    let last = closeOf(tokens, i - 1);
    let end = paragraph.map?.[1];
    for (let next = last + 1; next < tokens.length; next = last + 1) {
      const token = tokens[next] as Token;
      const continues =
        token.level === paragraph.level &&
        (token.type === 'bullet_list_open' || token.type === 'ordered_list_open') &&
        token.map !== null &&
        token.map[0] === end;
      if (!continues) break;
      last = closeOf(tokens, next);
      end = token.map?.[1];
    }
    add(before, i - 1, htmlBlock(make, `<div class="${classes}" id="${escapeHtml(anchor)}">\n`));
    add(after, last, htmlBlock(make, `${meta}</div>\n`));
  }

  const out: Token[] = [];
  tokens.forEach((token, index) => {
    out.push(...(before.get(index) ?? []), token, ...(after.get(index) ?? []));
  });
  return out;
}

/** Gathers the plain text under each heading (code blocks left out) for the search index. */
function collectText(tokens: Token[], env: Env): void {
  let current: TextBlock | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    if (token.type === 'heading_open') {
      const inline = tokens[i + 1] as Token;
      current = { anchor: token.attrGet('id') ?? '', title: plainText(inline.content), depth: Number(token.tag.slice(1)), text: '' };
      env.blocks.push(current);
      i++;
      continue;
    }
    if (token.type === 'inline' && current) {
      current.text += (current.text ? ' ' : '') + plainText(token.content);
    }
  }
}

const renderer = createRenderer();

/** Renders one Markdown file for the page `context.pagePath`. */
export function renderMarkdown(markdown: string, context: MarkdownContext): RenderedMarkdown {
  const env: Env = { context, anchors: new Set(), requirementIds: [], blocks: [], unlinked: [] };
  const html = renderer.render(markdown, env);
  return {
    html,
    title: env.title,
    anchors: env.anchors,
    requirementIds: env.requirementIds,
    blocks: env.blocks,
    unlinked: env.unlinked,
  };
}
