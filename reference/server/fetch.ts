/**
 * The paywall as a Fetch-API handler, `(Request) => Promise<Response>`, for
 * every runtime that speaks `Request` and `Response`: Next.js route
 * handlers, Bun.serve, Deno.serve, Cloudflare Workers and Node with any
 * Fetch server. It wraps the app's own handler: a paid request that may be
 * served reaches the handler with its body unread, and the handler's
 * response leaves with the `payment-response` header (ENC-15). The same
 * options and behaviour as the framework adapters.
 */
import { HEADER_PAYMENT } from '@stripe402/core';
import { createPaywall, readBounded, type Stripe402Options } from './adapter.ts';
import { pathnameOf } from './routes.ts';

/** A Fetch-API handler: what Next.js route handlers, Bun, Deno and Workers call. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

/**
 * Puts the paywall in front of `handler`. Build it once, at module load:
 * the options are checked here, so a misconfiguration fails at start-up.
 *
 *   export const GET = stripe402Fetch({ engine }, () => Response.json({ joke }));
 */
export function stripe402Fetch(options: Stripe402Options, handler: FetchHandler): (request: Request) => Promise<Response> {
  const paywall = createPaywall(options, 'fetch');
  if (typeof handler !== 'function') throw new TypeError('stripe402 (fetch): the second argument must be the handler, (request) => Response');
  const { engine } = paywall;

  return async function stripe402FetchPaywall(request: Request): Promise<Response> {
    const method = request.method;
    const route = paywall.route(method, pathnameOf(request.url));
    if (route.kind === 'discovery') {
      const { status, headers, body } = paywall.discovery;
      return new Response(method === 'HEAD' ? null : body, { status, headers });
    }
    if (route.kind === 'webhook') {
      const body = await readBounded(request.body, request.headers.get('content-length'), paywall.webhookMaxBytes);
      if (body === undefined) {
        const { status, headers, body: answer } = paywall.webhookTooLarge;
        return new Response(answer, { status, headers });
      }
      const result = await paywall.webhook(body, request.headers.get('stripe-signature'));
      return Response.json(result.body, { status: result.status });
    }
    if (route.kind === 'free') return handler(request);

    const decision = await engine.handle(route.match, request.headers.get(HEADER_PAYMENT));
    if (decision.kind === 'respond') {
      return new Response(method === 'HEAD' ? null : decision.body, { status: decision.status, headers: decision.headers });
    }
    let response: Response;
    try {
      response = await handler(request);
    } catch (error) {
      // The handler failed: the request is settled as a server error (its credit comes back), then the error goes on.
      await engine.settle(decision.grant, 500);
      throw error;
    }
    const settlement = await engine.settle(decision.grant, response.status);
    return withHeaders(response, settlement.headers);
  };
}

/** The response with these headers set, replacing the handler's (a fetched response's headers are immutable: copy it). */
function withHeaders(response: Response, headers: Record<string, string>): Response {
  try {
    for (const name in headers) response.headers.set(name, headers[name]!);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    for (const name in headers) copy.headers.set(name, headers[name]!);
    return copy;
  }
}
