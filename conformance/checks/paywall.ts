/**
 * Section 7, what the paywall covers: the paid resource must not be reachable
 * without payment through another spelling of its path or another method,
 * and a request that is not for a paid resource must not spend a balance.
 */
import type { RunContext } from '../context.ts';
import { describe, isSuccess, type Exchange } from '../exchange.ts';
import { expectNotServed, probeCard, withBalanceUnchanged } from './helpers.ts';
import { expect, NotApplicable, SkipCheck, type CheckDefinition } from './types.ts';

/** The path of the paid route without its query, and its query (with "?"), for building variants. */
function split(ctx: RunContext): { path: string; query: string } {
  const full = ctx.route().path;
  const at = full.indexOf('?');
  return at < 0 ? { path: full, query: '' } : { path: full.slice(0, at), query: full.slice(at) };
}

/** Percent-encodes the first letter of the last segment (`/api/joke` to `/api/%6Aoke`). */
function percentEncodeLetter(path: string): string | undefined {
  const match = /[A-Za-z](?=[^/]*$)/.exec(path);
  if (!match) return undefined;
  const hex = match[0].charCodeAt(0).toString(16).toUpperCase();
  return path.slice(0, match.index) + '%' + hex + path.slice(match.index + 1);
}

/**
 * Fails when a variant was served, unless the target serves 2xx for any path
 * at all (a catch-all such as a single-page app's index): then a 2xx says
 * nothing about the paid resource, and the check is skipped.
 */
async function expectVariantNotServed(ctx: RunContext, response: Exchange, what: string): Promise<void> {
  if (!isSuccess(response.status)) return;
  const control = `/conformance-no-such-path-${Math.floor(ctx.random() * 1e9)}`;
  const unknown = await ctx.send({ method: response.request.method, path: control, headers: {} }, { method: response.request.method, path: control });
  if (isSuccess(unknown.status)) {
    throw new SkipCheck(`the target answers ${unknown.status} for any path (${control} too), so a 2xx for a variant proves nothing`);
  }
  expectNotServed(response, what);
}

function variantCheck(slug: string, title: string, build: (path: string) => Array<string | undefined>): CheckDefinition {
  return {
    id: `7/${slug}`,
    title,
    level: 'core',
    severity: 'must',
    requirement: 'PAY-1',
    async run(ctx) {
      const { path, query } = split(ctx);
      const variants = [...new Set(build(path).filter((v): v is string => v !== undefined && v !== path))];
      if (variants.length === 0) throw new NotApplicable(`the path ${path} has no such variant`);
      for (const variant of variants) {
        await expectVariantNotServed(ctx, await ctx.send({ path: variant + query }), `${ctx.route().method} ${variant + query}`);
      }
    },
  };
}

export const paywallChecks: CheckDefinition[] = [
  variantCheck('trailing-slash-not-served', 'a trailing slash added or removed does not bypass the paywall', (p) => [
    p.endsWith('/') ? p.slice(0, -1) || undefined : p + '/',
    p.endsWith('/') ? undefined : p + '//',
  ]),
  variantCheck('letter-case-not-served', 'another letter case of the path does not bypass the paywall', (p) => [
    p.toUpperCase(),
    p.replace(/[a-z](?=[^/]*$)/, (c) => c.toUpperCase()),
  ]),
  variantCheck('repeated-slashes-not-served', 'repeated slashes do not bypass the paywall', (p) => [
    '/' + p,
    p.replace(/\/(?=[^/]*$)/, '//'),
  ]),
  variantCheck('percent-encoding-not-served', 'percent-encoding characters that need none does not bypass the paywall', (p) => [
    percentEncodeLetter(p),
    p.lastIndexOf('/') > 0 ? p.slice(0, p.lastIndexOf('/')) + '%2F' + p.slice(p.lastIndexOf('/') + 1) : undefined,
  ]),
  variantCheck('dot-segments-not-served', 'dot segments do not bypass the paywall', (p) => {
    const cut = p.lastIndexOf('/');
    return [p.slice(0, cut) + '/.' + p.slice(cut), p.slice(0, cut) + '/conformance/..' + p.slice(cut)];
  }),
  variantCheck('ignored-suffix-not-served', 'an added query or suffix does not bypass the paywall', (p) => [
    p + '?conformance=1',
    p + ';conformance',
    p + '#conformance',
  ]),
  {
    id: '7/mount-prefix-not-served',
    title: 'the paid handler is not reachable without payment under a common mount prefix',
    level: 'core',
    severity: 'must',
    requirement: 'PAY-3',
    async run(ctx) {
      const { path, query } = split(ctx);
      for (const prefix of ['/v1', '/api', '/public', '/static']) {
        await expectVariantNotServed(ctx, await ctx.send({ path: prefix + path + query }), `${ctx.route().method} ${prefix + path}`);
      }
    },
  },
  {
    id: '7/head-not-served',
    title: 'HEAD for a paid GET is answered with the challenge or 405',
    level: 'core',
    severity: 'must',
    requirement: 'PAY-2',
    async run(ctx) {
      if (ctx.route().method !== 'GET') throw new NotApplicable('the paid route is not a GET');
      const response = await ctx.send({ method: 'HEAD' });
      const challenged = response.status === 402 && response.paymentRequiredRaw !== undefined;
      expect(challenged || response.status === 405, 'HTTP 402 with payment-required, or 405', describe(response));
    },
  },
  {
    id: '7/method-override-not-served',
    title: 'a method override header does not bypass the paywall',
    level: 'core',
    severity: 'must',
    requirement: 'PAY-2',
    async run(ctx) {
      const method = ctx.route().method;
      const carrier = method === 'POST' ? 'PUT' : 'POST';
      const plain = await ctx.send({ method: carrier });
      if (isSuccess(plain.status)) throw new SkipCheck(`the path answers ${carrier} without payment by itself, so an override cannot be told apart`);
      for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
        const response = await ctx.send({ method: carrier, headers: { [header]: method } });
        expectNotServed(response, `${carrier} with ${header}: ${method}`);
      }
    },
  },
  {
    id: '7/unpaid-path-does-not-spend',
    title: 'a payment header on a request that is not for a paid resource spends nothing',
    level: 'core',
    severity: 'must',
    requirement: 'PAY-4',
    async run(ctx) {
      await withBalanceUnchanged(ctx, probeCard(ctx), async (clientId) => {
        const path = `/conformance-not-a-route-${Math.floor(ctx.random() * 1e9)}`;
        await ctx.send({ payload: { stripe402Version: 1, clientId }, method: 'GET', path }, { method: 'GET', path });
      });
    },
  },
];
