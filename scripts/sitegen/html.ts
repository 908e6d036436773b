/**
 * Small HTML helpers the site generator shares: escaping, links between site
 * pages as relative URLs (so the site works from any directory, from a
 * file:// URL and behind any path prefix), and two tiny syntax highlighters
 * for the JSON and raw HTTP the spec and the schemas show. Highlighting is
 * done here at build time so the pages load no script and no library for it.
 */
import path from 'node:path';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * The relative URL from one site page to another site path (which may carry
 * a `#fragment`). Both are site-root relative POSIX paths such as
 * `spec/03-encoding.html`.
 */
export function relativeUrl(fromPage: string, toPath: string): string {
  const hashAt = toPath.indexOf('#');
  const target = hashAt === -1 ? toPath : toPath.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : toPath.slice(hashAt);
  if (target === '') return fragment;
  const relative = path.posix.relative(path.posix.dirname(fromPage), target);
  return (relative === '' ? path.posix.basename(target) : relative) + fragment;
}

/** The prefix that leads from a page back to the site root, e.g. `../` for `spec/x.html`. */
export function rootPrefix(page: string): string {
  const depth = page.split('/').length - 1;
  return '../'.repeat(depth);
}

/** An id attribute value made from arbitrary text: lower case, runs of other characters to one hyphen. */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

const JSON_TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],])/g;

/** JSON text (need not be valid JSON) as HTML with spans for keys, strings, numbers and literals. */
export function highlightJson(text: string): string {
  let out = '';
  let last = 0;
  for (const match of text.matchAll(JSON_TOKEN)) {
    const index = match.index ?? 0;
    out += escapeHtml(text.slice(last, index));
    const [whole, string, colon, number, literal, punctuation] = match;
    if (string !== undefined) {
      out += colon !== undefined
        ? `<span class="tok-key">${escapeHtml(string)}</span>${escapeHtml(colon)}`
        : `<span class="tok-str">${escapeHtml(string)}</span>`;
    } else if (number !== undefined) {
      out += `<span class="tok-num">${escapeHtml(number)}</span>`;
    } else if (literal !== undefined) {
      out += `<span class="tok-lit">${literal}</span>`;
    } else if (punctuation !== undefined) {
      out += `<span class="tok-punct">${escapeHtml(punctuation)}</span>`;
    } else {
      out += escapeHtml(whole);
    }
    last = index + whole.length;
  }
  return out + escapeHtml(text.slice(last));
}

/**
 * A raw HTTP message as HTML: the request or status line and the header
 * names are marked; the body (after the first blank line) is highlighted as
 * JSON when it looks like JSON.
 */
export function highlightHttp(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let inBody = false;
  const body: string[] = [];
  lines.forEach((line, index) => {
    if (inBody) {
      body.push(line);
      return;
    }
    if (line.trim() === '' && index > 0) {
      inBody = true;
      out.push('');
      return;
    }
    const header = /^([A-Za-z0-9-]+)(:)(.*)$/.exec(line);
    if (index === 0 || /^(HTTP\/|[A-Z]+ \S)/.test(line)) {
      out.push(`<span class="tok-start">${escapeHtml(line)}</span>`);
    } else if (header) {
      const [, name = '', colon = '', value = ''] = header;
      out.push(`<span class="tok-key">${escapeHtml(name)}</span>${colon}<span class="tok-value">${escapeHtml(value)}</span>`);
    } else {
      out.push(escapeHtml(line));
    }
  });
  const bodyText = body.join('\n');
  const rendered = /^\s*[[{]/.test(bodyText) ? highlightJson(bodyText) : escapeHtml(bodyText);
  return inBody ? out.join('\n') + '\n' + rendered : out.join('\n');
}

/** Pretty-printed JSON of a value, highlighted, inside a code block. */
export function jsonBlock(value: unknown): string {
  return `<pre class="code" data-lang="json"><code>${highlightJson(JSON.stringify(value, null, 2))}</code></pre>`;
}
