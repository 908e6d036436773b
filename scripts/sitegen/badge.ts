/**
 * The reference server's conformance badge on the index page. The site runs
 * nothing to get it: it uses what a conformance run left in
 * conformance-report/ (`npx conformance --json conformance-report/report.json
 * --badge conformance-report/badge.svg`). A badge SVG there is copied; a JSON
 * report alone is turned into a badge with the suite's own badge renderer;
 * with neither, the page shows how to produce one.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { validateConformanceReport, type ConformanceReport } from '@stripe402/core';

export const REPORT_DIR = 'conformance-report';
/** Where the site puts the badge. */
export const BADGE_PATH = 'assets/conformance-badge.svg';

export interface BadgeResult {
  source: 'badge' | 'report' | 'none';
  /** The newest valid JSON report, when there is one. */
  report?: ConformanceReport;
  /** Its file name in conformance-report/ (copied to the same path in the site). */
  reportFile?: string;
}

/** The newest JSON file of conformance-report/ that is a valid ConformanceReport. */
async function newestReport(dir: string): Promise<{ report: ConformanceReport; file: string } | undefined> {
  let newest: { report: ConformanceReport; file: string } | undefined;
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.json'))) {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(path.join(dir, file), 'utf8'));
    } catch {
      continue; // a half-written or foreign file is not a report
    }
    const validation = validateConformanceReport(value);
    if (!validation.ok) continue; // e.g. the shields.io endpoint JSON beside the badge
    if (!newest || validation.value.startedAt > newest.report.startedAt) newest = { report: validation.value, file };
  }
  return newest;
}

/** Puts the badge (if any) into the site and says where it came from. */
export async function placeBadge(root: string, outDir: string): Promise<BadgeResult> {
  const dir = path.join(root, REPORT_DIR);
  if (!existsSync(dir)) return { source: 'none' };
  const found = await newestReport(dir);
  if (found) {
    // Published beside the badge, so the claim it makes can be checked.
    await mkdir(path.join(outDir, REPORT_DIR), { recursive: true });
    await copyFile(path.join(dir, found.file), path.join(outDir, REPORT_DIR, found.file));
  }
  const extra = found ? { report: found.report, reportFile: found.file } : {};
  const svg = path.join(dir, 'badge.svg');
  if (existsSync(svg)) {
    await copyFile(svg, path.join(outDir, BADGE_PATH));
    return { source: 'badge', ...extra };
  }
  if (found) {
    const renderer = path.join(root, 'conformance/report/badge.ts');
    if (existsSync(renderer)) {
      const { renderBadgeSvg } = (await import(pathToFileURL(renderer).href)) as { renderBadgeSvg: (r: ConformanceReport) => string };
      await writeFile(path.join(outDir, BADGE_PATH), renderBadgeSvg(found.report));
      return { source: 'report', ...extra };
    }
  }
  return { source: 'none', ...extra };
}
