/**
 * @stripe402/server: the framework-free stripe402 payment engine, the
 * Stripe gateway, rate limits, webhook and reconcile recovery, what every HTTP adapter
 * shares, and the Fetch-API handler. The ledgers live in
 * `@stripe402/server/ledger`; the framework adapters in @stripe402/hono,
 * @stripe402/express and @stripe402/fastify.
 *
 * @module @stripe402/server
 */
export { PaymentEngine, stripeIdempotencyKey, EXPOSED_HEADERS } from './engine.ts';
export type { EngineOptions, Decision, DecisionContext, Grant, Settlement, InternalErrorEvent } from './engine.ts';
export { compileRoutes, canonicalSegments, pathnameOf, chargeStep, RouteTable, RouteConfigError, STRIPE_MINIMUM_CHARGE, STRIPE_MAXIMUM_CHARGE } from './routes.ts';
export type { PaidRouteConfig, PaidRoute, Price, RouteMatch } from './routes.ts';
export { createStripeClient, StripeSdkGateway, METADATA_CLIENT_ID, METADATA_UNITS, METADATA_CURRENCY, METADATA_IDEMPOTENCY_KEY, METADATA_DEPLOYMENT } from './gateway.ts';
export type { StripeGateway, ChargeRequest, PaymentIntentView, PaymentMethodView, GatewayFailure, GatewayFailureKind, Outcome, StripeClientOptions } from './gateway.ts';
export { createPaywall, readBounded, PaywallConfigError, DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES } from './adapter.ts';
export type { Stripe402Options, Paywall, PaywallRoute } from './adapter.ts';
export { stripe402Fetch, type FetchHandler } from './fetch.ts';
export { RateLimiter, BucketMap, TrustedProxies, DEFAULT_RATE_LIMITS, UNKNOWN_SOURCE, sourceOf, networkOf, parseRateLimitSetting } from './limits.ts';
export type { RateLimitOptions, BucketOptions, Limited, LimitKind } from './limits.ts';
export { creditPaymentIntent, deploymentIdOf, handleWebhook, reconcile, parseSince } from './recovery.ts';
export type { CreditScope, ReconcileReport, WebhookResult, RecoveryOutcome } from './recovery.ts';
export { requireHttpsForPayments, proxyList } from './transport.ts';
export { jsonLogger, redact, scrub, silentLogger, type LogSink, type LogEntry } from './log.ts';
