/**
 * The schemas in schemas/ are the single source of every wire shape: the
 * committed reference/core/types.generated.ts must be exactly what
 * scripts/gen-types.ts generates from them, and every example a schema
 * gives must be valid against that schema.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCHEMAS, validate, type SchemaName } from '@stripe402/core';
import { generateTypes } from '../scripts/gen-types.ts';

const generatedFile = fileURLToPath(new URL('../reference/core/types.generated.ts', import.meta.url));

describe('reference/core/types.generated.ts', () => {
  it('is exactly what npm run gen:types generates from schemas/', async () => {
    const committed = readFileSync(generatedFile, 'utf8');
    expect(await generateTypes()).toBe(committed);
  }, 60_000);
});

describe('the examples of every schema', () => {
  for (const name of Object.keys(SCHEMAS) as SchemaName[]) {
    it(`${name}.schema.json gives examples, and each is valid against it`, () => {
      const examples = (SCHEMAS[name] as { examples?: unknown[] }).examples;
      expect(examples?.length ?? 0).toBeGreaterThan(0);
      const invalid = examples!.flatMap((example, index) => {
        const outcome = validate(name, example);
        return outcome.ok ? [] : [`example ${index}: ${outcome.detail}`];
      });
      expect(invalid).toEqual([]);
    });
  }
});
