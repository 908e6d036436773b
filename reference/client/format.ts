/**
 * Human-readable money and redaction for messages, logs and the CLI. Client
 * ids and PaymentMethod ids are bearer-ish secrets (spec section 13): they
 * are shown only redacted. Amounts are formatted with exact integer
 * arithmetic, never floats.
 */
import { currencyExponent, UNITS_PER_MAJOR } from '@stripe402/core';

/** A client id shortened for logs: its first 6 characters and an ellipsis. */
export function redactClientId(clientId: string | undefined): string {
  if (!clientId) return '(none)';
  return `${clientId.slice(0, 6)}…`;
}

/** A PaymentMethod id shortened for logs: its prefix and last 4 characters. */
export function redactPaymentMethodId(id: string | undefined): string {
  if (!id) return '(none)';
  return id.length > 10 ? `pm_…${id.slice(-4)}` : 'pm_…';
}

/** An amount in the currency's smallest unit as major units: `formatMinor(500, 'usd')` is `5.00 USD`. */
export function formatMinor(minor: number, currency: string): string {
  return `${decimal(BigInt(minor), currencyExponent(currency))} ${currency.toUpperCase()}`;
}

/** An amount in units as major units, trailing zeros trimmed: `formatUnits(100, 'usd')` is `0.01 USD`. */
export function formatUnits(units: number, currency: string): string {
  const text = decimal(BigInt(units), Math.log10(UNITS_PER_MAJOR)).replace(/\.?0+$/, '');
  return `${text} ${currency.toUpperCase()}`;
}

function decimal(value: bigint, exponent: number): string {
  if (exponent === 0) return value.toString();
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(exponent + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}
