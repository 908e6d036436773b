// Builds an official `stripe` SDK client for any Stripe-compatible base URL
// (this emulator, stripe-mock, or https://api.stripe.com), through the SDK's
// own host/port/protocol options, so every backend is reached the same way.
import Stripe from 'stripe';

/**
 * An SDK client for `baseUrl` (e.g. `http://127.0.0.1:12111` or
 * `https://api.stripe.com`). `config` is merged over the derived
 * host, port and protocol (timeouts, retries, ...).
 */
export function stripeClientForUrl(baseUrl: string, secretKey: string, config: Stripe.StripeConfig = {}): Stripe {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`Not a URL: ${baseUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`A Stripe API URL must be http or https: ${baseUrl}`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    // The SDK always requests /v1/... from the host root; a path prefix would be silently dropped.
    throw new TypeError(`A Stripe API URL cannot have a path (${url.pathname}); give the scheme, host and port only: ${baseUrl}`);
  }
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return new Stripe(secretKey, {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port || (protocol === 'http' ? 80 : 443),
    protocol,
    ...config,
  });
}
