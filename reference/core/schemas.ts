/**
 * The JSON Schemas of schemas/, loaded into one ajv 2020-12 instance and
 * compiled once at import. Every message check in the project goes through
 * these validators, so the schemas stay the single source of truth.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import balance from '../../schemas/balance.schema.json' with { type: 'json' };
import clientIdDerivation from '../../schemas/client-id-derivation.schema.json' with { type: 'json' };
import clientId from '../../schemas/client-id.schema.json' with { type: 'json' };
import conformanceReport from '../../schemas/conformance-report.schema.json' with { type: 'json' };
import currency from '../../schemas/currency.schema.json' with { type: 'json' };
import discovery from '../../schemas/discovery.schema.json' with { type: 'json' };
import errorCode from '../../schemas/error-code.schema.json' with { type: 'json' };
import paymentPayload from '../../schemas/payment-payload.schema.json' with { type: 'json' };
import paymentRequiredResponse from '../../schemas/payment-required-response.schema.json' with { type: 'json' };
import paymentRequirements from '../../schemas/payment-requirements.schema.json' with { type: 'json' };
import paymentResponse from '../../schemas/payment-response.schema.json' with { type: 'json' };
import resourceInfo from '../../schemas/resource-info.schema.json' with { type: 'json' };
import units from '../../schemas/units.schema.json' with { type: 'json' };
import type {
  ClientIdDerivation,
  ConformanceReport,
  DiscoveryDocument,
  PaymentPayload,
  PaymentRequiredResponse,
  PaymentResponse,
} from './types.generated.ts';

/** Every schema of the protocol, keyed by file name without `.schema.json`. */
export const SCHEMAS = {
  'balance': balance,
  'client-id-derivation': clientIdDerivation,
  'client-id': clientId,
  'conformance-report': conformanceReport,
  'currency': currency,
  'discovery': discovery,
  'error-code': errorCode,
  'payment-payload': paymentPayload,
  'payment-required-response': paymentRequiredResponse,
  'payment-requirements': paymentRequirements,
  'payment-response': paymentResponse,
  'resource-info': resourceInfo,
  'units': units,
} as const;

export type SchemaName = keyof typeof SCHEMAS;

// ajv-formats is CommonJS; its default export arrives as the module object under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

const ajv = new Ajv2020({ allErrors: false, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats(ajv);
for (const schema of Object.values(SCHEMAS)) ajv.addSchema(schema);

const compiled = new Map<SchemaName, ValidateFunction>();

/** The compiled validator of one schema (compiled on first use, then reused). */
export function validatorFor<T = unknown>(name: SchemaName): ValidateFunction<T> {
  let validate = compiled.get(name);
  if (!validate) {
    validate = ajv.getSchema(SCHEMAS[name].$id)!;
    compiled.set(name, validate);
  }
  return validate as ValidateFunction<T>;
}

/** A validation outcome with a short, client-safe explanation on failure. */
export type Validation<T> = { ok: true; value: T } | { ok: false; detail: string };

/** Validates a value against a named schema. */
export function validate<T = unknown>(name: SchemaName, value: unknown): Validation<T> {
  const check = validatorFor<T>(name);
  if (check(value)) return { ok: true, value };
  return { ok: false, detail: describe(check.errors ?? []) };
}

function describe(errors: ErrorObject[]): string {
  const first = errors[0];
  if (!first) return 'does not match the schema';
  const where = first.instancePath || '(root)';
  if (errors.some((e) => e.keyword === 'anyOf')) return 'needs paymentMethodId or clientId';
  return `${where} ${first.message ?? 'is invalid'}`;
}

/** Typed shortcuts for the message schemas. */
export const validatePaymentPayload = (v: unknown) => validate<PaymentPayload>('payment-payload', v);
export const validatePaymentRequired = (v: unknown) => validate<PaymentRequiredResponse>('payment-required-response', v);
export const validatePaymentResponse = (v: unknown) => validate<PaymentResponse>('payment-response', v);
export const validateDiscovery = (v: unknown) => validate<DiscoveryDocument>('discovery', v);
export const validateConformanceReport = (v: unknown) => validate<ConformanceReport>('conformance-report', v);
export const validateClientIdDerivation = (v: unknown) => validate<ClientIdDerivation>('client-id-derivation', v);
