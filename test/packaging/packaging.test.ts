/**
 * The packages as their users get them: `npm pack` every workspace (each
 * builds itself in `prepack`), install only the tarballs into a fresh
 * project outside the repository (no workspace links), typecheck a strict
 * consumer (node16 and bundler resolution, the client's main entry without
 * Node's types), run an Express, a Fastify, a Hono and a Fetch-handler app
 * paid with @stripe402/client, run the installed conformance CLI against
 * one, `require()` every package, and lint each package with publint and
 * @arethetypeswrong/cli. Prints each package's packed size, installed size
 * and number of installed dependencies (each installed alone).
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const rootManifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[]; devDependencies: Record<string, string> };
const versionOf = (name: string) => rootManifest.devDependencies[name]!;

interface Packed {
  name: string;
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

const VALIDATION = ['ajv', 'ajv-formats', 'fast-deep-equal', 'fast-uri', 'json-schema-traverse', 'require-from-string'];

let work: string;
let tarballs: Packed[];
let consumer: string;

const npm = (args: string[], cwd: string, timeout = 300_000) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_prefer_offline: 'true' } });

function duBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    total += entry.isDirectory() ? duBytes(full) : statSync(full).size;
  }
  return total;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stripe402-packaging-'));
  const packDir = path.join(work, 'tarballs');
  mkdirSync(packDir);
  const { stdout } = await npm(['pack', '--workspaces', '--json', '--pack-destination', packDir], root, 600_000);
  tarballs = (JSON.parse(stdout) as Packed[]).map((t) => ({ ...t, filename: path.join(packDir, t.filename) }));

  consumer = path.join(work, 'consumer');
  cpSync(path.join(import.meta.dirname, 'consumer'), consumer, { recursive: true });
  const dependencies: Record<string, string> = Object.fromEntries(tarballs.map((t) => [t.name, `file:${t.filename}`]));
  for (const name of ['express', 'fastify', 'hono', '@hono/node-server', '@electric-sql/pglite', 'typescript', '@types/node', '@types/express']) dependencies[name] = versionOf(name);
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'stripe402-consumer', private: true, type: 'module', dependencies }, null, 2));
  await npm(['install'], consumer, 600_000);
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('are one per workspace, and ship built JavaScript, declarations, a README and a license, but no sources or tests', () => {
    expect(tarballs.map((t) => t.name).sort()).toEqual(
      rootManifest.workspaces.map((w) => (JSON.parse(readFileSync(path.join(root, w, 'package.json'), 'utf8')) as { name: string }).name).sort(),
    );
    for (const t of tarballs) {
      const files = t.files.map((f) => f.path);
      expect(files, t.name).toContain('README.md');
      expect(files, t.name).toContain('LICENSE');
      expect(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), t.name).toEqual([]);
      expect(files.filter((f) => /(\.test\.|\/test\/|test-helpers|\.tsbuildinfo)/.test(f)), t.name).toEqual([]);
    }
  });

  it('declare no type from an optional peer dependency, so a Redis user needs neither pg nor PGlite, even to typecheck', () => {
    for (const t of tarballs) {
      const dir = path.join(consumer, 'node_modules', t.name);
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        exports: Record<string, string | { types?: string }>;
        peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      };
      const optional = Object.entries(manifest.peerDependenciesMeta ?? {}).filter(([, meta]) => meta.optional).map(([name]) => name);
      // Every declaration file a consumer's TypeScript reads: the entries' and what they import, relatively.
      const queue = Object.values(manifest.exports).flatMap((target) => (typeof target === 'object' && target.types ? [path.join(dir, target.types)] : []));
      const seen = new Set<string>();
      while (queue.length > 0) {
        const file = queue.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        const text = readFileSync(file, 'utf8');
        for (const name of optional) expect(text.includes(`'${name}'`) || text.includes(`"${name}"`), `${t.name}: ${path.relative(dir, file)} names ${name}`).toBe(false);
        for (const m of text.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) queue.push(path.resolve(path.dirname(file), m[1]!.replace(/\.(ts|js)$/, '.d.ts')));
      }
    }
  });

  it('typecheck in a strict consumer with node16 and bundler resolution, and the client builds without Node types', async () => {
    for (const config of ['tsconfig.node16.json', 'tsconfig.bundler.json', 'tsconfig.browser.json']) {
      const result = await run(process.execPath, [path.join(consumer, 'node_modules/typescript/bin/tsc'), '-p', config], { cwd: consumer }).catch((e: { stdout: string }) => e);
      // Declarations are checked (skipLibCheck false); those of other projects (PGlite's need @types/emscripten) are theirs to fix.
      const ours = (result as { stdout: string }).stdout.split('\n').filter((line) => /error TS\d+/.test(line) && !/^node_modules\/(?!@stripe402\/|stripe402\/)/.test(line));
      expect(ours, config).toEqual([]);
    }
  }, 300_000);

  it('load with require() on this Node, every entry and the schemas', async () => {
    const { stdout } = await run(process.execPath, ['require.cjs'], { cwd: consumer });
    const loaded = JSON.parse(stdout) as Record<string, number | string>;
    for (const [name, count] of Object.entries(loaded)) if (name !== 'schema') expect(count, name).toBeGreaterThan(0);
    expect(loaded.schema).toMatch(/payment-payload/);
  });

  it('run an Express, a Fastify, a Hono and a Fetch-handler app that @stripe402/client pays, and the installed conformance CLI passes one', async () => {
    const child = spawn(process.execPath, ['out/apps.js'], { cwd: consumer, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buffer = '';
    const target = await new Promise<{ conformanceTarget: string; stripeUrl: string; stripeKey: string }>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          lines.push(line);
          if (line.includes('conformanceTarget')) resolve(JSON.parse(line));
        }
      });
      child.once('exit', (code) => reject(new Error(`the consumer app exited ${code}: ${lines.join('\n')}`)));
    });
    try {
      const apps = lines.filter((l) => l.includes('"app"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(apps.map((a) => a.app)).toEqual(['express', 'fastify', 'hono', 'fetch']);
      for (const app of apps) expect(app, String(app.app)).toEqual({ app: app.app, first: 200, joke: true, second: 200, secondReceipt: true, echo: { n: 42 }, unpaid: 402 });

      const cli = await run('npx', ['--no-install', '@stripe402/conformance', '--target', `${target.conformanceTarget}/api/joke`, '--level', 'core', '--stripe-url', target.stripeUrl, '--stripe-key', target.stripeKey], { cwd: consumer, timeout: 240_000 })
        .catch((e: { stdout: string; code: number }) => e);
      expect((cli as { stdout: string }).stdout).toMatch(/\d+ passed, 0 failed/);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }, 300_000);

  it('pass publint and @arethetypeswrong/cli', async () => {
    const lint = path.join(root, 'node_modules/.bin');
    for (const t of tarballs) {
      const dir = path.join(consumer, 'node_modules', t.name);
      const publint = await run(path.join(lint, 'publint'), ['run', '--strict', dir]).catch((e: { stdout: string; stderr: string }) => e);
      expect((publint as { stdout: string }).stdout, t.name).toContain('All good!');
      // ESM-only packages: Node 20.19+ loads them with require() too (the test above), so the CommonJS-era profiles do not apply.
      const attw = await run(path.join(lint, 'attw'), [t.filename, '--profile', 'esm-only', '--format', 'ascii']).catch((e: { stdout: string; code: number }) => e);
      expect((attw as { code?: number }).code ?? 0, `${t.name}: ${(attw as { stdout: string }).stdout}`).toBe(0);
    }
  }, 300_000);

  it('print their packed and installed sizes and how many packages each installs alone', async () => {
    const rows: string[] = [];
    for (const t of tarballs) {
      const alone = path.join(work, `alone-${t.name.replace(/[@/]/g, '_')}`);
      mkdirSync(alone);
      // The other packages come from their tarballs too (they are not on a registry before a release).
      const overrides = Object.fromEntries(tarballs.filter((o) => o.name !== t.name).map((o) => [o.name, `file:${o.filename}`]));
      writeFileSync(path.join(alone, 'package.json'), JSON.stringify({ name: 'alone', private: true, dependencies: { [t.name]: `file:${t.filename}` }, overrides }));
      await npm(['install', '--omit=dev', '--omit=optional'], alone, 600_000);
      const modules = path.join(alone, 'node_modules');
      const { stdout } = await npm(['ls', '--all', '--parseable', '--omit=dev'], alone).catch((e: { stdout: string }) => e);
      const installed = new Set(stdout.split('\n').filter((l) => l.includes('node_modules')).map((l) => l.slice(l.lastIndexOf('node_modules') + 13)));
      installed.delete(t.name);
      rows.push(`${t.name.padEnd(28)} packed ${(t.size / 1024).toFixed(1).padStart(7)} kB  installed alone ${(duBytes(modules) / 1048576).toFixed(1).padStart(6)} MB  dependencies installed ${String(installed.size).padStart(3)}`);
      // The goals: the client brings only core; core only what JSON Schema validation needs (ajv and its own dependencies).
      if (t.name === '@stripe402/client') expect([...installed].filter((n) => n !== '@stripe402/core' && !VALIDATION.includes(n))).toEqual([]);
      if (t.name === '@stripe402/core') expect([...installed].filter((n) => !VALIDATION.includes(n))).toEqual([]);
    }
    console.log(`package sizes (npm pack; npm install of the tarball alone):\n${rows.join('\n')}`);
  }, 900_000);
});
