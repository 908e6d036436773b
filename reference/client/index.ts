/**
 * @stripe402/client: a `fetch` that pays stripe402 challenges within a
 * budget (`withStripe402`, `Stripe402Client`), its budget policy, the
 * in-memory client-id store, card tokenization and typed errors. Runs
 * wherever `fetch` does (Node 20.19+, browsers, Deno, Bun); the file store
 * is Node only, in `@stripe402/client/node`.
 *
 * @module @stripe402/client
 */
export { Stripe402Client, withStripe402, newIdempotencyKey, describeCode, type Stripe402FetchOptions, type PaymentEvent } from './fetch.ts';
export {
  BudgetPolicy,
  originMatches,
  isLoopback,
  limitFor,
  topUpChargeMinor,
  DEFAULT_MAX_PRICE_PER_REQUEST,
  DEFAULT_MAX_TOP_UP,
  DEFAULT_PER_ORIGIN_CAPS,
  DEFAULT_TOTAL_CAPS,
  type BudgetOptions,
  type ChargeCaps,
  type ChargeRecord,
  type OriginPattern,
  type Reservation,
  type TopUpDetails,
  type UnitsLimit,
} from './budget.ts';
export { MemoryClientIdStore, type ClientIdStore } from './store.ts';
export { createCardPaymentMethod, parseCardText, DEFAULT_STRIPE_API_BASE, type CardDetails } from './card.ts';
export { budgetFromJson, parseUnitsLimit, BudgetConfigError } from './budget-config.ts';
export { bufferRequest, toInit, DEFAULT_MAX_BODY_BYTES, type ReplayableRequest } from './request.ts';
export { redactClientId, redactPaymentMethodId, formatMinor, formatUnits } from './format.ts';
export * from './errors.ts';
