/**
 * The rate limiter's parts on their own: token buckets on a clock the test
 * moves, the bounded number of keys, and which address a request counts
 * against behind proxies (trusted or not) and for IPv6.
 */
import { describe, expect, it } from 'vitest';
import { BucketMap, networkOf, parseRateLimitSetting, RateLimiter, sourceOf, TrustedProxies, UNKNOWN_SOURCE } from './limits.ts';

function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('a token bucket', () => {
  it('allows the burst, then one more per refill interval, and says how long to wait', () => {
    const time = clock();
    const buckets = new BucketMap({ burst: 3, perMinute: 6 }, 10, time.now);
    expect([1, 2, 3, 4].map(() => buckets.take('a'))).toEqual([true, true, true, false]);
    expect(buckets.retryAfter('a')).toBe(10);
    time.advance(9_999);
    expect(buckets.take('a')).toBe(false);
    time.advance(1);
    expect(buckets.take('a')).toBe(true);
    expect(buckets.take('b')).toBe(true);
  });

  it('never holds more than the burst, however long it rests', () => {
    const time = clock();
    const buckets = new BucketMap({ burst: 2, perMinute: 60 }, 10, time.now);
    buckets.take('a');
    time.advance(3_600_000);
    expect([1, 2, 3].map(() => buckets.take('a'))).toEqual([true, true, false]);
  });

  it('gives a token back without exceeding the burst', () => {
    const buckets = new BucketMap({ burst: 1, perMinute: 1 }, 10, clock().now);
    expect(buckets.take('a')).toBe(true);
    buckets.give('a');
    buckets.give('a');
    expect(buckets.take('a')).toBe(true);
    expect(buckets.take('a')).toBe(false);
  });

  it('forgets the least recently seen key when it holds the maximum', () => {
    const buckets = new BucketMap({ burst: 1, perMinute: 1 }, 2, clock().now);
    buckets.take('a');
    buckets.take('b');
    buckets.take('c');
    // 'a' was forgotten, so it starts full again; 'c' is still empty.
    expect(buckets.take('a')).toBe(true);
    expect(buckets.take('c')).toBe(false);
  });

  it('refuses a budget that is not a positive burst and rate', () => {
    expect(() => new BucketMap({ burst: 0, perMinute: 1 })).toThrow(RangeError);
    expect(() => new BucketMap({ burst: 1, perMinute: 0 })).toThrow(RangeError);
    expect(() => new BucketMap({ burst: 1.5, perMinute: 1 })).toThrow(RangeError);
  });
});

describe('the rate limiter', () => {
  it('gives back the charge attempts of a request that ended paid, so paying never uses the budget up', () => {
    const limiter = new RateLimiter({ chargeAttemptsPerSource: { burst: 1, perMinute: 1 }, chargeAttemptsPerCard: { burst: 1, perMinute: 1 } }, clock().now);
    for (let i = 0; i < 5; i++) {
      expect(limiter.startAttempt('s')).toBeNull();
      expect(limiter.startCardAttempt('card')).toBeNull();
      limiter.attemptPaid('s', 'card');
    }
    expect(limiter.startAttempt('s')).toBeNull();
    expect(limiter.startAttempt('s')).toMatchObject({ kind: 'charge_attempts_source', retryAfterSeconds: 60 });
  });

  it('counts unpaid client ids only when they did not pay, and checks before', () => {
    const limiter = new RateLimiter({ unpaidClientIds: { burst: 2, perMinute: 1 } }, clock().now);
    expect(limiter.unpaidAllowed('s')).toBeNull();
    limiter.unpaidSeen('s');
    limiter.unpaidSeen('s');
    expect(limiter.unpaidAllowed('s')).toMatchObject({ kind: 'unpaid_client_ids' });
    expect(limiter.unpaidAllowed('t')).toBeNull();
  });

  it('limits nothing when turned off', () => {
    const limiter = new RateLimiter(false);
    for (let i = 0; i < 1_000; i++) {
      expect(limiter.startAttempt('s')).toBeNull();
      expect(limiter.stripeCall()).toBeNull();
      limiter.unpaidSeen('s');
    }
    expect(limiter.unpaidAllowed('s')).toBeNull();
  });
});

describe('the source of a request', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '::1']);

  it('is the peer address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(sourceOf('192.0.2.1', '203.0.113.5', undefined)).toBe('192.0.2.1');
    expect(sourceOf('192.0.2.1', '203.0.113.5', trusted)).toBe('192.0.2.1');
  });

  it('is the rightmost untrusted X-Forwarded-For entry behind trusted proxies', () => {
    expect(sourceOf('10.1.2.3', '198.51.100.1, 203.0.113.5, 10.9.9.9', trusted)).toBe('203.0.113.5');
    expect(sourceOf('::1', '203.0.113.5:4711', trusted)).toBe('203.0.113.5');
    expect(sourceOf('::ffff:10.0.0.1', '203.0.113.6', trusted)).toBe('203.0.113.6');
  });

  it('stops at an entry that is not an address, keeping the last trusted hop', () => {
    expect(sourceOf('10.1.2.3', 'junk, 10.2.2.2', trusted)).toBe('10.2.2.2');
    expect(sourceOf('10.1.2.3', 'not-an-address', trusted)).toBe('10.1.2.3');
  });

  it('counts IPv6 by its /64 network and IPv4-mapped addresses as IPv4', () => {
    expect(networkOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(networkOf('::ffff:192.0.2.9')).toBe('192.0.2.9');
    expect(sourceOf('2001:db8:1:2::5', null, undefined)).toBe(sourceOf('2001:db8:1:2::6', null, undefined));
  });

  it('is one shared key when the adapter knows no peer', () => {
    expect(sourceOf(undefined, '203.0.113.5', trusted)).toBe(UNKNOWN_SOURCE);
  });

  it('refuses a trusted proxy that is not an address or block', () => {
    expect(() => new TrustedProxies(['proxy.example'])).toThrow(RangeError);
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow(RangeError);
  });
});

describe('a rate-limit setting on the command line', () => {
  it('sets one budget by name, or turns it off, keeping the others', () => {
    const one = parseRateLimitSetting('charge-attempts-per-source=5/30');
    expect(one).toEqual({ chargeAttemptsPerSource: { burst: 5, perMinute: 30 } });
    expect(parseRateLimitSetting('stripe-calls=off', one)).toEqual({ chargeAttemptsPerSource: { burst: 5, perMinute: 30 }, stripeCalls: false });
  });

  it('refuses unknown names, missing rates and zero bursts with a message naming the valid budgets', () => {
    for (const bad of ['stripe=5/5', 'stripe-calls=5', 'stripe-calls=0/5', 'unpaid-client-ids=on', '']) {
      expect(() => parseRateLimitSetting(bad), bad).toThrow(RangeError);
    }
    expect(() => parseRateLimitSetting('nope=1/1')).toThrow(/unpaid-client-ids, charge-attempts-per-source, charge-attempts-per-card, stripe-calls/);
  });
});
