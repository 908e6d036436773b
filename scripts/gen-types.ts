/**
 * Generates reference/core/types.generated.ts from the JSON Schemas in
 * schemas/, which are the single source of truth for every wire shape.
 * `npm run gen:types` writes the file; `--check` exits 1 when the committed
 * file differs from what the schemas generate (a test runs that check).
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const schemaDir = `${root}schemas/`;
const outFile = `${root}reference/core/types.generated.ts`;

/** Renders every schema into one TypeScript module, in a stable order. */
export async function generateTypes(): Promise<string> {
  const files = (await readdir(schemaDir)).filter((f) => f.endsWith('.schema.json')).sort();
  const parts: string[] = [
    '/* eslint-disable */',
    '/**',
    ' * Types generated from schemas/ by scripts/gen-types.ts. Do not edit:',
    ' * change the schema and run `npm run gen:types`.',
    ' */',
    '',
  ];
  const seen = new Set<string>();
  for (const file of files) {
    const schema = JSON.parse(await readFile(schemaDir + file, 'utf8'));
    delete schema.$id; // resolve $refs as files under cwd, never over the network
    simplifyForTypes(schema);
    const ts = await compile(schema, schema.title, {
      cwd: schemaDir,
      bannerComment: '',
      additionalProperties: false,
      declareExternallyReferenced: true,
      strictIndexSignatures: true,
      format: true,
    });
    // Referenced schemas are declared by every file that uses them: keep the first declaration.
    for (const block of ts.split(/\n(?=(?:\/\*\*[\s\S]*?\*\/\n)?export )/)) {
      const name = /export (?:type|interface) (\w+)/.exec(block)?.[1];
      if (!name || seen.has(name)) continue;
      seen.add(name);
      parts.push(block.trim(), '');
    }
  }
  return mergeNumberedAliases(parts.join('\n'));
}

/**
 * json-schema-to-typescript names a schema referenced from several places
 * Units, Units1, Units2...; fold each numbered copy whose body is identical
 * into the first, so one fact has one name.
 */
function mergeNumberedAliases(source: string): string {
  const bodies = new Map<string, string>();
  for (const m of source.matchAll(/^export type (\w+) = ([^;]+);$/gm)) bodies.set(m[1]!, m[2]!);
  let out = source;
  for (const [name, body] of bodies) {
    const base = /^(\w+?)\d+$/.exec(name)?.[1];
    if (!base || bodies.get(base) !== body) continue;
    out = out.replace(new RegExp(`^export type ${name} = [^;]+;\\n\\n`, 'm'), '');
    out = out.replace(new RegExp(`\\b${name}\\b`, 'g'), base);
  }
  return out;
}

/**
 * Drops what only the validator needs, so the types read cleanly: keywords
 * beside a $ref (they would mint aliases such as Units1) and the top-level
 * anyOf of PaymentPayload (ajv enforces it at run time).
 */
function simplifyForTypes(node: unknown, isRoot = true): void {
  if (Array.isArray(node)) return node.forEach((n) => simplifyForTypes(n, false));
  if (!node || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  if (typeof obj.$ref === 'string') for (const k of Object.keys(obj)) if (k !== '$ref') delete obj[k];
  if (isRoot) delete obj.anyOf;
  for (const v of Object.values(obj)) simplifyForTypes(v, false);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const generated = await generateTypes();
  if (process.argv.includes('--check')) {
    const committed = await readFile(outFile, 'utf8').catch(() => '');
    if (committed !== generated) {
      console.error('reference/core/types.generated.ts is stale: run `npm run gen:types`');
      process.exit(1);
    }
  } else {
    await writeFile(outFile, generated);
    console.log(`wrote ${outFile.slice(root.length)}`);
  }
}
