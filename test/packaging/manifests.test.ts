/**
 * The workspace manifests agree with each other and with the sources: one
 * version for all packages, exact pins between them, no dependency cycle,
 * every public entry mapped to its source in tsconfig.json's paths (which
 * is how tests, tsc and tsx reach the sources), and the package boundaries
 * of the architecture (the client depends on core alone, core on
 * validation alone, the suite never on the server or the client).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
type Manifest = {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  workspaces?: string[];
};
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Manifest;
const rootManifest = read(path.join(root, 'package.json'));
const packages = rootManifest.workspaces!.map((dir) => ({ dir, manifest: read(path.join(root, dir, 'package.json')) }));
const names = new Set(packages.map((p) => p.manifest.name));
const paths = (JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { paths: Record<string, [string]> } }).compilerOptions.paths;
const internal = (m: Manifest) => Object.keys(m.dependencies ?? {}).filter((n) => names.has(n));

describe('the workspace packages', () => {
  it('share the root version and pin each other at it', () => {
    for (const { manifest } of packages) {
      expect(manifest.version, manifest.name).toBe(rootManifest.version);
      for (const name of internal(manifest)) expect(manifest.dependencies![name], `${manifest.name} -> ${name}`).toBe(rootManifest.version);
    }
  });

  it('depend on each other without a cycle', () => {
    const byName = new Map(packages.map((p) => [p.manifest.name, p.manifest]));
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, trail: string[]) => {
      if (done.has(name)) return;
      if (visiting.has(name)) throw new Error(`cycle: ${[...trail, name].join(' -> ')}`);
      visiting.add(name);
      for (const dep of internal(byName.get(name)!)) visit(dep, [...trail, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of names) visit(name, []);
  });

  it('keep the boundaries: client on core alone, core on validation alone, the suite on neither server nor client', () => {
    const deps = (name: string) => Object.keys(packages.find((p) => p.manifest.name === name)!.manifest.dependencies ?? {});
    expect(deps('@stripe402/client')).toEqual(['@stripe402/core']);
    expect(deps('@stripe402/core').sort()).toEqual(['ajv', 'ajv-formats']);
    expect(deps('@stripe402/conformance').filter((n) => n === '@stripe402/server' || n === '@stripe402/client')).toEqual([]);
  });

  it('map every public entry to its source in tsconfig.json, and the source exists', () => {
    for (const { dir, manifest } of packages) {
      for (const [subpath, target] of Object.entries(manifest.exports)) {
        if (typeof target === 'string') continue; // package.json and the schema files
        const specifier = subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`;
        const source = paths[specifier]?.[0];
        expect(source, specifier).toBeDefined();
        expect(existsSync(path.join(root, source!)), source).toBe(true);
        // The built file is the source's own output: dist/<same path>.js.
        const built = target.default.replace(/^\.\/dist\/(reference\/core\/)?/, '').replace(/\.js$/, '.ts');
        expect(path.join(dir, built), specifier).toBe(path.normalize(source!));
      }
    }
  });
});
