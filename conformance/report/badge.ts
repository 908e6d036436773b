/**
 * The conformance badge: a flat SVG written by hand (no network, no font
 * files) and a shields.io endpoint JSON, both generated from the JSON report
 * alone. The message names the spec version, the level reached (under
 * `--profile v1` marked as such), the number of required checks left
 * unverified when there are any, and the date, e.g.
 * "stripe402 v1 | ledger · 2026-11-22" or
 * "stripe402 v1 | core · 12 unverified · 2026-11-22".
 */
import type { ConformanceReport } from '@stripe402/core';
import { xmlEscape } from './junit.ts';

/** What both badge forms say. */
export interface BadgeContent {
  label: string;
  message: string;
  color: string;
}

const COLORS: Record<ConformanceReport['levelReached'], string> = {
  none: '#e05d44',
  core: '#dfb317',
  ledger: '#97ca00',
  extensions: '#4c1',
};

/** The badge text and colour for a report. */
export function badgeContent(report: ConformanceReport): BadgeContent {
  const date = report.startedAt.slice(0, 10);
  const failing = report.levelReached === 'none' && (report.summary.defects ?? report.summary.failed) > 0;
  const level = report.partial ? 'partial run' : report.levelReached === 'none' ? (failing ? 'failing' : 'none') : report.levelReached;
  const parts = [report.profile === 'v1' ? `v1 profile ${level}` : level];
  const unverified = report.unverified?.length ?? 0;
  if (unverified > 0) parts.push(`${unverified} unverified`);
  parts.push(date);
  return { label: `stripe402 v${report.specVersion}`, message: parts.join(' · '), color: COLORS[report.partial ? 'none' : report.levelReached] };
}

/** The shields.io endpoint document (https://shields.io/badges/endpoint-badge). */
export function shieldsEndpoint(report: ConformanceReport): { schemaVersion: 1; label: string; message: string; color: string } {
  const { label, message, color } = badgeContent(report);
  return { schemaVersion: 1, label, message, color: color.replace('#', '') };
}

/**
 * Approximate width of Verdana 11px text, the face shields.io uses; per
 * character classes are close enough for a badge that never clips.
 */
function textWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    if ('iljt.,:;|!\'· '.includes(ch)) width += 3.6;
    else if ('mwMW'.includes(ch)) width += 10.5;
    else if (/[A-Z0-9]/.test(ch)) width += 7.6;
    else width += 6.6;
  }
  return Math.ceil(width);
}

/** A flat badge in the shields.io style. */
export function renderBadgeSvg(report: ConformanceReport): string {
  const { label, message, color } = badgeContent(report);
  const left = textWidth(label) + 12;
  const right = textWidth(message) + 12;
  const total = left + right;
  const title = `${label}: ${message}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${total}" height="20" role="img" aria-label="${xmlEscape(title)}">
  <title>${xmlEscape(title)}</title>
  <linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
  <clipPath id="r"><rect width="${total}" height="20" rx="3" fill="#fff"/></clipPath>
  <g clip-path="url(#r)">
    <rect width="${left}" height="20" fill="#555"/>
    <rect x="${left}" width="${right}" height="20" fill="${color}"/>
    <rect width="${total}" height="20" fill="url(#s)"/>
  </g>
  <g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">
    <text x="${left / 2}" y="15" fill="#010101" fill-opacity=".3">${xmlEscape(label)}</text>
    <text x="${left / 2}" y="14">${xmlEscape(label)}</text>
    <text x="${left + right / 2}" y="15" fill="#010101" fill-opacity=".3">${xmlEscape(message)}</text>
    <text x="${left + right / 2}" y="14">${xmlEscape(message)}</text>
  </g>
</svg>
`;
}
