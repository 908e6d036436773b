/**
 * Public entry point of the Stripe emulator: a stateful, in-memory stand-in
 * for the parts of Stripe's API that stripe402 uses, reached over real HTTP
 * by the official SDK. See docs/stripe-backends.md.
 *
 * @module @stripe402/stripe-emulator
 */
export { startEmulator } from './server.ts';
export type { Emulator, EmulatorEvent, EmulatorOptions, EmulatorState } from './server.ts';
export { stripeClientForUrl } from './client.ts';
export { runEmulatorCli, EmulatorUsageError } from './cli.ts';
export type { EmulatorCliIo } from './cli.ts';
export type { ArmedFault, FaultController, FaultKind, FaultMatch, FaultRule } from './faults.ts';
export { FAULT_KINDS } from './faults.ts';
export type { WebhookConfig } from './webhooks.ts';
export { DEFAULT_ENABLED_EVENTS, signatureHeader } from './webhooks.ts';
export type { DeliveryAttempt } from './store.ts';
export { MAGIC_PAYMENT_METHOD_IDS } from './cards.ts';
export { cardFingerprint } from './ids.ts';
