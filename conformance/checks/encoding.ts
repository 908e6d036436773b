/**
 * Section 3, headers and encoding: the challenge as the server sends it, the
 * payment header as the server must read it (strictly), and the
 * payment-response on every answer to a paid request.
 */
import { isDeepStrictEqual } from 'node:util';
import { base64Decode, decodeHeaderObject, encodeHeader, MAX_PAYMENT_HEADER_LENGTH } from '@stripe402/core';
import { describe, describeWithRequest, errorCodeOf, headerValue, isSuccess } from '../exchange.ts';
import { JUNK_CLASSES, encodeText, paddedHeader, spacedJson } from '../payloads.ts';
import { expectBalance, expectError, expectServed, probeCard, refusesEveryVariant, withBalanceUnchanged } from './helpers.ts';
import { CheckFailure, NotApplicable, Prerequisite, SkipCheck, expect, type CheckDefinition } from './types.ts';

const STANDARD_PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const junkChecks: CheckDefinition[] = JUNK_CLASSES.map((junk) => ({
  id: `3/${junk.slug}`,
  title: junk.title,
  level: 'core',
  severity: 'must',
  requirement: junk.requirement,
  async run(ctx) {
    if (junk.variants({ stripe402Version: 1, clientId: ctx.randomClientId() }).length === 0) throw new SkipCheck('could not build a value of this class');
    await refusesEveryVariant(ctx, (clientId) =>
      junk.variants({ stripe402Version: 1, clientId }).map((variant) => ({
        label: `a payment header with ${variant.label}`,
        payment: variant.value,
        codes: 'invalid_payment',
      })),
    );
  },
}));

export const encodingChecks: CheckDefinition[] = [
  {
    id: '3/challenge-header-is-standard-base64',
    title: 'the payment-required header is standard padded base64 of a UTF-8 JSON object',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-2',
    async run(ctx) {
      const first = ctx.target.firstExchange;
      const raw = first.paymentRequiredRaw;
      expect(first.status === 402, 'HTTP 402 for an unpaid request', describe(first));
      expect(raw !== undefined, 'a payment-required header on the 402', 'no payment-required header');
      expect(STANDARD_PADDED.test(raw) && raw.length > 0, 'standard base64 with = padding, no other characters', `"${raw.slice(0, 80)}"`);
      const bytes = base64Decode(raw)!;
      expect(!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf), 'no byte order mark', 'the bytes begin with EF BB BF');
      const decoded = decodeHeaderObject(raw);
      expect(decoded.ok, 'UTF-8 JSON text of one object', decoded.ok ? '' : decoded.error.detail);
    },
  },
  {
    id: '3/challenge-body-equals-header',
    title: 'the 402 body is the same PaymentRequiredResponse as the header, as application/json',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-10',
    async run(ctx) {
      const first = ctx.target.firstExchange;
      const raw = first.paymentRequiredRaw;
      expect(raw !== undefined, 'a payment-required header', 'none');
      const header = decodeHeaderObject(raw);
      if (!header.ok) throw new SkipCheck('the header does not decode (see 3/challenge-header-is-standard-base64)');
      const type = headerValue(first.headers, 'content-type') ?? '';
      expect(/^application\/json\b/i.test(type), 'Content-Type: application/json', `Content-Type: ${type || '(none)'}`);
      let body: unknown;
      try {
        body = JSON.parse(first.body);
      } catch {
        throw new CheckFailure('a JSON body equal to the decoded header', `a body that is not JSON: ${first.body.slice(0, 80)}`);
      }
      expect(isDeepStrictEqual(body, header.value), 'a JSON body equal to the decoded header', `body ${JSON.stringify(body).slice(0, 200)}`);
    },
  },
  {
    id: '3/challenge-not-stored',
    title: 'a 402 carries Cache-Control: no-store',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-11',
    async run(ctx) {
      const responses = [ctx.target.firstExchange];
      responses.push(await ctx.spend(ctx.randomClientId()));
      responses.push(await ctx.send({ payment: 'not base64!' }));
      for (const response of responses) {
        const cache = headerValue(response.headers, 'cache-control') ?? '';
        expect(response.status === 402, 'HTTP 402', describe(response));
        expect(/(^|[\s,])no-store($|[\s,])/i.test(cache), 'Cache-Control with no-store on every 402', `Cache-Control: ${cache || '(none)'} on ${describeWithRequest(response)}`);
      }
    },
  },
  {
    id: '3/cors-exposes-payment-headers',
    title: 'a cross-origin 402 exposes payment-required and payment-response',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-12',
    async run(ctx) {
      const response = await ctx.send({ headers: { origin: 'https://conformance.example' } });
      if (headerValue(response.headers, 'access-control-allow-origin') === undefined) {
        throw new NotApplicable('the target does not answer cross-origin requests (no Access-Control-Allow-Origin)');
      }
      const exposed = (headerValue(response.headers, 'access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      const missing = ['payment-required', 'payment-response'].filter((h) => !exposed.includes(h) && !exposed.includes('*'));
      expect(missing.length === 0, 'Access-Control-Expose-Headers listing payment-required and payment-response', `missing ${missing.join(', ')} (got "${exposed.join(', ')}")`);
    },
  },
  {
    id: '3/cors-preflight-is-free',
    title: 'a CORS preflight is answered without payment and allows the payment header',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-14',
    async run(ctx) {
      const route = ctx.route();
      const response = await ctx.send({
        method: 'OPTIONS',
        headers: {
          origin: 'https://conformance.example',
          'access-control-request-method': route.method,
          'access-control-request-headers': 'payment',
        },
      });
      if (headerValue(response.headers, 'access-control-allow-origin') === undefined) {
        throw new NotApplicable('the target does not allow cross-origin requests (no Access-Control-Allow-Origin on the preflight)');
      }
      expect(response.status !== 402 && response.status < 400, 'a preflight answered without payment (2xx)', describe(response));
      const allowed = (headerValue(response.headers, 'access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      expect(allowed.includes('payment') || allowed.includes('*'), 'Access-Control-Allow-Headers listing payment', `"${allowed.join(', ')}"`);
    },
  },
  {
    id: '3/header-names-any-case',
    title: 'the payment header is recognised in any letter case',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-1',
    async run(ctx) {
      const { clientId } = await ctx.fund(probeCard(ctx), ctx.accept.amount);
      const value = encodeHeader({ stripe402Version: 1, clientId });
      const response = await ctx.send({ headers: { PAYMENT: value } });
      expectServed(response, 'a spend sent as "PAYMENT:"');
    },
  },
  {
    id: '3/payment-response-on-success',
    title: 'a served request that carried payment gets a payment-response',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-13',
    async run(ctx) {
      const { clientId } = await ctx.fund(probeCard(ctx), ctx.accept.amount);
      const response = await ctx.spend(clientId);
      expect(isSuccess(response.status), 'a served spend', describe(response));
      expect(response.paymentResponseRaw !== undefined, 'a payment-response header', 'none');
      expect(response.paymentResponse !== undefined, 'a payment-response that decodes to a PaymentResponse', response.paymentResponseError ?? '');
    },
  },
  {
    id: '3/payment-response-on-error',
    title: 'an error 402 to a request that carried payment gets a payment-response',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-13',
    async run(ctx) {
      const response = await ctx.spend(ctx.randomClientId());
      expect(response.status === 402, 'HTTP 402 for an unknown client id', describe(response));
      expect(response.paymentResponse !== undefined, 'a decodable payment-response', response.paymentResponseError ?? 'no payment-response header');
    },
  },
  {
    id: '3/payment-response-on-undecodable-header',
    title: 'a request whose payment header cannot be decoded still gets a payment-response',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-13',
    async run(ctx) {
      const response = await ctx.send({ payment: '%%% not base64 %%%' });
      expect(response.paymentResponse !== undefined, 'a decodable payment-response', response.paymentResponseError ?? `no payment-response header (${describe(response)})`);
      expect(response.paymentResponse.success === false && response.paymentResponse.errorCode === 'invalid_payment', 'success false, errorCode invalid_payment', describe(response));
    },
  },
  {
    id: '3/payment-response-not-shared-cacheable',
    title: 'every response carrying payment-response has Cache-Control no-store or private',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-15',
    late: true,
    async run(ctx) {
      const withAnswer = ctx.observed.filter((e) => e.paymentResponseRaw !== undefined);
      if (withAnswer.length === 0) throw new SkipCheck('the run saw no payment-response');
      for (const response of withAnswer) {
        const cache = headerValue(response.headers, 'cache-control') ?? '';
        expect(/(^|[\s,])(no-store|private)($|[\s,=])/i.test(cache), 'Cache-Control with no-store or private', `Cache-Control: ${cache || '(none)'} on ${describeWithRequest(response)}`);
      }
    },
  },
  {
    id: '3/rejects-oversized-header',
    title: 'a payment header longer than 4096 characters is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-8',
    async run(ctx) {
      await withBalanceUnchanged(ctx, probeCard(ctx), async (clientId) => {
        // A valid payload padded with insignificant JSON whitespace: only its length is wrong.
        const base = { stripe402Version: 1, clientId };
        const encoded = (n: number) => encodeText(spacedJson(base, n));
        let spaces = 0;
        while (encoded(spaces).length <= MAX_PAYMENT_HEADER_LENGTH || !encoded(spaces).endsWith('=')) spaces++;
        const padded = encoded(spaces);
        const unpadded = padded.replace(/=+$/, '');
        for (const value of [padded, unpadded]) {
          expectError(await ctx.send({ payment: value }), 'invalid_payment', `a valid payload encoded in ${value.length} characters`);
        }
      });
    },
  },
  {
    id: '3/rejects-repeated-header',
    title: 'a payment header sent more than once is invalid_payment',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-9',
    async run(ctx) {
      await withBalanceUnchanged(ctx, probeCard(ctx), async (clientId) => {
        const value = encodeHeader({ stripe402Version: 1, clientId });
        expectError(await ctx.send({ payment: [value, value] }), 'invalid_payment', 'two payment field lines');
        expectError(await ctx.send({ payment: `${value}, ${value}` }), 'invalid_payment', 'one field line holding two comma-separated values');
      });
    },
  },
  ...junkChecks,
  {
    id: '3/accepts-unpadded-and-trimmed',
    title: 'padded, unpadded and whitespace-surrounded forms of a valid payload are all accepted',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-3',
    async run(ctx) {
      const amount = ctx.accept.amount;
      let funded = true;
      let clientId: string;
      try {
        clientId = (await ctx.fund(probeCard(ctx), amount * 6)).clientId;
      } catch (error) {
        if (!(error instanceof Prerequisite)) throw error;
        // No funded client (stateless backend): every form must still reach the ledger and be refused alike.
        funded = false;
        clientId = ctx.randomClientId();
      }
      const payload = { stripe402Version: 1, clientId };
      const padded = paddedHeader(payload);
      // The last character before the padding with its unused low bits set: ENC-3 says they are discarded.
      const stem = padded.replace(/=+$/, '');
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const lastValue = alphabet.indexOf(stem.at(-1)!);
      const unusedBits = padded.endsWith('==') ? 0b1111 : 0b11;
      const noisy = stem.slice(0, -1) + alphabet[lastValue | unusedBits] + padded.slice(stem.length);
      const forms = [
        { label: 'padded', value: padded },
        { label: 'unpadded', value: stem },
        { label: 'surrounded by spaces', value: `  ${padded}  ` },
        { label: 'surrounded by tabs', value: `\t${stem}\t` },
        { label: 'with non-zero unused bits in the last character', value: noisy },
      ];
      let balance: number | undefined;
      for (const form of forms) {
        const response = await ctx.send({ payment: form.value });
        if (!funded) {
          expectError(response, 'insufficient_credits', `the ${form.label} form of a spend from an unfunded client id`);
          continue;
        }
        const answer = expectServed(response, `the ${form.label} form`);
        if (balance !== undefined) expectBalance(response, balance - amount, `after the ${form.label} form`);
        balance = answer.creditsRemaining;
      }
    },
  },
  {
    id: '3/duplicate-member-rejected-or-last-wins',
    title: 'a payload with a duplicated member is rejected or read with its last value',
    level: 'core',
    severity: 'must',
    requirement: 'ENC-16',
    async run(ctx) {
      const { clientId, balance } = await ctx.fund(probeCard(ctx), ctx.accept.amount);
      const decoy = ctx.randomClientId();
      const text = `{"stripe402Version":1,"clientId":"${decoy}","clientId":"${clientId}"}`;
      const response = await ctx.send({ payment: encodeText(text) });
      if (response.status === 402 && errorCodeOf(response) === 'invalid_payment') return;
      const answer = expectServed(response, 'a duplicated clientId member, read with its last value');
      expect(answer.clientId === clientId, `the last clientId ${clientId}`, answer.clientId);
      expectBalance(response, balance - ctx.accept.amount, 'after one spend from the last clientId');
    },
  },
  {
    id: '3/duplicate-member-rejected',
    title: 'a payload with a duplicated member is invalid_payment',
    level: 'core',
    severity: 'should',
    requirement: 'ENC-16',
    async run(ctx) {
      await withBalanceUnchanged(ctx, probeCard(ctx), async (clientId) => {
        const text = `{"stripe402Version":1,"clientId":"${clientId}","clientId":"${clientId}"}`;
        expectError(await ctx.send({ payment: encodeText(text) }), 'invalid_payment', 'a payload with clientId twice');
      });
    },
  },
  {
    id: '3/base64url-handling',
    title: 'a base64url payment header is either accepted or rejected as invalid_payment (MAY accept)',
    level: 'core',
    severity: 'info',
    requirement: 'ENC-4',
    async run(ctx) {
      const { clientId } = await ctx.fund(probeCard(ctx), ctx.accept.amount);
      const payload = { stripe402Version: 1, clientId, note: '???>>>~~~' };
      const standard = encodeHeader(payload);
      const url = standard.replaceAll('+', '-').replaceAll('/', '_');
      if (url === standard) throw new SkipCheck('could not build a payload whose encodings differ');
      const response = await ctx.send({ payment: url });
      if (isSuccess(response.status)) return 'the target accepts base64url';
      expectError(response, 'invalid_payment', 'a base64url value the target does not accept');
      return 'the target rejects base64url with invalid_payment';
    },
  },
];
