/**
 * Property: invalid input never yields 2xx or 5xx and never changes a
 * balance (ERR-6, PROC-2). Inputs come from the rejection classes of the
 * vectors (vectors/header_encoding.json and vectors/messages.json, read at
 * run time when the package ships them), from the suite's own junk classes,
 * and from random mutations of a valid header, kept only when the shared
 * strict codec rejects them. Payload vectors are rewritten to name the
 * probe's card and client id, so a lax server would spend or charge a
 * balance the property watches.
 */
import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { decodePaymentHeader, encodeHeader } from '@stripe402/core';
import { expectError, probeCard } from '../checks/helpers.ts';
import { CheckFailure, type CheckDefinition } from '../checks/types.ts';
import type { RunContext } from '../context.ts';
import { delivered, describe, isSuccess } from '../exchange.ts';
import { JUNK_CLASSES, encodeText, invalidPayloads } from '../payloads.ts';
import { MAX_SHRINKS, checkProperty } from './run.ts';

/** One invalid payment header and the error codes a conforming server may answer it with. */
export interface InvalidInput {
  source: string;
  value: string;
  codes: readonly string[];
}

/** Gives an input a short rendering for fast-check's counterexample line. */
function printable(input: InvalidInput): InvalidInput {
  return Object.assign(input, { [fc.toStringMethod]: () => `${input.source}: ${JSON.stringify(input.value.length > 120 ? input.value.slice(0, 117) + '...' : input.value)}` });
}

const ANY_REJECTION = ['invalid_payment', 'unsupported_version'] as const;
const VECTOR_CLIENT_ID = '0939620a1e8c6a26b166de5d8b3030e2ed2dd80a852a62a6c0b38b77b4d09dfc';
/** What an HTTP/1.1 client can send in a field value; other vectors (CR LF) test the codec, not a server. */
const SENDABLE = /^[\t\x20-\x7e]*$/;

interface VectorFile {
  testGroups: Array<{ function?: string; message?: string; tests: Array<Record<string, unknown>> }>;
}

function readVectors(name: string): VectorFile | undefined {
  const url = new URL(`../../vectors/${name}`, import.meta.url);
  if (!existsSync(url)) return undefined;
  return JSON.parse(readFileSync(url, 'utf8')) as VectorFile;
}

/** The rejection cases of the vector files, rewritten for the probe client. */
export function vectorInputs(card: string, clientId: string): InvalidInput[] {
  const inputs: InvalidInput[] = [];
  const headers = readVectors('header_encoding.json');
  for (const group of headers?.testGroups ?? []) {
    for (const test of group.tests) {
      if (test.result !== 'invalid' || typeof test.header !== 'string') continue;
      inputs.push({ source: `header_encoding.json tcId ${String(test.tcId)}`, value: test.header, codes: [String(test.error)] });
    }
  }
  const messages = readVectors('messages.json');
  for (const group of messages?.testGroups ?? []) {
    if (group.message !== 'PaymentPayload') continue;
    for (const test of group.tests) {
      if (test.result !== 'invalid' || typeof test.json !== 'string') continue;
      const text = test.json.replaceAll('"pm_card_visa"', JSON.stringify(card)).replaceAll(VECTOR_CLIENT_ID, clientId);
      inputs.push({ source: `messages.json tcId ${String(test.tcId)}`, value: encodeText(text), codes: [String(test.error)] });
    }
  }
  return inputs;
}

/** The suite's own junk: every class of payloads.ts and the invalid payloads, around the probe. */
export function builtInInputs(card: string, clientId: string, minTopUp: number): InvalidInput[] {
  const payload = { stripe402Version: 1, clientId };
  return [
    ...JUNK_CLASSES.flatMap((junk) =>
      junk.variants(payload).map((v) => ({ source: `${junk.slug}: ${v.label}`, value: v.value, codes: ['invalid_payment'] })),
    ),
    ...invalidPayloads(card, clientId, minTopUp).map((p) => ({ source: `payload with ${p.label}`, value: encodeHeader(p.payload), codes: [p.code] })),
  ];
}

/** Random edits of a valid header, kept only when the strict codec rejects the result. */
export function mutationArbitrary(valid: string): fc.Arbitrary<InvalidInput> {
  const junkChar = fc.constantFrom('!', '*', '.', ' ', '\t', '=', '-', '_', '%', '"', '{', ',', ':', 'é', '\\');
  const base64Char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=');
  const position = fc.nat({ max: valid.length });
  const edit = fc.oneof(
    fc.tuple(position, junkChar).map(([at, c]) => ({ label: `insert ${JSON.stringify(c)} at ${at}`, value: valid.slice(0, at) + c + valid.slice(at) })),
    fc.tuple(position, base64Char).map(([at, c]) => ({ label: `replace character ${at} by ${c}`, value: valid.slice(0, at) + c + valid.slice(at + 1) })),
    position.map((at) => ({ label: `delete character ${at}`, value: valid.slice(0, at) + valid.slice(at + 1) })),
    position.map((at) => ({ label: `truncate at ${at}`, value: valid.slice(0, at) })),
    fc.tuple(position, fc.string({ unit: base64Char, minLength: 1, maxLength: 6 })).map(([at, s]) => ({ label: `insert "${s}" at ${at}`, value: valid.slice(0, at) + s + valid.slice(at) })),
  );
  return edit
    .filter((e) => stillInvalidOverHttp(e))
    .map((e) => ({ source: `mutation: ${e.label}`, value: e.value, codes: ANY_REJECTION }));
}

/**
 * Whether a value can be sent as a field value and is still invalid once the
 * HTTP layer has stripped its surrounding whitespace (a vector that is
 * invalid only because of that whitespace, like an over-long value padded
 * with spaces, reaches a server valid).
 */
export function stillInvalidOverHttp(input: { value: string }): boolean {
  return SENDABLE.test(input.value.replaceAll('é', '')) && !decodePaymentHeader(delivered(input.value)).ok;
}

/** Random payload objects with one member of the wrong type or out of range. */
export function invalidPayloadArbitrary(card: string, clientId: string): fc.Arbitrary<InvalidInput> {
  const wrong = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double({ noInteger: true }),
    fc.integer({ max: 0 }),
    fc.string({ maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 2 }),
    fc.constant(2 ** 53),
  );
  const member = fc.constantFrom('stripe402Version', 'topUpAmount', 'clientId', 'paymentMethodId', 'idempotencyKey', 'paymentIntentId', 'currency');
  return fc
    .tuple(member, wrong, fc.boolean())
    .map(([name, value, withCard]) => {
      const payload: Record<string, unknown> = withCard
        ? { stripe402Version: 1, paymentMethodId: card, clientId }
        : { stripe402Version: 1, clientId };
      payload[name] = value;
      return payload;
    })
    .filter((payload) => !decodePaymentHeader(encodeHeader(payload)).ok)
    .map((payload) => ({ source: `payload ${JSON.stringify(payload)}`, value: encodeHeader(payload), codes: ANY_REJECTION }));
}

export const invalidInputProperty: CheckDefinition = {
  id: '10/invalid-input-never-served',
  title: 'property: invalid payment headers are refused with 402, never 2xx or 5xx, and change no balance',
  level: 'core',
  severity: 'must',
  requirement: 'ERR-6',
  property: true,
  async run(ctx: RunContext) {
    const card = probeCard(ctx);
    const amount = ctx.accept.amount;
    const { clientId } = await ctx.fund(card, amount);
    const fixed = [...vectorInputs(card, clientId), ...builtInInputs(card, clientId, ctx.accept.minTopUp)].filter(stillInvalidOverHttp);
    const valid = encodeHeader({ stripe402Version: 1, clientId });
    const inputs = fc.limitShrink(
      fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...fixed) },
        { weight: 2, arbitrary: mutationArbitrary(valid) },
        { weight: 1, arbitrary: invalidPayloadArbitrary(card, clientId) },
      ),
      MAX_SHRINKS,
    ).map(printable);
    let balance = (await ctx.fund(card, amount)).balance;
    const property = fc.asyncProperty(inputs, async (input) => {
      if (balance < amount) balance = (await ctx.fund(card, amount)).balance;
      const response = await ctx.send({ payment: input.value });
      if (isSuccess(response.status) || response.status >= 500) {
        throw new CheckFailure(`HTTP 402 ${input.codes.join(' or ')} for ${input.source}`, describe(response));
      }
      expectError(response, input.codes, input.source);
      const probe = await ctx.spend(clientId);
      if (!isSuccess(probe.status) || !probe.paymentResponse) {
        throw new CheckFailure(`the next spend from the probe client (balance ${balance}) to be served after ${input.source}`, describe(probe));
      }
      const expected = balance - amount;
      balance = probe.paymentResponse.creditsRemaining;
      if (balance !== expected) {
        throw new CheckFailure(
          `the probe balance unchanged by ${input.source} (creditsRemaining ${expected} after the next spend)`,
          `creditsRemaining ${balance}`,
        );
      }
    });
    // Every input of the suite's own classes runs first, whatever the seed: a lax decoder repairs some of them,
    // and a few random picks alone may miss every one it repairs.
    await checkProperty(ctx, property, builtInInputs(card, clientId, ctx.accept.minTopUp).filter(stillInvalidOverHttp).map((input) => [printable(input)]));
  },
};
