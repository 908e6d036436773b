/**
 * reference/core: what every stripe402 implementation shares, with no I/O
 * and no framework: the types generated from schemas/, the header codec,
 * units, client-id derivation and the error classes.
 *
 * @module @stripe402/core
 */
export * from './types.generated.ts';
export * from './errors.ts';
export * from './codec.ts';
export * from './units.ts';
export * from './client-id.ts';
export { SCHEMAS, validate, validatorFor, type SchemaName, type Validation } from './schemas.ts';
export {
  validatePaymentPayload,
  validatePaymentRequired,
  validatePaymentResponse,
  validateDiscovery,
  validateConformanceReport,
} from './schemas.ts';
