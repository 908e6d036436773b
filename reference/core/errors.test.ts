/**
 * The error classes and codes (spec section 10): the codes are exactly the
 * schema's closed set, and a HeaderDecodeError carries its code, its
 * client-safe detail and the class hierarchy callers test with instanceof.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import errorCodeSchema from '../../schemas/error-code.schema.json' with { type: 'json' };
import { ERROR_CODES, ErrorCodes, HeaderDecodeError, Stripe402Error, isErrorCode } from './errors.ts';
import { validate } from './schemas.ts';

describe('the error codes', () => {
  it('are the enum of error-code.schema.json, in its order', () => {
    expect(ERROR_CODES).toEqual(errorCodeSchema.enum);
  });

  it('are each their own named constant', () => {
    expect(Object.keys(ErrorCodes)).toEqual(ERROR_CODES);
    for (const code of ERROR_CODES) expect(ErrorCodes[code]).toBe(code);
  });

  it('are recognised by isErrorCode exactly when the schema accepts the value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...ERROR_CODES), fc.string(), fc.jsonValue({ maxDepth: 0 })), (value) => {
        expect(isErrorCode(value)).toBe(validate('error-code', value).ok);
      }),
    );
  });

  it('cannot be changed at run time', () => {
    expect(Object.isFrozen(ERROR_CODES)).toBe(true);
    expect(Object.isFrozen(ErrorCodes)).toBe(true);
  });
});

describe('HeaderDecodeError', () => {
  it('carries its code and detail, its class name, and is a Stripe402Error', () => {
    const error = new HeaderDecodeError('unsupported_version', 'stripe402Version 2 is not supported');
    expect(error).toBeInstanceOf(HeaderDecodeError);
    expect(error).toBeInstanceOf(Stripe402Error);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('HeaderDecodeError');
    expect(error.code).toBe('unsupported_version');
    expect(error.detail).toBe('stripe402Version 2 is not supported');
    expect(error.message).toBe(error.detail);
  });
});

describe('Stripe402Error', () => {
  it('keeps the cause it was given, and names itself after the subclass', () => {
    class LedgerDown extends Stripe402Error {}
    const cause = new Error('connection refused');
    const error = new LedgerDown('payment_failed', 'try again later', { cause });
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('LedgerDown');
    expect(error.message).not.toContain('connection refused');
  });
});
