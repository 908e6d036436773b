/**
 * Section 12, discovery (extension): the document at /.well-known/stripe402
 * and the challenge of every route it lists.
 */
import { DISCOVERY_PATH } from '@stripe402/core';
import { describe } from '../exchange.ts';
import { show } from './helpers.ts';
import { NotApplicable, SkipCheck, expect, type CheckDefinition } from './types.ts';

export const discoveryChecks: CheckDefinition[] = [
  {
    id: '12/discovery-document-validates',
    title: 'GET /.well-known/stripe402 returns a valid discovery document',
    level: 'extensions',
    severity: 'must',
    requirement: 'DISC-1',
    async run(ctx) {
      const { status, document, error } = ctx.target.discovery;
      // A server without the extension SHOULD answer 404 (DISC-1), and may answer another 4xx or a page of its own:
      // only a JSON answer says the target implements discovery (CONF-5).
      if (status !== undefined && status >= 400 && status < 500) {
        throw new NotApplicable(`the target serves no discovery document (${DISCOVERY_PATH} answered ${status}): it does not implement the extension`);
      }
      const type = ctx.target.discovery.contentType ?? '';
      if (status === 200 && document === undefined && /^text\/html\b/i.test(type)) {
        throw new NotApplicable(`${DISCOVERY_PATH} answered an HTML page, not a discovery document: the target does not implement the extension`);
      }
      expect(document !== undefined, 'a discovery document that validates', error ?? 'none');
      expect(/^application\/json\b/i.test(type), 'Content-Type: application/json', `Content-Type: ${type || '(none)'}`);
    },
  },
  {
    id: '12/listed-routes-answer-matching-challenge',
    title: 'every listed route answers an unpaid request with a challenge whose price matches the document',
    level: 'extensions',
    severity: 'must',
    requirement: 'DISC-2',
    async run(ctx) {
      const document = ctx.target.discovery.document;
      if (!document) throw new NotApplicable('no valid discovery document (see 12/discovery-document-validates)');
      for (const route of document.routes) {
        // Fill path parameters with a harmless value: the price does not depend on it.
        const path = route.path.replace(/:[A-Za-z0-9_]+/g, 'conformance');
        const response = await ctx.send({ method: route.method, path }, { method: route.method, path });
        expect(response.status === 402 && response.paymentRequired, `a challenge for ${route.method} ${path}`, describe(response));
        const entry = response.paymentRequired.accepts.find((a) => a.currency === route.currency);
        expect(entry !== undefined, `an accepts entry in ${route.currency} for ${route.method} ${path}`, show(response.paymentRequired.accepts));
        // maxTopUp is compared only when the document lists it (DISC-2).
        const listed = { amount: route.amount, minTopUp: route.minTopUp, maxTopUp: route.maxTopUp };
        const offered = { amount: entry.amount, minTopUp: entry.minTopUp, maxTopUp: route.maxTopUp === undefined ? undefined : entry.maxTopUp };
        expect(JSON.stringify(listed) === JSON.stringify(offered), `the price of the document for ${route.method} ${path}: ${show(listed)}`, show(offered));
        expect(entry.publishableKey === document.publishableKey, `publishableKey ${document.publishableKey}`, entry.publishableKey);
      }
    },
  },
  {
    id: '12/discovery-reveals-nothing',
    title: 'the discovery document holds no secret key or client id',
    level: 'extensions',
    severity: 'must',
    requirement: 'DISC-3',
    async run(ctx) {
      const document = ctx.target.discovery.document;
      if (!document) throw new NotApplicable('no valid discovery document (see 12/discovery-document-validates)');
      const text = JSON.stringify(document);
      const leak = /\b(sk|rk)_(test|live)_\w+|\bwhsec_\w+|\b[0-9a-f]{64}\b/.exec(text);
      expect(leak === null, 'nothing a challenge would not show', leak ? `"${leak[0]}"` : '');
    },
  },
];
