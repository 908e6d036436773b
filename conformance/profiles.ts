/**
 * Profiles: what a run judges a target by. The `spec` profile (the default)
 * counts every check. The `v1` profile (`--profile v1`, Section 14.4) judges a
 * server by what deployed stripe402 v1 promises (Section 15.1) plus the rules
 * that protect money and safety whatever the version; where this
 * specification is stricter than v1 (most rows of Table 15.2, and the
 * extensions v1 does not have), a failure is reported as a spec-strict
 * difference, never as a defect, and does not change the exit code or the
 * level. Every check id is classified here, in this one table; a test keeps
 * the table and the registry equal.
 */
import type { CheckResult } from '@stripe402/core';

/** The profiles `--profile` accepts. */
export const PROFILES = ['spec', 'v1'] as const;
export type Profile = (typeof PROFILES)[number];

/**
 * - `v1`: a promise stripe402 v1 makes (Section 15.1): a failure is a defect under every profile.
 * - `safety`: a rule that protects money or safety whatever the version (paywall scope, charges once,
 *   credited when charged, no overdraft, no 5xx or internals on bad input, correct minor units, the
 *   spend restored when the handler fails): a defect under every profile.
 * - `strict`: where this specification is stricter than deployed v1, or an extension v1 lacks: a defect
 *   under the `spec` profile, a spec-strict difference under `v1`.
 */
export type Category = 'v1' | 'safety' | 'strict';

/** The category of every check id. */
export const CHECK_CATEGORIES: Readonly<Record<string, Category>> = Object.freeze({
  // 3. Encoding: v1 emits standard base64 and answers a success with payment-response; its decoding is lax,
  // it sets no Cache-Control and no CORS headers, and its error 402s carry no payment headers (Table 15.2).
  '3/challenge-header-is-standard-base64': 'v1',
  '3/challenge-body-equals-header': 'v1',
  '3/challenge-not-stored': 'strict',
  '3/cors-exposes-payment-headers': 'strict',
  '3/cors-preflight-is-free': 'strict',
  '3/header-names-any-case': 'v1',
  '3/payment-response-on-success': 'v1',
  '3/payment-response-on-error': 'strict',
  '3/payment-response-on-undecodable-header': 'strict',
  '3/payment-response-not-shared-cacheable': 'strict',
  '3/rejects-oversized-header': 'strict',
  '3/rejects-repeated-header': 'strict',
  '3/rejects-stray-characters': 'strict',
  '3/rejects-interior-whitespace': 'strict',
  '3/rejects-data-after-padding': 'strict',
  '3/rejects-impossible-length': 'strict',
  '3/rejects-mixed-alphabets': 'strict',
  '3/rejects-invalid-utf8': 'strict',
  '3/rejects-non-object-json': 'strict',
  '3/accepts-unpadded-and-trimmed': 'strict',
  '3/duplicate-member-rejected-or-last-wins': 'strict',
  '3/duplicate-member-rejected': 'strict',
  '3/base64url-handling': 'strict',
  // 4. Messages: the shapes are v1's; type checks of members, the version check and the currency
  // extension are this specification's.
  '4/challenge-is-payment-required-response': 'v1',
  '4/requirements-one-per-currency': 'v1',
  '4/min-top-up-covers-amount': 'v1',
  '4/rejects-other-version': 'strict',
  '4/rejects-version-not-integer': 'strict',
  '4/rejects-fractional-top-up': 'strict',
  '4/rejects-top-up-of-wrong-type': 'strict',
  '4/rejects-top-up-out-of-range': 'strict',
  '4/rejects-payload-without-ids': 'strict',
  '4/rejects-malformed-members': 'strict',
  '4/ignores-unknown-members': 'v1',
  '4/top-up-defaults-to-min-top-up': 'v1',
  '4/rejects-currency-not-offered': 'strict',
  '4/rejects-malformed-idempotency-key': 'strict',
  '4/resource-url-names-resource': 'v1',
  '4/payment-responses-are-valid': 'v1',
  // 5. Units: the credit and the charge in minor units protect money; metadata, steps, maxTopUp are new.
  '5/credit-is-exactly-top-up': 'v1',
  '5/charge-rounds-up': 'safety',
  '5/top-up-metadata-names-client-and-units': 'strict',
  '5/advertised-top-ups-respect-charge-step': 'strict',
  '5/min-top-up-meets-stripe-minimum': 'strict',
  '5/advertises-max-top-up': 'strict',
  '5/balance-belongs-to-one-currency': 'safety',
  '5/every-offered-currency-charged': 'safety',
  // 6. Client identity: the derivation is v1's; the format check of a sent clientId is new.
  '6/client-id-is-64-hex': 'v1',
  '6/same-card-same-client-id': 'v1',
  '6/different-cards-different-client-ids': 'v1',
  '6/client-id-is-hmac-of-fingerprint': 'v1',
  '6/rejects-malformed-client-id': 'strict',
  '6/unknown-client-id-indistinguishable': 'v1',
  '6/rejects-unknown-payment-method': 'strict',
  // 7. Paywall scope protects the resource whatever the version.
  '7/trailing-slash-not-served': 'safety',
  '7/letter-case-not-served': 'safety',
  '7/repeated-slashes-not-served': 'safety',
  '7/percent-encoding-not-served': 'safety',
  '7/dot-segments-not-served': 'safety',
  '7/ignored-suffix-not-served': 'safety',
  '7/mount-prefix-not-served': 'safety',
  '7/head-not-served': 'safety',
  '7/method-override-not-served': 'safety',
  '7/unpaid-path-does-not-spend': 'safety',
  // 8. Processing: v1's processing order; charging once and restoring a failed handler's spend protect money.
  '8/unpaid-request-gets-challenge': 'v1',
  '8/top-up-charges-and-serves': 'v1',
  '8/spend-deducts-amount': 'v1',
  '8/client-id-spend-never-charges': 'v1',
  '8/insufficient-credits': 'v1',
  '8/covered-card-does-not-charge': 'v1',
  '8/rejects-top-up-below-minimum': 'v1',
  '8/rejects-top-up-above-maximum': 'strict',
  '8/concurrent-top-ups-charge-once': 'safety',
  '8/idempotency-key-charges-once': 'strict',
  '8/replayed-spend-header-spends-once-per-request': 'safety',
  '8/replayed-top-up-header-charges-once': 'safety',
  '8/handler-failure-restores-credit': 'safety',
  '8/model-balances': 'v1',
  '8/invalid-payload-charges-nothing': 'strict',
  '8/card-errors-are-card-declined': 'v1',
  '8/charge-amount-reported': 'strict',
  // 9. Card authentication is an extension v1 does not have.
  '9/authentication-required-state': 'strict',
  '9/resume-credits-once': 'strict',
  '9/rejects-foreign-payment-intent': 'strict',
  '9/without-extension-ignores-payment-intent': 'v1',
  // 10. Errors: 402 for every payment error is v1's; both headers and the closed set are new; internals
  // in messages and 5xx on bad input are safety.
  '10/payment-errors-are-402': 'v1',
  '10/error-402-carries-both-headers': 'strict',
  '10/error-codes-from-closed-set': 'strict',
  '10/error-messages-carry-no-internals': 'safety',
  '10/invalid-input-never-served': 'strict',
  '10/error-names-the-card-client-id': 'strict',
  '10/declined-card-credits-nothing': 'safety',
  // 11. Ledger: no overdraft and money conservation, whatever the version.
  '11/concurrent-spends-never-overdraw': 'safety',
  '11/money-is-conserved': 'safety',
  '11/payment-intent-credited-once': 'safety',
  // 12. Discovery is an extension v1 does not have.
  '12/discovery-document-validates': 'strict',
  '12/listed-routes-answer-matching-challenge': 'strict',
  '12/discovery-reveals-nothing': 'strict',
  '13/https-outside-loopback': 'v1',
  // 13. Rate limits and their rate_limited answer are this specification's; that limiting never charges or
  // loses credit protects money whatever the version.
  '13/unknown-client-ids-limited': 'strict',
  '13/limited-answer-well-formed': 'strict',
  '13/limited-request-changes-nothing': 'safety',
  '15/v1-payload-shapes-served': 'v1',
  '15/no-extension-member-required': 'v1',
});

/** The category of a check id; throws for an id the table does not classify (a test keeps that from shipping). */
export function categoryOf(id: string): Category {
  const category = CHECK_CATEGORIES[id];
  if (category === undefined) throw new Error(`check ${id} has no category in conformance/profiles.ts`);
  return category;
}

/**
 * The paywall checks whose safety is that the variant is not served: the
 * answer they demand (the challenge, or 405 for HEAD, PAY-1 and PAY-2) is
 * this specification's, and any other answer that is not a success gives
 * nothing away.
 */
const NOT_SERVED = new Set(
  Object.keys(CHECK_CATEGORIES).filter((id) => id.startsWith('7/') && id.endsWith('-not-served')),
);

/**
 * The category a result counts under. A 5xx answer is a safety defect
 * whatever the version (no 5xx on bad input), so a strict check that failed
 * because the target answered 5xx counts as safety; a paywall variant that
 * was refused with another status than the one the spec asks (a 404 for
 * HEAD) served nothing, so that failure is a spec-strict difference.
 */
export function resultCategory(result: Pick<CheckResult, 'id' | 'status' | 'actual'>): Category {
  // A check the table does not classify yet counts under every profile: never let a new check's failure pass unseen.
  // (A test keeps the table complete; this keeps a run going in between.)
  const category = CHECK_CATEGORIES[result.id] ?? 'safety';
  if (result.status !== 'failed') return category;
  const actual = result.actual ?? '';
  if (category === 'strict' && /\bHTTP 5\d\d\b/.test(actual)) return 'safety';
  if (NOT_SERVED.has(result.id) && /^HTTP \d{3}\b/.test(actual) && !/\bHTTP 2\d\d\b/.test(actual)) return 'strict';
  return category;
}

/** Whether a result's verdict counts under a profile (a failure is a defect, a skip keeps its level unverified). */
export function counts(profile: Profile, category: Category): boolean {
  return profile === 'spec' || category !== 'strict';
}

/** Whether a check's verdict binds: a MUST, or a SHOULD in strict mode. */
export function required(check: CheckResult, strict: boolean): boolean {
  return check.severity === 'must' || (strict && check.severity === 'should');
}

/** Whether a result counts under the profile (every result under `spec`; all but the strict category under `v1`). */
export function counted(check: CheckResult, profile: Profile): boolean {
  return profile === 'spec' || counts(profile, check.category ?? resultCategory(check));
}

/** A failed required check that counts under the profile: a defect. */
export function isDefect(check: CheckResult, profile: Profile, strict: boolean): boolean {
  return check.status === 'failed' && required(check, strict) && counted(check, profile);
}

/** A required check that counts under the profile and was skipped without being inapplicable. */
export function isUnverified(check: CheckResult, profile: Profile, strict: boolean): boolean {
  return check.status === 'skipped' && check.skipKind !== 'not-applicable' && required(check, strict) && counted(check, profile);
}
