// Stripe's test-mode cards: the card numbers Stripe documents, what each
// does when charged (succeed, decline with a given code, require 3-D Secure),
// the magic PaymentMethod ids (`pm_card_visa`, ...) and tokens (`tok_visa`,
// ...) that stand for them, and card-number validation as Stripe reports it.
import { cardError } from './errors.ts';

export type CardBehaviour =
  | { kind: 'succeed' }
  | {
      kind: 'decline';
      code: string;
      declineCode: string;
      message: string;
      /** Stripe validates a card when it is attached to a Customer; most declining cards fail there too. */
      failsOnAttach: boolean;
      /** Blocked by Radar rather than declined by the issuer (changes the charge outcome). */
      blocked?: boolean;
    }
  | {
      kind: 'authenticate';
      /** False for cards that skip authentication once set up for future use (off-session still fails here). */
      always: boolean;
    };

export interface TestCard {
  number: string;
  brand: 'visa' | 'mastercard' | 'amex' | 'discover' | 'diners' | 'jcb' | 'unionpay';
  funding: 'credit' | 'debit' | 'prepaid';
  behaviour: CardBehaviour;
}

const SUCCEED: CardBehaviour = { kind: 'succeed' };

const DECLINED = 'Your card was declined.';

function decline(code: string, declineCode: string, message: string, failsOnAttach = true, blocked = false): CardBehaviour {
  return { kind: 'decline', code, declineCode, message, failsOnAttach, ...(blocked ? { blocked } : {}) };
}

const CARDS: TestCard[] = [
  { number: '4242424242424242', brand: 'visa', funding: 'credit', behaviour: SUCCEED },
  { number: '4000056655665556', brand: 'visa', funding: 'debit', behaviour: SUCCEED },
  { number: '4000000000000077', brand: 'visa', funding: 'credit', behaviour: SUCCEED },
  { number: '5555555555554444', brand: 'mastercard', funding: 'credit', behaviour: SUCCEED },
  { number: '2223003122003222', brand: 'mastercard', funding: 'credit', behaviour: SUCCEED },
  { number: '5200828282828210', brand: 'mastercard', funding: 'debit', behaviour: SUCCEED },
  { number: '5105105105105100', brand: 'mastercard', funding: 'prepaid', behaviour: SUCCEED },
  { number: '378282246310005', brand: 'amex', funding: 'credit', behaviour: SUCCEED },
  { number: '371449635398431', brand: 'amex', funding: 'credit', behaviour: SUCCEED },
  { number: '6011111111111117', brand: 'discover', funding: 'credit', behaviour: SUCCEED },
  { number: '6011000990139424', brand: 'discover', funding: 'credit', behaviour: SUCCEED },
  { number: '3056930009020004', brand: 'diners', funding: 'credit', behaviour: SUCCEED },
  { number: '36227206271667', brand: 'diners', funding: 'credit', behaviour: SUCCEED },
  { number: '3566002020360505', brand: 'jcb', funding: 'credit', behaviour: SUCCEED },
  { number: '6200000000000005', brand: 'unionpay', funding: 'credit', behaviour: SUCCEED },
  { number: '4000000000000002', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'generic_decline', DECLINED) },
  { number: '4000000000009995', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'insufficient_funds', 'Your card has insufficient funds.') },
  { number: '4000000000009987', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'lost_card', DECLINED) },
  { number: '4000000000009979', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'stolen_card', DECLINED) },
  { number: '4000000000000069', brand: 'visa', funding: 'credit', behaviour: decline('expired_card', 'expired_card', 'Your card has expired.') },
  { number: '4000000000000127', brand: 'visa', funding: 'credit', behaviour: decline('incorrect_cvc', 'incorrect_cvc', "Your card's security code is incorrect.") },
  { number: '4000000000000119', brand: 'visa', funding: 'credit', behaviour: decline('processing_error', 'processing_error', 'An error occurred while processing your card. Try again in a little bit.') },
  { number: '4100000000000019', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'fraudulent', DECLINED, true, true) },
  { number: '4000000000000341', brand: 'visa', funding: 'credit', behaviour: decline('card_declined', 'generic_decline', DECLINED, false) },
  { number: '4000002500003155', brand: 'visa', funding: 'credit', behaviour: { kind: 'authenticate', always: false } },
  { number: '4000002760003184', brand: 'visa', funding: 'credit', behaviour: { kind: 'authenticate', always: true } },
  { number: '4000000000003220', brand: 'visa', funding: 'credit', behaviour: { kind: 'authenticate', always: true } },
  { number: '4000000000003063', brand: 'visa', funding: 'credit', behaviour: { kind: 'authenticate', always: true } },
];

const BY_NUMBER = new Map(CARDS.map((card) => [card.number, card]));

/** Names shared by the magic PaymentMethod ids (`pm_card_<name>`) and tokens (`tok_<name>`). */
const MAGIC_NAMES: Record<string, string> = {
  visa: '4242424242424242',
  visa_debit: '4000056655665556',
  mastercard: '5555555555554444',
  mastercard_debit: '5200828282828210',
  mastercard_prepaid: '5105105105105100',
  amex: '378282246310005',
  discover: '6011111111111117',
  diners: '3056930009020004',
  jcb: '3566002020360505',
  unionpay: '6200000000000005',
  chargeDeclined: '4000000000000002',
  chargeDeclinedInsufficientFunds: '4000000000009995',
  chargeDeclinedLostCard: '4000000000009987',
  chargeDeclinedStolenCard: '4000000000009979',
  chargeDeclinedExpiredCard: '4000000000000069',
  chargeDeclinedIncorrectCvc: '4000000000000127',
  chargeDeclinedProcessingError: '4000000000000119',
  chargeDeclinedFraudulent: '4100000000000019',
  radarBlock: '4100000000000019',
  chargeCustomerFail: '4000000000000341',
  authenticationRequired: '4000002760003184',
  threeDSecure2Required: '4000000000003220',
  threeDSecureRequired: '4000000000003063',
  authenticationRequiredOnSetup: '4000002500003155',
};

export const MAGIC_PAYMENT_METHOD_IDS: readonly string[] = Object.keys(MAGIC_NAMES).map((name) => `pm_card_${name}`);

export function testCard(number: string): TestCard | undefined {
  return BY_NUMBER.get(number);
}

/** The card number behind a magic PaymentMethod id such as `pm_card_visa`. */
export function magicPaymentMethodNumber(id: string): string | undefined {
  return id.startsWith('pm_card_') ? MAGIC_NAMES[id.slice('pm_card_'.length)] : undefined;
}

/** The card number behind a test token such as `tok_visa`. */
export function testTokenNumber(token: string): string | undefined {
  return token.startsWith('tok_') ? MAGIC_NAMES[token.slice('tok_'.length)] : undefined;
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/**
 * Resolves a raw card number to a test card, failing as Stripe does in test
 * mode: malformed numbers are `invalid_number`, numbers failing the Luhn
 * check are `incorrect_number`, and real (non-test) cards are declined.
 */
export function resolveCardNumber(raw: string): TestCard {
  const number = raw.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(number)) {
    throw cardError({ code: 'invalid_number', message: 'Your card number is incorrect.', param: 'number' });
  }
  if (!luhnValid(number)) {
    throw cardError({ code: 'incorrect_number', message: 'Your card number is incorrect.', param: 'number' });
  }
  const card = BY_NUMBER.get(number);
  if (!card) {
    throw cardError({
      code: 'card_declined',
      declineCode: 'live_mode_test_card',
      message:
        'Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.',
    });
  }
  return card;
}

export const DISPLAY_BRAND: Record<TestCard['brand'], string> = {
  visa: 'visa',
  mastercard: 'mastercard',
  amex: 'american_express',
  discover: 'discover',
  diners: 'diners_club',
  jcb: 'jcb',
  unionpay: 'union_pay',
};
