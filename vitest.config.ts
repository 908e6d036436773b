/**
 * Tests run from the TypeScript sources, with no build: every package name
 * (`@stripe402/core`, `@stripe402/server/ledger`, ...) resolves to its source
 * entry through the `paths` of tsconfig.json, the one table that tsc and tsx
 * read too. The packaging test (test/packaging.test.ts) is the one that
 * uses the built packages, as their users get them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const paths = (JSON.parse(readFileSync(new URL('./tsconfig.json', import.meta.url), 'utf8')) as {
  compilerOptions: { paths: Record<string, [string]> };
}).compilerOptions.paths;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const alias = Object.entries(paths).map(([name, [target]]) =>
  name.endsWith('/*')
    ? { find: new RegExp(`^${escape(name.slice(0, -1))}(.*)$`), replacement: `${root}${target.slice(2, -1)}$1` }
    : { find: new RegExp(`^${escape(name)}$`), replacement: `${root}${target.slice(2)}` },
);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', 'site/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
