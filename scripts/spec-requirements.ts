/**
 * Reads the normative specification in spec/ and extracts its requirement ids
 * and numbered sections. The spec marks each requirement as a paragraph or list
 * item that begins with `**[AREA-N]**`; that marker is the only thing that
 * defines an id. Vectors, the conformance suite and the site generator import
 * this module, so that every citation of a requirement can be checked against
 * the text it cites, and so that the spec, not a hand-kept list, stays the
 * source of truth.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The strongest RFC 2119 keyword of a requirement. */
export type RequirementLevel = 'MUST' | 'SHOULD' | 'MAY';

export interface Requirement {
  /** The id, e.g. `ENC-5`. */
  id: string;
  /** The sentence(s) after the id marker, Markdown stripped to plain text, one paragraph. */
  text: string;
  /** The spec file that defines it, e.g. `03-encoding.md`. */
  file: string;
  /** The number of the nearest numbered heading above it, e.g. `3.5`. */
  section: string;
  /** The title of that heading, without its number. */
  sectionTitle: string;
  /** The strongest keyword in the text. */
  level: RequirementLevel;
  /** The 1-based line of the marker in its file, for error messages. */
  line: number;
}

export interface Section {
  /** The section number, e.g. `3.2` (no trailing dot). */
  number: string;
  /** The heading text without its number, Markdown stripped. */
  title: string;
  /** The heading level: 1 for `#`, 2 for `##`, ... */
  depth: number;
  /** The spec file, e.g. `03-encoding.md`. */
  file: string;
  /** The anchor a Markdown renderer gives the heading (GitHub's slug rules), e.g. `32-the-payment-header`. */
  anchor: string;
}

/** The spec directory of this repository. */
export const DEFAULT_SPEC_DIR = fileURLToPath(new URL('../spec/', import.meta.url));

/** The form of a requirement id: an upper-case area, a hyphen, a number from 1 without leading zeros. */
export const REQUIREMENT_ID_PATTERN = /^[A-Z]+-[1-9][0-9]*$/;

/** The anchor of a requirement id, as the site generator creates it. */
export function requirementAnchor(id: string): string {
  return id.toLowerCase();
}

// A marker opens a paragraph or a list item. The bracket content is captured
// loosely so that a malformed id reaches the id-form check instead of being
// silently ignored.
const MARKER = /^(\s*)((?:[-*+]|\d+[.)])\s+)?\*\*\[([^\]\s]+)\]\*\*(.*)$/;
const NUMBERED_HEADING = /^(#{1,6})\s+(\d+(?:\.\d+)*)\.\s+(.+?)\s*#*\s*$/;
const ANY_HEADING = /^#{1,6}\s/;
const FENCE = /^\s*(```|~~~)/;
const LIST_ITEM = /^(\s*)(?:[-*+]|\d+[.)])\s+/;

/** Strips inline Markdown to plain text and collapses whitespace. */
export function plainText(markdown: string): string {
  return markdown
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1$2')
    .replace(/\\([\\`*_{}[\]()#+\-.!|])/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The strongest BCP 14 keyword in a text, or undefined when it has none. */
export function strongestKeyword(text: string): RequirementLevel | undefined {
  if (/\b(MUST|REQUIRED|SHALL)\b/.test(text)) return 'MUST';
  if (/\b(SHOULD|RECOMMENDED)\b/.test(text)) return 'SHOULD';
  if (/\b(MAY|OPTIONAL)\b/.test(text)) return 'MAY';
  return undefined;
}

/** GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(headingText: string): string {
  return plainText(headingText)
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

interface ParsedFile {
  sections: Section[];
  requirements: Requirement[];
  /** Every anchor a link may target in this file: headings and requirement ids. */
  anchors: Set<string>;
}

/** Parses one spec file's Markdown. Exported for tools that hold the text already. */
export function parseSpecFile(file: string, markdown: string): ParsedFile {
  const lines = markdown.split(/\r?\n/);
  const sections: Section[] = [];
  const requirements: Requirement[] = [];
  const anchors = new Set<string>();
  const slugCounts = new Map<string, number>();
  let current: Section | undefined;
  let inFence = false;

  const addHeadingAnchor = (headingText: string): string => {
    const base = headingAnchor(headingText);
    const seen = slugCounts.get(base) ?? 0;
    slugCounts.set(base, seen + 1);
    const anchor = seen === 0 ? base : `${base}-${seen}`;
    anchors.add(anchor);
    return anchor;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (FENCE.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;

    const heading = NUMBERED_HEADING.exec(line);
    if (heading) {
      const [, hashes = '', number = '', title = ''] = heading;
      const anchor = addHeadingAnchor(`${number}. ${title}`);
      current = { number, title: plainText(title), depth: hashes.length, file, anchor };
      sections.push(current);
      continue;
    }
    if (ANY_HEADING.test(line)) {
      addHeadingAnchor(line.replace(/^#{1,6}\s+/, '').replace(/\s*#*\s*$/, ''));
      continue;
    }

    const marker = MARKER.exec(line);
    if (!marker) continue;
    const [, indentText = '', listMarker, id = '', rest = ''] = marker;
    const indent = indentText.length;
    const markerLine = i + 1;
    const body = [rest];
    // Collect the rest of the paragraph or list item: it ends at a blank line,
    // a heading, a fence, a table, another requirement, or (for a list item) the
    // next item at the same or a shallower indentation.
    let j = i + 1;
    for (; j < lines.length; j++) {
      const next = lines[j] ?? '';
      if (next.trim() === '') break;
      if (ANY_HEADING.test(next) || FENCE.test(next) || /^\s*\|/.test(next)) break;
      if (MARKER.test(next)) break;
      const item = LIST_ITEM.exec(next);
      if (listMarker !== undefined && item && (item[1] ?? '').length <= indent) break;
      body.push(next.replace(LIST_ITEM, ''));
    }
    i = j - 1;

    const text = plainText(body.join(' '));
    const level = strongestKeyword(text);
    if (level === undefined) {
      throw new Error(`${file}:${markerLine}: requirement ${id} states no MUST, SHOULD or MAY`);
    }
    if (current === undefined) {
      throw new Error(`${file}:${markerLine}: requirement ${id} is not under a numbered heading`);
    }
    anchors.add(requirementAnchor(id));
    requirements.push({
      id,
      text,
      file,
      section: current.number,
      sectionTitle: current.title,
      level,
      line: markerLine,
    });
  }
  return { sections, requirements, anchors };
}

/** The Markdown files of the spec directory, numbered chapters first, in file-name order. */
export async function specFiles(specDir: string = DEFAULT_SPEC_DIR): Promise<string[]> {
  const names = (await readdir(specDir)).filter((name) => name.endsWith('.md'));
  const chapter = (name: string) => (/^\d/.test(name) ? 0 : 1);
  return names.sort((a, b) => chapter(a) - chapter(b) || a.localeCompare(b));
}

/** Parses every spec file; the map is keyed by file name. */
export async function loadSpec(specDir: string = DEFAULT_SPEC_DIR): Promise<Map<string, ParsedFile>> {
  const parsed = new Map<string, ParsedFile>();
  for (const file of await specFiles(specDir)) {
    parsed.set(file, parseSpecFile(file, await readFile(path.join(specDir, file), 'utf8')));
  }
  return parsed;
}

/**
 * Every requirement of the spec, keyed by id, in document order. Throws when an
 * id is defined twice, when a requirement states no keyword, or when it sits
 * outside any numbered section.
 */
export async function loadRequirements(specDir: string = DEFAULT_SPEC_DIR): Promise<Map<string, Requirement>> {
  const requirements = new Map<string, Requirement>();
  for (const { requirements: found } of (await loadSpec(specDir)).values()) {
    for (const requirement of found) {
      const earlier = requirements.get(requirement.id);
      if (earlier) {
        throw new Error(
          `requirement ${requirement.id} is defined twice: ${earlier.file}:${earlier.line} and ${requirement.file}:${requirement.line}`,
        );
      }
      requirements.set(requirement.id, requirement);
    }
  }
  return requirements;
}

/** The numbered headings of the spec, in document order, with their files and anchors. */
export async function loadSections(specDir: string = DEFAULT_SPEC_DIR): Promise<Section[]> {
  return [...(await loadSpec(specDir)).values()].flatMap((file) => file.sections);
}
