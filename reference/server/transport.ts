/**
 * SEC-1 at request time, for a server with a live key behind a reverse
 * proxy: a `payment` header (a bearer credential) is taken only from a
 * connection that is either local (loopback) or from a configured proxy
 * that says it received the request over HTTPS (`X-Forwarded-Proto:
 * https`). Anything else, a client that found the server's own port or a
 * proxy that forwards plain HTTP, is refused before the payment is read,
 * so the mistake shows up at once instead of leaking client ids. Proxies
 * are addresses or CIDR blocks, matched with Node's `net.BlockList`.
 */
import { BlockList, isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { HEADER_PAYMENT } from '@stripe402/core';

/** A `net.BlockList` of proxy addresses and CIDR blocks; throws on an entry that is neither. */
export function proxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) throw new Error(`--trusted-proxy ${entry}: expected an IP address or a CIDR block`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(address!, type);
    } else {
      const prefix = Number(bits);
      if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`--trusted-proxy ${entry}: bad prefix length`);
      list.addSubnet(address!, prefix, type);
    }
  }
  return list;
}

function remoteAddressOf(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Refuses `payment` headers that did not travel over HTTPS (SEC-1), per the rule in the module comment. */
export function requireHttpsForPayments(trustedProxies: readonly string[]): MiddlewareHandler {
  const proxies = proxyList(trustedProxies);
  return async function stripe402RequireHttps(c, next) {
    if (c.req.header(HEADER_PAYMENT) === undefined) return next();
    const remote = remoteAddressOf(c);
    const plain = remote === undefined ? null : remote.startsWith('::ffff:') ? remote.slice(7) : remote;
    const fromProxy = plain !== null && proxies.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4');
    const secure = fromProxy ? /^https$/i.test((c.req.header('x-forwarded-proto') ?? '').split(',')[0]!.trim()) : plain !== null && isLoopbackAddress(plain);
    if (secure) return next();
    return c.json(
      {
        error: 'https_required',
        message: 'payment headers are accepted over HTTPS only: send this request to the https:// address of this server',
      },
      403,
      { 'cache-control': 'no-store' },
    );
  };
}
