/**
 * The checker and the runner of the language-neutral test vectors in
 * vectors/. The checker holds every vector file to its format in
 * vectors/schemas/, to tcIds numbered 1..numberOfTests, to flags defined in
 * its notes, and to requirement ids that exist in spec/. The runner feeds
 * every case to reference/core. Nothing here copies a vector: the cases come
 * from the files, so the same files can drive an implementation in any
 * language (vectors/README.md says how).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import {
  HeaderDecodeError,
  checkDiscoveryDocument,
  checkMessage,
  currencyExponent,
  decodeHeaderObject,
  decodePaymentHeader,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  deriveClientId,
  isClientId,
  isStrongServerSecret,
  isUnits,
  unitsToMinor,
  validate,
  type Decoded,
  type SchemaName,
} from '@stripe402/core';
import { loadRequirements } from '../scripts/spec-requirements.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const vectorDir = `${root}vectors/`;
const vectorSchemaDir = `${vectorDir}schemas/`;
const protocolSchemaDir = `${root}schemas/`;

/** The members every test case has (vectors/schemas/common.schema.json). */
interface TestCase {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid';
  error?: string;
  spec: string[];
  [input: string]: unknown;
}
interface TestGroup {
  tests: TestCase[];
  [input: string]: unknown;
}
interface VectorFile {
  schema: string;
  topic: string;
  numberOfTests: number;
  notes: Record<string, string>;
  testGroups: TestGroup[];
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const vectorFileNames = readdirSync(vectorDir).filter((name) => name.endsWith('.json')).sort();
const vectorFiles = new Map(vectorFileNames.map((name) => [name, readJson(vectorDir + name) as VectorFile]));

// The vector formats refer to the protocol schemas (error codes, client ids,
// currencies) by $id, so one validator instance holds both directories.
const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
for (const name of readdirSync(protocolSchemaDir)) ajv.addSchema(readJson(protocolSchemaDir + name) as object);
const vectorSchemaNames = readdirSync(vectorSchemaDir).filter((name) => name.endsWith('.json')).sort();
for (const name of vectorSchemaNames) ajv.addSchema(readJson(vectorSchemaDir + name) as object, name);
const formatOf = (schemaFile: string): ValidateFunction | undefined => ajv.getSchema(schemaFile);

/** Asserts a decoding outcome against a case: the value for valid, the wire code for invalid. */
function expectOutcome(outcome: Decoded<unknown>, test: TestCase): void {
  if (test.result === 'valid') {
    expect(outcome.ok ? 'accepted' : `rejected: ${outcome.error.code} (${outcome.error.detail})`).toBe('accepted');
  } else {
    expect(outcome.ok ? 'accepted' : 'rejected').toBe('rejected');
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(HeaderDecodeError);
    expect(outcome.error.code).toBe(test.error);
  }
}

const base64OfUtf8 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const utf8Hex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');

/** A runner executes one case against reference/core; one runner per vector file. */
type Runner = (group: TestGroup, test: TestCase) => void | Promise<void>;

const runners: Record<string, Runner> = {
  'client_id_hmac_sha256.json': async (group, test) => {
    if (group.type === 'ClientIdDerivation') {
      const serverSecret = test.serverSecret as string;
      const fingerprint = test.fingerprint as string;
      // The hex members say which bytes the key and the message are; hold the file to them.
      expect(utf8Hex(serverSecret)).toBe(test.secretHex);
      expect(utf8Hex(fingerprint)).toBe(test.fingerprintHex);
      expect(isStrongServerSecret(serverSecret)).toBe(true);
      expect(validate('client-id-derivation', { serverSecret, fingerprint, clientId: test.clientId }).ok).toBe(true);
      const derived = await deriveClientId(serverSecret, fingerprint);
      expect(derived).toBe(test.clientId);
      if (test.wrongClientId !== undefined) {
        expect(derived).not.toBe(test.wrongClientId);
        // The wrong value really is the swapped derivation, so the case pins the order.
        expect(await deriveClientId(fingerprint, serverSecret)).toBe(test.wrongClientId);
      }
      return;
    }
    expect(group.type).toBe('ClientIdFormat');
    expect(isClientId(test.clientId)).toBe(test.result === 'valid');
    expectOutcome(checkMessage({ stripe402Version: 1, clientId: test.clientId }, 'payment-payload'), test);
  },

  'header_encoding.json': (group, test) => {
    const header = test.header as string;
    if (typeof test.bytesHex === 'string') expect(Buffer.from(test.bytesHex, 'hex').toString('base64')).toBe(header);
    if (typeof test.text === 'string') expect(base64OfUtf8(test.text)).toBe(header);
    const outcome =
      group.function === 'decodeHeaderObject'
        ? decodeHeaderObject(header)
        : group.function === 'decodePaymentHeader'
          ? decodePaymentHeader(header)
          : expect.unreachable(`unknown function ${String(group.function)}`);
    expectOutcome(outcome, test);
    if (outcome.ok) expect(outcome.value).toStrictEqual(test.decoded);
  },

  'units.json': (group, test) => {
    const currency = group.currency as string;
    const units = test.units as number;
    expect(currencyExponent(currency)).toBe(group.exponent);
    if (test.result === 'valid') {
      expect(isUnits(units)).toBe(true);
      expect(validate('units', units).ok).toBe(true);
      expect(unitsToMinor(units, currency)).toBe(test.minor);
      return;
    }
    expect(isUnits(units)).toBe(false);
    expect(validate('units', units).ok).toBe(false);
    expect(() => unitsToMinor(units, currency)).toThrow(RangeError);
    // On the wire, such an amount is a topUpAmount the server refuses with the case's code.
    const payload = { stripe402Version: 1, paymentMethodId: 'pm_card_visa', topUpAmount: units };
    expect(validate('payment-payload', { ...payload, topUpAmount: 1 }).ok).toBe(true);
    expectOutcome(checkMessage(payload, 'payment-payload'), test);
  },

  'messages.json': (group, test) => {
    const json = test.json as string;
    const schema = String(group.schemaFile).replace(/\.schema\.json$/, '') as SchemaName;
    const value: unknown = JSON.parse(json);
    const direct = checkMessage(value, schema);
    expectOutcome(direct, test);
    if (direct.ok) expect(direct.value).toStrictEqual(value);
    // The same text as a header value: the full decoding path must agree.
    const header = base64OfUtf8(json);
    const viaHeader =
      group.message === 'PaymentPayload'
        ? decodePaymentHeader(header)
        : group.message === 'PaymentRequiredResponse'
          ? decodePaymentRequiredHeader(header)
          : group.message === 'PaymentResponse'
            ? decodePaymentResponseHeader(header)
            : checkDiscoveryDocument(value); // a discovery document is a body, never a header
    expectOutcome(viaHeader, test);
    if (viaHeader.ok) expect(viaHeader.value).toStrictEqual(value);
  },
};

describe('the vector files', () => {
  it('exist for every topic the house style names', () => {
    expect(vectorFileNames).toEqual(
      expect.arrayContaining(['client_id_hmac_sha256.json', 'header_encoding.json', 'messages.json', 'units.json']),
    );
  });

  it('each have a runner here', () => {
    expect(vectorFileNames.filter((name) => !(name in runners))).toEqual([]);
  });

  it('are listed in vectors/README.md with their number of cases', () => {
    const readme = readFileSync(`${vectorDir}README.md`, 'utf8');
    for (const [name, file] of vectorFiles) {
      const row = readme.split('\n').find((line) => line.startsWith(`| [\`${name}\`]`));
      expect(row, `no row for ${name}`).toBeDefined();
      expect(row!.split('|').map((cell) => cell.trim())).toContain(String(file.numberOfTests));
    }
  });

  it('use every format in vectors/schemas, whose file names match their vector files', () => {
    const used = new Set([...vectorFiles.values()].map((file) => file.schema));
    expect(vectorSchemaNames.filter((name) => name !== 'common.schema.json' && !used.has(name))).toEqual([]);
    for (const [name, file] of vectorFiles) expect(file.schema).toBe(name.replace(/\.json$/, '.schema.json'));
  });
});

describe('the vector formats', () => {
  // Each format closes its test objects; a checker that let anything through would check nothing.
  const [someName, someFile] = [...vectorFiles.entries()][0]!;

  it('reject a test case with a member the format does not define', () => {
    const copy = structuredClone(someFile);
    (copy.testGroups[0]!.tests[0] as Record<string, unknown>).unexpectedMember = true;
    expect(formatOf(someFile.schema)!(copy), someName).toBe(false);
  });

  it('reject an invalid case that names no error code', () => {
    const copy = structuredClone(someFile);
    const test = copy.testGroups.flatMap((g) => g.tests).find((t) => t.result === 'invalid')!;
    delete test.error;
    expect(formatOf(someFile.schema)!(copy)).toBe(false);
  });

  it('reject an error code outside schemas/error-code.schema.json', () => {
    const copy = structuredClone(vectorFiles.get('client_id_hmac_sha256.json')!);
    const test = copy.testGroups.flatMap((g) => g.tests).find((t) => t.result === 'invalid')!;
    test.error = 'the_card_was_declined';
    expect(formatOf(copy.schema)!(copy)).toBe(false);
  });
});

for (const [name, file] of vectorFiles) {
  describe(`vectors/${name}`, () => {
    const tests = file.testGroups.flatMap((group) => group.tests);

    it(`matches its format, vectors/schemas/${file.schema}`, () => {
      const check = formatOf(file.schema);
      expect(check, `no format named ${file.schema}`).toBeDefined();
      const valid = check!(file);
      expect(valid ? [] : check!.errors).toEqual([]);
    });

    it('numbers its tests 1 to numberOfTests, each once and in order', () => {
      expect(tests.length).toBe(file.numberOfTests);
      expect(tests.map((test) => test.tcId)).toEqual(tests.map((_, index) => index + 1));
    });

    it('defines every flag it uses in its notes, and uses every flag it defines', () => {
      const used = new Set(tests.flatMap((test) => test.flags));
      expect([...used].filter((flag) => !(flag in file.notes))).toEqual([]);
      expect(Object.keys(file.notes).filter((flag) => !used.has(flag))).toEqual([]);
    });

    it('cites only requirement ids that exist in spec/', async () => {
      const requirements = await loadRequirements();
      const cited = [...new Set(tests.flatMap((test) => test.spec))].sort();
      expect(cited.filter((id) => !requirements.has(id))).toEqual([]);
    });

    const run = runners[name];
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const outcome = test.result === 'valid' ? 'valid' : `invalid, ${test.error}`;
        it.runIf(run !== undefined)(`tcId ${test.tcId} (${outcome}): ${test.comment}`, async () => {
          await run!(group, test);
        });
      }
    }
  });
}
