/**
 * What every page generator of the site needs to know about the others: the
 * spec's requirements and sections (from scripts/spec-requirements.ts, the
 * single reader of spec/), the page each spec file becomes, and how to link a
 * requirement id from any page. Keeping it in one place is what keeps the
 * cross-links between spec, schemas, vectors and checks consistent.
 */
import type { Requirement, Section } from '../spec-requirements.ts';
import { requirementAnchor } from '../spec-requirements.ts';
import { escapeHtml, relativeUrl } from './html.ts';

export class SiteContext {
  constructor(
    readonly requirements: Map<string, Requirement>,
    readonly sections: Section[],
    /** Spec file name (`03-encoding.md`) to its site page (`spec/03-encoding.html`). */
    readonly specPages: Map<string, string>,
  ) {}

  /** The site page of a spec file. */
  specPage(file: string): string {
    const page = this.specPages.get(file);
    if (page === undefined) throw new Error(`no page for spec file ${file}`);
    return page;
  }

  /** The site path (with fragment) of a requirement's anchor, or undefined for an id the spec does not define. */
  requirementPath(id: string): string | undefined {
    const requirement = this.requirements.get(id);
    return requirement && `${this.specPage(requirement.file)}#${requirementAnchor(id)}`;
  }

  /** The site path (with fragment) of a numbered section such as `3` or `8.2`. */
  sectionPath(number: string): string | undefined {
    const section = this.sections.find((s) => s.number === number);
    return section && `${this.specPage(section.file)}#${section.anchor}`;
  }

  /** The title of a numbered section. */
  sectionTitle(number: string): string | undefined {
    return this.sections.find((s) => s.number === number)?.title;
  }

  /**
   * A link to a requirement from `page`, its text as tooltip. An id the spec
   * does not define is shown, marked, without a link (and the caller decides
   * whether that is an error).
   */
  requirementLink(id: string, page: string): string {
    const target = this.requirementPath(id);
    if (target === undefined) return `<span class="req-unknown" title="not defined in spec/">${escapeHtml(id)}</span>`;
    const text = this.requirements.get(id)?.text ?? '';
    return `<a class="req-link" href="${escapeHtml(relativeUrl(page, target))}" title="${escapeHtml(truncate(text, 300))}">${escapeHtml(id)}</a>`;
  }

  /** Plain text as HTML with every requirement id the spec defines (`MSG-6`) turned into a link. */
  linkRequirementIds(text: string, page: string): string {
    return escapeHtml(text).replace(/\b([A-Z]+-[1-9][0-9]*)\b/g, (whole, id: string) =>
      this.requirements.has(id) ? this.requirementLink(id, page) : whole,
    );
  }
}

/** Shortens text to at most `max` characters at a word boundary. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return cut.slice(0, Math.max(cut.lastIndexOf(' '), max - 20)) + '…';
}
