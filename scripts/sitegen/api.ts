/**
 * The API reference of reference/ with typedoc 0.28, configured by the
 * repository's typedoc.json (warnings as errors). typedoc runs in process so
 * that its warnings can be collected and returned: the site build writes the
 * whole site and then fails on them, and the site test reports them as their
 * own failure instead of hiding the rest of the site behind them. Each page
 * gets a bar linking back to the spec site.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Application, JSX, type Logger } from 'typedoc';

export interface ApiResult {
  /** Whether site/api/ was written. */
  generated: boolean;
  /** typedoc's warnings (each one fails a strict build: treatWarningsAsErrors). */
  warnings: string[];
  /** typedoc's errors (TypeScript errors in the documented code, bad options). */
  errors: string[];
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** Collects what typedoc logs at warning level and above; prints everything it logs only when `echo` is set. */
function collectLog(logger: Logger, result: ApiResult, echo: boolean): void {
  const log = logger.log.bind(logger);
  logger.log = (message, level) => {
    const text = String(message).replace(ANSI, '');
    // LogLevel: 2 warn, 3 error.
    if (level === 2) result.warnings.push(text);
    if (level === 3) result.errors.push(text);
    if (echo) log(message, level);
    else {
      // Quiet, but typedoc's counters must still be right.
      if (level === 2) logger.warningCount += 1;
      if (level === 3) logger.errorCount += 1;
    }
  };
}

/** The links of the bar typedoc pages get: label and site-root relative target. */
const SITE_LINKS: [string, string][] = [
  ['stripe402', 'index.html'],
  ['Specification', 'spec/index.html'],
  ['Schemas', 'schemas/index.html'],
  ['Vectors', 'vectors/index.html'],
  ['Conformance', 'conformance/index.html'],
];

/** Runs typedoc with `<root>/typedoc.json` into `<outDir>/api`. */
export async function buildApi(root: string, outDir: string, options: { echo?: boolean } = {}): Promise<ApiResult> {
  const result: ApiResult = { generated: false, warnings: [], errors: [] };
  const config = path.join(root, 'typedoc.json');
  if (!existsSync(config)) {
    result.errors.push('typedoc.json is missing');
    return result;
  }
  const out = path.join(outDir, 'api');
  const app = await Application.bootstrapWithPlugins({ options: config, out });
  if (app.logger.warningCount > 0 || app.logger.errorCount > 0) {
    result.warnings.push(`typedoc: ${app.logger.warningCount} warning(s) and ${app.logger.errorCount} error(s) while reading its options (printed above)`);
  }
  collectLog(app.logger, result, options.echo ?? false);
  // relativeURL() is relative to the API root; one more `../` reaches the site root.
  app.renderer.hooks.on('body.begin', (context) =>
    JSX.createElement(
      'nav',
      { class: 'stripe402-site-bar', 'aria-label': 'stripe402 site' },
      ...SITE_LINKS.map(([label, target]) => JSX.createElement('a', { href: context.relativeURL(`../${target}`) }, label)),
    ),
  );
  if (app.logger.hasErrors()) return result;
  const project = await app.convert();
  if (!project) return result;
  app.validate(project);
  await app.generateDocs(project, out);
  result.generated = existsSync(path.join(out, 'index.html'));
  return result;
}
