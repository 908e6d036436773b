/**
 * @stripe402/hono: the stripe402 paywall as Hono middleware. Register it
 * once, at the app level, before the routes: `app.use(stripe402({ engine }))`.
 *
 * @module @stripe402/hono
 */
export { stripe402, DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES, EXPOSED_HEADERS } from './middleware.ts';
export type { Stripe402MiddlewareOptions, Stripe402Variables } from './middleware.ts';
