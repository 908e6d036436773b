/**
 * Writes the stripe-mock results into docs/stripe-backends.md: runs the
 * suite at level core against the reference server on real stripe-mock,
 * with its own fixtures and with the generated ones, and replaces the
 * generated part of the document with what they reached and every check
 * that did not pass, with its reason. stripe-mock.test.ts checks that the
 * document matches a fresh run.
 *
 *   npx tsx conformance/test/stripe-mock-table.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { openLedger } from '@stripe402/server/ledger';
import { stripeMockBinary } from '../stripe-mock.ts';
import { renderStripeMockResults, runOnStripeMock, withGeneratedPart } from './stripe-mock-harness.ts';

const binary = stripeMockBinary();
if (!binary) {
  console.error('no stripe-mock binary: set STRIPE_MOCK_BIN (or place it at ../shared/tools/stripe-mock/stripe-mock)');
  process.exit(2);
}
const ledger = await openLedger('pglite:memory');
let runs;
try {
  runs = [await runOnStripeMock(binary, false, ledger), await runOnStripeMock(binary, true, ledger)];
} finally {
  await ledger.close();
}
const generated = renderStripeMockResults(runs);
const file = new URL('../../docs/stripe-backends.md', import.meta.url);
writeFileSync(file, withGeneratedPart(readFileSync(file, 'utf8'), generated));
console.log(generated);
