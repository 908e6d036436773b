/**
 * The budget policy on its own: origin rules, price and top-up limits,
 * charge caps over rolling windows (with a controlled clock), reservations
 * and the approval hook. No network: the policy is pure bookkeeping.
 */
import { describe, expect, it } from 'vitest';
import type { PaymentRequirements } from '@stripe402/core';
import { BudgetPolicy, originMatches, type TopUpDetails } from '../budget.ts';
import { BudgetExceededError } from '../errors.ts';

const usd = (over: Partial<PaymentRequirements> = {}): PaymentRequirements => ({
  scheme: 'stripe',
  currency: 'usd',
  amount: 100,
  minTopUp: 50_000,
  publishableKey: 'pk_test_x',
  ...over,
});

const details = (over: Partial<TopUpDetails> = {}): TopUpDetails => ({
  origin: 'https://api.example.com',
  url: 'https://api.example.com/a',
  method: 'GET',
  currency: 'usd',
  price: 100,
  topUpAmount: 50_000,
  chargeMinor: 500,
  minTopUp: 50_000,
  maxTopUp: undefined,
  description: undefined,
  ...over,
});

function refusal(run: () => unknown): BudgetExceededError {
  try {
    run();
  } catch (error) {
    if (error instanceof BudgetExceededError) return error;
    throw error;
  }
  throw new Error('expected a BudgetExceededError');
}

async function asyncRefusal(run: () => Promise<unknown>): Promise<BudgetExceededError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof BudgetExceededError) return error;
    throw error;
  }
  throw new Error('expected a BudgetExceededError');
}

describe('origin patterns', () => {
  it('an exact origin matches itself, with or without the default port, and nothing else', () => {
    expect(originMatches(new URL('https://api.example.com/x'), 'https://api.example.com')).toBe(true);
    expect(originMatches(new URL('https://api.example.com:443/x'), 'https://API.example.com')).toBe(true);
    expect(originMatches(new URL('http://api.example.com/x'), 'https://api.example.com')).toBe(false);
    expect(originMatches(new URL('https://api.example.com:8443/x'), 'https://api.example.com')).toBe(false);
    expect(originMatches(new URL('https://evil-api.example.com/x'), 'https://api.example.com')).toBe(false);
  });

  it('a wildcard matches every subdomain but not the domain itself or a look-alike', () => {
    expect(originMatches(new URL('https://a.example.com'), 'https://*.example.com')).toBe(true);
    expect(originMatches(new URL('https://a.b.example.com'), 'https://*.example.com')).toBe(true);
    expect(originMatches(new URL('https://example.com'), 'https://*.example.com')).toBe(false);
    expect(originMatches(new URL('https://badexample.com'), 'https://*.example.com')).toBe(false);
    expect(originMatches(new URL('http://a.example.com'), 'https://*.example.com')).toBe(false);
    expect(originMatches(new URL('https://a.example.com:8443'), 'https://*.example.com:8443')).toBe(true);
  });
});

describe('origin rules', () => {
  it('plain http is refused unless it is loopback or explicitly allowed', () => {
    const policy = new BudgetPolicy();
    expect(refusal(() => policy.checkOrigin(new URL('http://api.example.com/a'))).rule).toBe('insecure_origin');
    expect(() => policy.checkOrigin(new URL('http://127.0.0.1:8080/a'))).not.toThrow();
    expect(() => policy.checkOrigin(new URL('http://localhost:8080/a'))).not.toThrow();
    expect(() => new BudgetPolicy({ allowInsecureHttp: true }).checkOrigin(new URL('http://api.example.com/a'))).not.toThrow();
  });

  it('a denied origin is refused even when it is also allowed', () => {
    const policy = new BudgetPolicy({ allowedOrigins: ['https://*.example.com'], deniedOrigins: ['https://bad.example.com'] });
    expect(() => policy.checkOrigin(new URL('https://good.example.com'))).not.toThrow();
    expect(refusal(() => policy.checkOrigin(new URL('https://bad.example.com'))).rule).toBe('origin_denied');
    expect(refusal(() => policy.checkOrigin(new URL('https://other.org'))).rule).toBe('origin_not_allowed');
  });
});

describe('prices and top-ups', () => {
  it('a price above maxPricePerRequest is refused, per currency with a fallback', () => {
    const policy = new BudgetPolicy({ maxPricePerRequest: { usd: 200, '*': 50 } });
    expect(() => policy.checkPrice('https://a.com', 'usd', 200)).not.toThrow();
    const error = refusal(() => policy.checkPrice('https://a.com', 'usd', 201));
    expect(error.rule).toBe('max_price_per_request');
    expect(error.refusal).toMatchObject({ requested: 201, limit: 200, currency: 'usd', measure: 'units' });
    expect(refusal(() => policy.checkPrice('https://a.com', 'eur', 51)).rule).toBe('max_price_per_request');
  });

  it('the default price limit is one major unit per request', () => {
    const policy = new BudgetPolicy();
    expect(policy.priceAllowed('usd', 10_000)).toBe(true);
    expect(policy.priceAllowed('usd', 10_001)).toBe(false);
  });

  it('the top-up defaults to the server minimum', () => {
    expect(new BudgetPolicy().planTopUp('https://a.com', usd())).toBe(50_000);
  });

  it('a multiplier raises the top-up, clamped to our maximum and the server maximum', () => {
    expect(new BudgetPolicy({ topUpMultiplier: 1.5 }).planTopUp('https://a.com', usd())).toBe(75_000);
    expect(new BudgetPolicy({ topUpMultiplier: 10 }).planTopUp('https://a.com', usd())).toBe(100_000);
    expect(new BudgetPolicy({ topUpMultiplier: 10 }).planTopUp('https://a.com', usd({ maxTopUp: 60_000 }))).toBe(60_000);
  });

  it('a target is never below the server minimum or the price', () => {
    expect(new BudgetPolicy({ topUpTarget: 80_000 }).planTopUp('https://a.com', usd())).toBe(80_000);
    expect(new BudgetPolicy({ topUpTarget: 10 }).planTopUp('https://a.com', usd())).toBe(50_000);
  });

  it('a server minimum above maxTopUp is refused with the max_top_up rule', () => {
    const error = refusal(() => new BudgetPolicy({ maxTopUp: 40_000 }).planTopUp('https://a.com', usd()));
    expect(error.rule).toBe('max_top_up');
    expect(error.refusal).toMatchObject({ requested: 50_000, limit: 40_000 });
  });

  it('invalid limits are rejected when the policy is built', () => {
    expect(() => new BudgetPolicy({ maxTopUp: -1 })).toThrow(RangeError);
    expect(() => new BudgetPolicy({ maxPricePerRequest: 1.5 })).toThrow(RangeError);
    expect(() => new BudgetPolicy({ topUpMultiplier: 0.5 })).toThrow(RangeError);
    expect(() => new BudgetPolicy({ total: { perDay: { usd: Number.NaN } } })).toThrow(RangeError);
  });
});

describe('charge caps', () => {
  it('a per-origin hourly cap refuses the top-up that would cross it, and frees up an hour later', async () => {
    let now = 1_000_000;
    const policy = new BudgetPolicy({ perOrigin: { perHour: 100_000 }, total: {}, now: () => now });
    const first = await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    first.commit('pi_1');
    await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    const error = await asyncRefusal(() => policy.authorizeTopUp(details({ chargeMinor: 1 })));
    expect(error.rule).toBe('origin_hourly_cap');
    expect(error.refusal).toMatchObject({ requested: 1001, limit: 1000, measure: 'minor' });
    // Another origin has its own per-origin cap.
    await policy.authorizeTopUp(details({ origin: 'https://other.example.com', chargeMinor: 500 }));
    now += 60 * 60 * 1000 + 1;
    await expect(policy.authorizeTopUp(details({ chargeMinor: 500 }))).resolves.toBeDefined();
  });

  it('the total daily cap counts every origin together', async () => {
    const policy = new BudgetPolicy({ perOrigin: {}, total: { perDay: 150_000 } });
    await policy.authorizeTopUp(details({ origin: 'https://a.example.com', chargeMinor: 1000 }));
    const error = await asyncRefusal(() => policy.authorizeTopUp(details({ origin: 'https://b.example.com', chargeMinor: 1000 })));
    expect(error.rule).toBe('total_daily_cap');
  });

  it('the overall cap never frees up', async () => {
    let now = 0;
    const policy = new BudgetPolicy({ perOrigin: {}, total: { overall: 50_000 }, now: () => now });
    (await policy.authorizeTopUp(details({ chargeMinor: 500 }))).commit('pi_1');
    now += 365 * 24 * 60 * 60 * 1000;
    expect((await asyncRefusal(() => policy.authorizeTopUp(details({ chargeMinor: 1 })))).rule).toBe('total_overall_cap');
  });

  it('caps are per currency, in the currency smallest unit', async () => {
    // 1,000,000 units of jpy is 100 yen; of usd, 10,000 cents.
    const policy = new BudgetPolicy({ perOrigin: {}, total: { perDay: 1_000_000 } });
    await policy.authorizeTopUp(details({ currency: 'jpy', chargeMinor: 100 }));
    expect((await asyncRefusal(() => policy.authorizeTopUp(details({ currency: 'jpy', chargeMinor: 1 })))).rule).toBe('total_daily_cap');
    await expect(policy.authorizeTopUp(details({ currency: 'usd', chargeMinor: 10_000 }))).resolves.toBeDefined();
  });

  it('a released reservation stops counting, a committed one keeps counting', async () => {
    const policy = new BudgetPolicy({ perOrigin: {}, total: { perDay: 50_000 } });
    const reservation = await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    expect(policy.chargedMinor({ currency: 'usd' })).toBe(500);
    reservation.release();
    expect(policy.chargedMinor({ currency: 'usd' })).toBe(0);
    const charged = await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    charged.commit('pi_9');
    charged.release();
    expect(policy.charges()).toEqual([expect.objectContaining({ state: 'charged', chargeId: 'pi_9', minor: 500 })]);
  });

  it('the default caps allow two 5-dollar top-ups per origin per day and refuse a third', async () => {
    const policy = new BudgetPolicy();
    await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    expect((await asyncRefusal(() => policy.authorizeTopUp(details({ chargeMinor: 500 })))).rule).toBe('origin_daily_cap');
  });
});

describe('the approval hook', () => {
  it('is asked with the details and a refusal reserves nothing', async () => {
    const asked: TopUpDetails[] = [];
    const policy = new BudgetPolicy({
      perOrigin: {},
      total: {},
      approveTopUp: (d) => {
        asked.push(d);
        return d.chargeMinor <= 500;
      },
    });
    await policy.authorizeTopUp(details({ chargeMinor: 500 }));
    const error = await asyncRefusal(() => policy.authorizeTopUp(details({ chargeMinor: 600, topUpAmount: 60_000 })));
    expect(error.rule).toBe('approval_denied');
    expect(asked.map((d) => d.chargeMinor)).toEqual([500, 600]);
    expect(policy.chargedMinor({ currency: 'usd' })).toBe(500);
  });

  it('concurrent top-ups each see the other reserved while the hook is pending', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const policy = new BudgetPolicy({ perOrigin: {}, total: { perDay: 50_000 }, approveTopUp: async () => (await gate, true) });
    const first = policy.authorizeTopUp(details({ chargeMinor: 500 }));
    const second = asyncRefusal(() => policy.authorizeTopUp(details({ chargeMinor: 500 })));
    release();
    await first;
    expect((await second).rule).toBe('total_daily_cap');
  });
});
