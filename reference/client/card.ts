/**
 * Card tokenization for clients that hold card data themselves (test cards,
 * agents given a card): the card goes straight to Stripe's API with the
 * resource server's publishable key, and only the resulting PaymentMethod id
 * ever reaches the resource server (spec section 13, PCI scope). A program
 * that handles raw card numbers is itself in PCI DSS scope; browsers should
 * use Stripe.js, and most agents should be given a PaymentMethod id instead.
 */
import { isLoopback } from './budget.ts';
import { CardTokenizationError } from './errors.ts';

/** Raw card data. Never logged, never sent anywhere but the Stripe API base URL. */
export interface CardDetails {
  /** The card number (PAN), digits only or with spaces. */
  number: string;
  /** Expiry month, 1 to 12. */
  expMonth: number;
  /** Expiry year, four digits. */
  expYear: number;
  /** The card verification code. */
  cvc?: string;
}

/** Reads card data written `NUMBER:MM:YYYY[:CVC]` (as STRIPE402_CARD holds it); undefined when it is not. */
export function parseCardText(text: string): CardDetails | undefined {
  const m = /^\s*([\d ]{12,23}):(\d{1,2}):(\d{2,4})(?::(\d{3,4}))?\s*$/.exec(text);
  if (!m) return undefined;
  const year = Number(m[3]);
  const card: CardDetails = { number: m[1]!.replace(/ /g, ''), expMonth: Number(m[2]), expYear: year < 100 ? 2000 + year : year };
  if (m[4]) card.cvc = m[4];
  return card;
}

/** The default Stripe API base URL. */
export const DEFAULT_STRIPE_API_BASE = 'https://api.stripe.com';

/**
 * Creates a card PaymentMethod with `POST /v1/payment_methods`, authenticated
 * with a publishable key (what Stripe.js does in a browser), and returns its
 * id (`pm_...`). Throws a `CardTokenizationError` carrying Stripe's error
 * code, never the card data.
 */
export async function createCardPaymentMethod(
  card: CardDetails,
  publishableKey: string,
  options: { stripeApiBase?: string; fetch?: typeof fetch } = {},
): Promise<string> {
  const base = new URL(options.stripeApiBase ?? DEFAULT_STRIPE_API_BASE);
  if (base.protocol !== 'https:' && !isLoopback(base)) {
    throw new CardTokenizationError(`refusing to send card data to ${base.origin} over plain http`);
  }
  const form = new URLSearchParams({
    'type': 'card',
    'card[number]': card.number.replace(/[\s-]/g, ''),
    'card[exp_month]': String(card.expMonth),
    'card[exp_year]': String(card.expYear),
  });
  if (card.cvc !== undefined) form.set('card[cvc]', card.cvc);
  const doFetch = options.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await doFetch(new URL('/v1/payment_methods', base), {
      method: 'POST',
      headers: { 'authorization': `Bearer ${publishableKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
  } catch (error) {
    throw new CardTokenizationError(`could not reach the Stripe API at ${base.origin}`, undefined, { cause: error });
  }
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    json = undefined;
  }
  const id = (json as { id?: unknown } | undefined)?.id;
  if (response.ok && typeof id === 'string' && /^pm_[A-Za-z0-9_]+$/.test(id)) return id;
  const code = (json as { error?: { code?: unknown; decline_code?: unknown } } | undefined)?.error;
  const reason = typeof code?.decline_code === 'string' ? code.decline_code : typeof code?.code === 'string' ? code.code : undefined;
  throw new CardTokenizationError(
    `Stripe did not create a PaymentMethod for the card (HTTP ${response.status}${reason ? `, ${reason}` : ''})`,
    response.status,
  );
}
