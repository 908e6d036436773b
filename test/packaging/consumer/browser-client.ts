/**
 * The paying client's main entry builds without Node's types (lib DOM only):
 * it runs in browsers and Deno as well as Node.
 */
import { BudgetPolicy, Stripe402Client, withStripe402 } from '@stripe402/client';
import { decodePaymentRequiredHeader, type PaymentRequiredResponse } from '@stripe402/core';

export const paidFetch: typeof fetch = withStripe402(fetch, { paymentMethodId: 'pm_card_visa', budget: new BudgetPolicy({ maxPricePerRequest: 1_000 }) });
export const client = new Stripe402Client({ paymentMethodId: 'pm_card_visa' });
export function price(header: string): PaymentRequiredResponse | undefined {
  const decoded = decodePaymentRequiredHeader(header);
  return decoded.ok ? decoded.value : undefined;
}
