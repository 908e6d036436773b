/**
 * Sets one version on every package of the workspace: the root manifest,
 * each workspace's `version`, and the exact pins between them (packages
 * depend on each other at the same version, so a release is one version
 * for all). `npx tsx scripts/set-version.ts 0.2.0`; RELEASING.md says when.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const version = process.argv[2];
if (!version || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
  console.error('usage: tsx scripts/set-version.ts <semver>');
  process.exit(2);
}
const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { workspaces?: string[] };
const rootFile = path.join(root, 'package.json');
const rootManifest = read(rootFile);
const files = (rootManifest.workspaces ?? []).map((dir) => path.join(root, dir, 'package.json'));
const names = new Set(files.map((file) => read(file).name as string));
for (const file of [rootFile, ...files]) {
  const manifest = read(file);
  manifest.version = version;
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies'] as const) {
    const deps = manifest[field] as Record<string, string> | undefined;
    for (const name of Object.keys(deps ?? {})) if (names.has(name)) deps![name] = version;
  }
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
}
console.log(`version ${version} on ${files.length} packages; now run npm install to update package-lock.json`);
