/**
 * The route table on its own: configuration checks at start-up (MSG-7,
 * UNIT-6), canonical path matching (PAY-1 to PAY-3) and the discovery
 * document (DISC-1). No I/O.
 */
import { describe, expect, it } from 'vitest';
import { validateDiscovery } from '@stripe402/core';
import { canonicalSegments, compileRoutes, pathnameOf, RouteConfigError, RouteTable, type PaidRouteConfig } from './routes.ts';

const JOKE: PaidRouteConfig = { method: 'GET', path: '/api/joke', amount: 100, currency: 'usd', minTopUp: 50_000, description: 'A joke' };
const ITEM: PaidRouteConfig = { method: 'GET', path: '/api/items/:id', amount: 100, currency: 'usd', minTopUp: 50_000 };
const ECHO: PaidRouteConfig = { method: 'POST', path: '/api/echo', amount: 50, currency: 'usd', minTopUp: 50_000 };

function table(routes: PaidRouteConfig[] = [JOKE, ITEM, ECHO], anyPrefix = true) {
  return new RouteTable(compileRoutes(routes), { anyPrefix });
}

describe('route configuration', () => {
  it('refuses a minTopUp below the price of one request', () => {
    expect(() => compileRoutes([{ ...JOKE, amount: 60_000 }])).toThrow(RouteConfigError);
  });

  it('refuses a maxTopUp below minTopUp', () => {
    expect(() => compileRoutes([{ ...JOKE, maxTopUp: 40_000 }])).toThrow(/maxTopUp/);
  });

  it("refuses a minTopUp that charges less than Stripe's minimum for the currency", () => {
    // 4,000 units = $0.40, below Stripe's $0.50.
    expect(() => compileRoutes([{ ...JOKE, minTopUp: 4_000 }])).toThrow(/Stripe's minimum/);
    // 400,000 units = ¥40, below Stripe's ¥50; 500,000 = ¥50 is fine.
    expect(() => compileRoutes([{ ...JOKE, currency: 'jpy', minTopUp: 400_000 }])).toThrow(/Stripe's minimum/);
    expect(compileRoutes([{ ...JOKE, currency: 'jpy', minTopUp: 500_000 }])).toHaveLength(1);
  });

  it('allows a minimum below Stripe\'s when the check is turned off (a test backend)', () => {
    expect(compileRoutes([{ ...JOKE, minTopUp: 100 }], { enforceStripeMinimums: false })).toHaveLength(1);
  });

  it("refuses a top-up bound whose charge is not a multiple of the currency's step, or above Stripe's maximum", () => {
    // 12,345 units of kwd charge 1,235 fils, not a multiple of 10 (UNIT-7).
    expect(() => compileRoutes([{ ...JOKE, currency: 'kwd', amount: 100, minTopUp: 12_345 }])).toThrow(/multiple of 10/);
    expect(compileRoutes([{ ...JOKE, currency: 'kwd', amount: 100, minTopUp: 12_300 }])).toHaveLength(1);
    // $1,000,000 is above the largest USD charge Stripe accepts (UNIT-8).
    expect(() => compileRoutes([{ ...JOKE, maxTopUp: 10_000_000_000 }])).toThrow(/more than Stripe accepts/);
  });

  it('refuses amounts that are not integer units', () => {
    expect(() => compileRoutes([{ ...JOKE, amount: 1.5 }])).toThrow(/amount/);
    expect(() => compileRoutes([{ ...JOKE, amount: 0 }])).toThrow(/amount/);
    expect(() => compileRoutes([{ ...JOKE, minTopUp: '50000' as unknown as number }])).toThrow(/minTopUp/);
  });

  it('refuses an upper-case or unknown currency code and a currency listed twice', () => {
    expect(() => compileRoutes([{ ...JOKE, currency: 'USD' }])).toThrow(/currency/);
    expect(() =>
      compileRoutes([{ method: 'GET', path: '/x', accepts: [{ currency: 'usd', amount: 1, minTopUp: 50_000 }, { currency: 'usd', amount: 2, minTopUp: 50_000 }] }]),
    ).toThrow(/twice/);
  });

  it('refuses two routes that are the same after canonicalization', () => {
    expect(() => compileRoutes([JOKE, { ...JOKE, path: '/API/Joke/' }])).toThrow(/declared twice/);
  });
});

describe('canonical paths', () => {
  it.each([
    ['/api/joke', ['api', 'joke']],
    ['/api/joke/', ['api', 'joke']],
    ['/API/JOKE', ['api', 'joke']],
    ['//api//joke', ['api', 'joke']],
    ['/api/%6Aoke', ['api', 'joke']],
    ['/api%2Fjoke', ['api', 'joke']],
    ['/api/%256Aoke', ['api', 'joke']],
    ['/api/./joke', ['api', 'joke']],
    ['/api/x/../joke', ['api', 'joke']],
    ['/api\\joke', ['api', 'joke']],
    ['/api/%2e%2e/api/joke', ['api', 'joke']],
  ])('%s reads as /api/joke', (raw, expected) => {
    expect(canonicalSegments(raw)).toEqual(expected);
  });

  it('takes the path of a URL without its query or fragment', () => {
    expect(pathnameOf('http://127.0.0.1:4021/api/joke?x=/y#z')).toBe('/api/joke');
    expect(pathnameOf('http://h')).toBe('/');
  });
});

describe('matching a request to a paid route', () => {
  const routes = table();

  it.each(['/api/joke', '/api/joke/', '/API/Joke', '//api/joke', '/api/%6Aoke', '/api/./joke', '/v1/api/joke', '/a/b/api/joke/'])(
    'GET %s is the paid joke',
    (path) => {
      expect(routes.match('GET', path)?.route.key).toBe('GET /api/joke');
    },
  );

  it('HEAD of a paid GET is paid (PAY-2)', () => {
    expect(routes.match('HEAD', '/api/joke')?.route.key).toBe('GET /api/joke');
  });

  it('another method of a paid path is not this route', () => {
    expect(routes.match('POST', '/api/joke')).toBeNull();
    expect(routes.match('GET', '/api/echo')).toBeNull();
    expect(routes.match('OPTIONS', '/api/echo')).toBeNull();
  });

  it('a free path is free', () => {
    expect(routes.match('GET', '/health')).toBeNull();
    expect(routes.match('GET', '/api/jokes')).toBeNull();
    expect(routes.match('GET', '/api')).toBeNull();
  });

  it('a parameter matches one segment and names the resource with the value', () => {
    expect(routes.match('GET', '/api/items/42')?.resourcePath).toBe('/api/items/42');
    expect(routes.match('GET', '/api/items')).toBeNull();
    expect(routes.match('GET', '/api/items/42/more')).toBeNull();
  });

  it('without anyPrefix, a mount prefix does not match', () => {
    const strict = table([JOKE], false);
    expect(strict.match('GET', '/v1/api/joke')).toBeNull();
    expect(strict.match('GET', '/api/joke/')).not.toBeNull();
  });

  it('names the configured path as the resource, whatever the spelling of the request', () => {
    expect(routes.match('GET', '/API/JOKE/')?.resourcePath).toBe('/api/joke');
  });
});

describe('the discovery document', () => {
  it('lists every route and currency and validates against the schema', () => {
    const multi: PaidRouteConfig = {
      method: 'GET',
      path: '/api/fortune',
      accepts: [
        { currency: 'jpy', amount: 10_000, minTopUp: 1_000_000, maxTopUp: 100_000_000 },
        { currency: 'usd', amount: 100, minTopUp: 50_000 },
      ],
    };
    const doc = table([JOKE, multi]).discovery('pk_test_abc');
    expect(validateDiscovery(doc).ok).toBe(true);
    expect(doc.routes.map((r) => `${r.method} ${r.path} ${r.currency}`)).toEqual(['GET /api/joke usd', 'GET /api/fortune jpy', 'GET /api/fortune usd']);
    expect(doc.routes[1]!.maxTopUp).toBe(100_000_000);
  });
});
