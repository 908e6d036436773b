/**
 * reference/server: the stripe402 payment engine, its Hono middleware, the
 * Stripe gateway, rate limits, webhook and reconcile recovery, and the standalone server
 * with the demo API. The ledgers live in ./ledger.
 */
export { PaymentEngine, stripeIdempotencyKey, EXPOSED_HEADERS } from './engine.ts';
export type { EngineOptions, Decision, DecisionContext, Grant, Settlement, InternalErrorEvent } from './engine.ts';
export { compileRoutes, canonicalSegments, pathnameOf, chargeStep, RouteTable, RouteConfigError, STRIPE_MINIMUM_CHARGE, STRIPE_MAXIMUM_CHARGE } from './routes.ts';
export type { PaidRouteConfig, PaidRoute, Price, RouteMatch } from './routes.ts';
export { createStripeClient, StripeSdkGateway, METADATA_CLIENT_ID, METADATA_UNITS, METADATA_CURRENCY, METADATA_IDEMPOTENCY_KEY, METADATA_DEPLOYMENT } from './gateway.ts';
export type { StripeGateway, ChargeRequest, PaymentIntentView, PaymentMethodView, GatewayFailure, GatewayFailureKind, Outcome, StripeClientOptions } from './gateway.ts';
export { RateLimiter, BucketMap, TrustedProxies, DEFAULT_RATE_LIMITS, UNKNOWN_SOURCE, sourceOf, networkOf, parseRateLimitSetting } from './limits.ts';
export type { RateLimitOptions, BucketOptions, Limited, LimitKind } from './limits.ts';
export { stripe402, DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_MAX_BYTES } from './middleware.ts';
export type { Stripe402MiddlewareOptions, Stripe402Variables } from './middleware.ts';
export { creditPaymentIntent, deploymentIdOf, handleWebhook, reconcile, parseSince } from './recovery.ts';
export type { CreditScope, ReconcileReport, WebhookResult, RecoveryOutcome } from './recovery.ts';
export { createDemoApp, requestLogger, DEMO_ROUTES } from './app.ts';
export type { DemoAppOptions } from './app.ts';
export { startServer, resolveServerSecret, secretWeakness, DEFAULT_PORT, DEFAULT_HOST } from './standalone.ts';
export type { ServerOptions, RunningServer } from './standalone.ts';
export { requireHttpsForPayments, proxyList } from './transport.ts';
export { jsonLogger, redact, scrub, silentLogger, type LogSink, type LogEntry } from './log.ts';
