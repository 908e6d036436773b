/**
 * The spec site (`npm run site`), built the way the script builds it and
 * then used in Debian's Chromium: from the index to a requirement anchor,
 * from a conformance check to the requirement it tests, through the search
 * box, and a crawl of every page (the typedoc API pages included) for links
 * that lead to a missing page or a missing anchor. The browser must never
 * leave 127.0.0.1: the site is offline by design. Screenshots of the index
 * and of a spec section are written to /tmp/site-shots/ for a human to look at.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite, type BuildReport } from '../scripts/build-site.ts';
import { BADGE_PATH, placeBadge } from '../scripts/sitegen/badge.ts';
import { loadRequirements, requirementAnchor } from '../scripts/spec-requirements.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SITE = path.join(ROOT, 'site');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = '/tmp/site-shots';
const REGISTRY = path.join(ROOT, 'conformance/runner.ts');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`site.test.ts: the browser tests are skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

interface CheckInfo {
  id: string;
  requirement: string;
}

async function registryChecks(): Promise<CheckInfo[] | undefined> {
  if (!existsSync(REGISTRY)) return undefined;
  const { listChecks } = (await import(pathToFileURL(REGISTRY).href)) as { listChecks: () => CheckInfo[] };
  return listChecks();
}

let report: BuildReport;

beforeAll(async () => {
  // Not strict: typedoc's warnings get a test of their own below instead of
  // hiding every other result behind a failed build.
  report = await buildSite({ outDir: SITE, strict: false });
}, 600_000);

describe('the site build', () => {
  it('writes a page for every spec file, schema, vector file and the checks', async () => {
    const specFiles = (await import('../scripts/spec-requirements.ts')).specFiles;
    for (const file of await specFiles()) {
      const page = file === 'README.md' ? 'spec/index.html' : `spec/${file.replace(/\.md$/, '.html')}`;
      expect(report.pages, page).toContain(page);
    }
    for (const pageName of ['index.html', 'schemas/index.html', 'schemas/payment-payload.html', 'vectors/index.html', 'vectors/header_encoding.html', 'conformance/index.html']) {
      expect(report.pages).toContain(pageName);
    }
    const raw = JSON.parse(await readFile(path.join(SITE, 'schemas/payment-payload.schema.json'), 'utf8')) as { title: string };
    expect(raw.title).toBe('PaymentPayload');
    expect(existsSync(path.join(SITE, 'vectors/header_encoding.json'))).toBe(true);
  });

  it('leaves no internal link of its own pages dangling and cites only requirements the spec defines', () => {
    expect(report.brokenLinks).toEqual([]);
    expect(report.problems).toEqual([]);
  });

  it('gives every requirement of the spec its anchor on its section page', async () => {
    for (const requirement of (await loadRequirements()).values()) {
      const page = await readFile(path.join(SITE, 'spec', requirement.file.replace(/\.md$/, '.html')), 'utf8');
      expect(page, requirement.id).toContain(`id="${requirementAnchor(requirement.id)}"`);
    }
  });

  it('lists on the checks page exactly the checks of the conformance registry', async () => {
    const checks = await registryChecks();
    const html = await readFile(path.join(SITE, 'conformance/index.html'), 'utf8');
    if (checks === undefined) {
      expect(report.checks.status).toBe('absent');
      expect(html).toContain('id="no-registry"');
      return;
    }
    expect(report.checks).toEqual({ status: 'registry', count: checks.length });
    const listed = [...html.matchAll(/<td class="check-id"><a class="anchor-id" href="#[^"]+"><code>([^<]+)<\/code>/g)].map((m) => m[1]);
    expect(listed).toEqual(checks.map((check) => check.id));
  });

  it('builds the API reference with typedoc, which reports no warning', () => {
    expect(report.api?.errors).toEqual([]);
    expect(report.api?.warnings).toEqual([]);
    expect(report.api?.generated).toBe(true);
  });
});

describe('the conformance badge on the index', () => {
  it('is copied from conformance-report/, with the newest valid report published beside it', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'site-badge-root-'));
    const out = await mkdtemp(path.join(tmpdir(), 'site-badge-out-'));
    try {
      const schema = JSON.parse(await readFile(path.join(ROOT, 'schemas/conformance-report.schema.json'), 'utf8')) as { examples: object[] };
      const older = { ...schema.examples[0], startedAt: '2026-01-01T00:00:00Z' };
      const newer = { ...schema.examples[0], startedAt: '2026-02-01T00:00:00Z' };
      const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20"></svg>\n';
      await mkdir(path.join(root, 'conformance-report'));
      await mkdir(path.join(out, 'assets'));
      await writeFile(path.join(root, 'conformance-report/old.json'), JSON.stringify(older));
      await writeFile(path.join(root, 'conformance-report/report.json'), JSON.stringify(newer));
      // The shields.io endpoint the CLI writes beside the badge is JSON too, but not a report.
      await writeFile(path.join(root, 'conformance-report/badge.json'), JSON.stringify({ schemaVersion: 1, label: 'stripe402 v1', message: 'core', color: 'dfb317' }));
      await writeFile(path.join(root, 'conformance-report/badge.svg'), svg);

      const result = await placeBadge(root, out);
      expect(result.source).toBe('badge');
      expect(result.reportFile).toBe('report.json');
      expect(result.report?.startedAt).toBe('2026-02-01T00:00:00Z');
      expect(await readFile(path.join(out, BADGE_PATH), 'utf8')).toBe(svg);
      expect(JSON.parse(await readFile(path.join(out, 'conformance-report/report.json'), 'utf8'))).toEqual(newer);
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
  });

  it('is absent, and the index says how to get one, when no conformance run left anything', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'site-badge-empty-'));
    try {
      expect(await placeBadge(root, root)).toEqual({ source: 'none' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    const index = await readFile(path.join(SITE, 'index.html'), 'utf8');
    if (report.badge === 'none') expect(index).toContain('badge: run the conformance suite');
    else expect(index).toContain(`src="${BADGE_PATH}"`);
  });
});

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

/** Whether the top of an element is inside the viewport (where a followed anchor puts it). */
function inViewport(locator: ReturnType<Page['locator']>): Promise<boolean> {
  return locator.evaluate((el) => {
    const box = el.getBoundingClientRect();
    return box.height > 0 && box.top >= 0 && box.top < window.innerHeight;
  });
}

/** A static file server for the site on an ephemeral loopback port. */
function serve(dir: string): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    void (async () => {
      let pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
      if (pathname.endsWith('/')) pathname += 'index.html';
      const file = path.join(dir, pathname);
      if (!file.startsWith(dir + path.sep) || !(await stat(file).catch(() => undefined))?.isFile()) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      response.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream' });
      response.end(request.method === 'HEAD' ? undefined : await readFile(file));
    })();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe.skipIf(!hasChromium)('the site in a browser', () => {
  let server: http.Server;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  const offsite: string[] = [];
  const scriptErrors: string[] = [];

  beforeAll(async () => {
    server = await serve(SITE);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(base) && !/^(data|blob|about):/.test(url)) offsite.push(url);
    });
    page = await context.newPage();
    page.on('pageerror', (error) => scriptErrors.push(`${page.url()}: ${error.message}`));
    await mkdir(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  });

  it('leads from the index through a spec section to the anchor of ENC-5', async () => {
    await page.goto(base + 'index.html');
    expect(await page.locator('h1').textContent()).toBe('stripe402');
    expect(await page.locator('#conformance-badge').isVisible()).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'index.png') });

    await page.locator('a.card', { hasText: 'Specification' }).click();
    await page.waitForURL(/\/spec\/index\.html$/);
    await page.locator('.sidebar a', { hasText: 'Headers and encoding' }).first().click();
    await page.waitForURL(/\/spec\/03-encoding\.html$/);
    await page.locator('.content a[href="#enc-5"]').first().click();
    await page.waitForURL(/\/spec\/03-encoding\.html#enc-5$/);

    const requirement = page.locator('#enc-5');
    expect(await requirement.isVisible()).toBe(true);
    expect(await requirement.textContent()).toContain('[ENC-5]');
    await expect.poll(() => inViewport(requirement)).toBe(true);
    const pilcrow = requirement.locator('a.req-anchor[href="#enc-5"]');
    expect(await pilcrow.isVisible()).toBe(true);
    expect(await pilcrow.textContent()).toBe('¶');
    await page.screenshot({ path: path.join(SHOTS, 'spec-03-encoding-enc-5.png') });
    expect((await stat(path.join(SHOTS, 'index.png'))).size).toBeGreaterThan(10_000);
  });

  it('follows a conformance check to the requirement it tests', async () => {
    const checks = await registryChecks();
    await page.goto(base + 'conformance/index.html');
    if (checks === undefined) {
      expect(await page.locator('#no-registry').isVisible()).toBe(true);
      return;
    }
    const check = checks[0] as CheckInfo;
    const requirement = (await loadRequirements()).get(check.requirement);
    expect(requirement, `${check.id} cites ${check.requirement}`).toBeDefined();
    const row = page.locator('tr', { has: page.locator(`code:text-is("${check.id}")`) });
    await row.locator('a.req-link').click();
    const anchor = requirementAnchor(check.requirement);
    await page.waitForURL(new RegExp(`/spec/${requirement!.file.replace(/\.md$/, '')}\\.html#${anchor}$`));
    await expect.poll(() => inViewport(page.locator(`#${anchor}`))).toBe(true);
    expect(await page.locator(`#${anchor}`).textContent()).toContain(`[${check.requirement}]`);
  });

  it('finds a requirement by its id with the search box and opens it', async () => {
    await page.goto(base + 'spec/05-units.html');
    await page.locator('#site-search').fill('ENC-5');
    const first = page.locator('#search-results .search-result').first();
    await first.waitFor({ state: 'visible' });
    expect(await first.locator('.search-title').textContent()).toBe('ENC-5');
    await page.locator('#site-search').press('Enter');
    await page.waitForURL(/\/spec\/03-encoding\.html#enc-5$/);
    await expect.poll(() => inViewport(page.locator('#enc-5'))).toBe(true);
  });

  it('finds sections by words of their text, with the words marked', async () => {
    await page.goto(base + 'schemas/index.html');
    await page.locator('#site-search').fill('idempotency key');
    await page.locator('#search-results .search-result').first().waitFor({ state: 'visible' });
    expect(await page.locator('#search-results .search-result').count()).toBeGreaterThan(1);
    expect(await page.locator('#search-results mark').first().isVisible()).toBe(true);
    await page.locator('#site-search').fill('zzqxj no such words');
    await page.locator('#search-results .search-empty').waitFor({ state: 'visible' });
  });

  it('has no page, on the spec site or in the API reference, with a link to a missing page or anchor', async () => {
    // The crawl reads the served HTML as the browser parses it, in a context
    // of its own with scripts off and sub-resources not fetched: ids and links
    // are in the HTML (typedoc's script-built menu only repeats links found
    // elsewhere), and every sub-resource is checked below by its URL instead.
    const crawler = await browser.newContext({ javaScriptEnabled: false });
    await crawler.route('**/*', (route) => (route.request().resourceType() === 'document' ? route.continue() : route.abort()));
    const ids = new Map<string, Set<string>>();
    const links: { from: string; to: string }[] = [];
    const resources: { from: string; to: string }[] = [];
    const status = new Map<string, number>();
    const queued = new Set([base + 'index.html']);
    const queue = [...queued];
    const isPage = (url: string) => url.endsWith('.html') || url.endsWith('/');

    const worker = async () => {
      const tab = await crawler.newPage();
      for (let url = queue.shift(); url !== undefined; url = queue.shift()) {
        const response = await tab.goto(url, { waitUntil: 'domcontentloaded' });
        status.set(url, response?.status() ?? 0);
        const found = await tab.evaluate(() => {
          const absolute = (value: string | null) => (value ? new URL(value, document.baseURI).href : '');
          const usable = (href: string) => href !== '' && !href.startsWith('javascript:') && !href.endsWith('#');
          return {
            ids: [...document.querySelectorAll('[id], a[name]')].map((el) => el.id || el.getAttribute('name') || ''),
            links: [...document.querySelectorAll('a[href]')].map((el) => absolute(el.getAttribute('href'))).filter(usable),
            resources: [...document.querySelectorAll('link[href], script[src], img[src], iframe[src], source[src]')]
              .map((el) => absolute(el.getAttribute('href') ?? el.getAttribute('src')))
              .filter(usable),
          };
        });
        ids.set(url, new Set(found.ids));
        for (const to of found.resources) resources.push({ from: url, to });
        for (const to of found.links) {
          links.push({ from: url, to });
          const target = to.split('#')[0] as string;
          if (target.startsWith(base) && isPage(target) && !queued.has(target)) {
            queued.add(target);
            queue.push(target);
          }
        }
      }
    };
    // A few tabs at once. A tab that finds the queue empty while another still
    // reads a page stops early; the loop starts a new round for what that page adds.
    try {
      while (queue.length > 0) await Promise.all([worker(), worker(), worker()]);
    } finally {
      await crawler.close();
    }

    const broken: string[] = [];
    for (const { from, to } of [...links, ...resources]) {
      if (!to.startsWith(base)) continue;
      const [target = '', fragment] = to.split('#', 2);
      if (!status.has(target)) status.set(target, (await fetch(target, { method: 'HEAD' })).status);
      if (status.get(target) !== 200) {
        broken.push(`${from} -> ${to} (HTTP ${status.get(target)})`);
        continue;
      }
      if (fragment && isPage(target) && !ids.get(target)?.has(decodeURIComponent(fragment))) {
        broken.push(`${from} -> ${to} (no element with id "${decodeURIComponent(fragment)}")`);
      }
    }
    const crawled = [...ids.keys()];
    expect(crawled.length).toBeGreaterThan(report.pages.length);
    // The crawl reached typedoc's pages beyond the API index, when typedoc generated them.
    if (report.api?.generated) expect(crawled.some((url) => url.startsWith(base + 'api/modules/'))).toBe(true);
    expect(broken).toEqual([]);
    // Offline by construction: no page of the site pulls a script, style sheet or image from elsewhere.
    expect(resources.filter(({ to }) => !to.startsWith(base)).map(({ from, to }) => `${from} loads ${to}`)).toEqual([]);
  }, 600_000);

  it('loads nothing from outside the site and raises no script error', () => {
    expect(offsite).toEqual([]);
    expect(scriptErrors).toEqual([]);
  });
});
