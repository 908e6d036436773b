/**
 * The error classes of stripe402 (spec section 10). Wire error codes come
 * from schemas/error-code.schema.json, so `ErrorCode` is a closed union and
 * every error carries one; messages are for humans and never carry internals.
 */
import errorCodeSchema from '../../schemas/error-code.schema.json' with { type: 'json' };
import type { ErrorCode } from './types.generated.ts';

export type { ErrorCode };

/** Every wire error code, in the order of the schema's enum. */
export const ERROR_CODES = Object.freeze([...errorCodeSchema.enum]) as readonly ErrorCode[];

/** The error codes as named constants: `ErrorCodes.invalid_payment === 'invalid_payment'`. */
export const ErrorCodes = Object.freeze(
  Object.fromEntries(ERROR_CODES.map((code) => [code, code])),
) as { readonly [K in ErrorCode]: K };

/** Whether a value is one of the wire error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** The base of every stripe402 error: a wire `code` and a human message. */
export class Stripe402Error extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A header that could not be decoded or validated: `invalid_payment` or
 * `unsupported_version` (ENC-5 to ENC-9, MSG-1 to MSG-12). `detail` says
 * which rule failed, in words safe to show a client.
 */
export class HeaderDecodeError extends Stripe402Error {
  constructor(
    code: 'invalid_payment' | 'unsupported_version',
    readonly detail: string,
  ) {
    super(code, detail);
  }
}
