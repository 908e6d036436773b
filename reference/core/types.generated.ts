/* eslint-disable */
/**
 * Types generated from schemas/ by scripts/gen-types.ts. Do not edit:
 * change the schema and run `npm run gen:types`.
 */

export type Balance = number;

export type ClientId = string;

export interface ClientIdDerivation {
  /**
   * The server's secret, used as the HMAC key after UTF-8 encoding. At least 32 bytes once encoded (CID-2).
   */
  serverSecret: string;
  /**
   * The PaymentMethod's card.fingerprint exactly as Stripe returns it, used as the HMAC message after UTF-8 encoding.
   */
  fingerprint: string;
  clientId: ClientId;
}

export interface ConformanceReport {
  tool: {
    name: string;
    version: string;
  };
  /**
   * The stripe402 wire version tested.
   */
  specVersion: 1;
  /**
   * The URL the suite was run against.
   */
  target: string;
  startedAt: string;
  durationMs: number;
  /**
   * The level requested.
   */
  level: "core" | "ledger" | "extensions" | "all";
  /**
   * What the target was judged by: spec (every check counts) or v1 (what stripe402 v1 promises plus the money and safety rules; spec-strict differences are reported apart and do not count). Absent means spec.
   */
  profile?: "spec" | "v1";
  /**
   * The highest level, counting in order core, ledger, extensions, whose every required check that counts under the profile ran and passed, or does not apply to the target (CONF-6). A level with a required check skipped as unverified, or not wholly selected by --only, is not reached.
   */
  levelReached: "none" | "core" | "ledger" | "extensions";
  /**
   * Ids of the required checks that count under the profile and were skipped as unverified (for want of cards, balance, prices, backend access or a tester option). Each keeps its level from being reached and makes the run exit 1.
   */
  unverified?: string[];
  /**
   * True when --only selected part of the requested levels: no level is claimed.
   */
  partial?: boolean;
  /**
   * The fast-check seed of the run; replays every property.
   */
  seed: number;
  /**
   * Whether SHOULD failures fail the run (--strict).
   */
  strict?: boolean;
  /**
   * Errors of the suite itself (a bug, or a Stripe backend that failed a query), as opposed to conformance failures of the target; the CLI exits 3 when there is one.
   */
  harnessErrors?: string[];
  summary: {
    passed: number;
    failed: number;
    skipped: number;
    /**
     * SHOULD checks that failed; they fail the run only with --strict.
     */
    nonStrict?: number;
    info?: number;
    /**
     * Required checks skipped as unverified (the length of unverified).
     */
    unverified?: number;
    /**
     * Skipped checks whose rule does not apply to the target.
     */
    notApplicable?: number;
    /**
     * Failed required checks that count under the profile: they fail the run.
     */
    defects?: number;
    /**
     * Under the v1 profile: failed checks of the strict category, reported apart and never counted as defects.
     */
    strictDifferences?: number;
  };
  checks: CheckResult[];
}

export interface CheckResult {
  /**
   * <section>/<slug>, stable.
   */
  id: string;
  section: string;
  title: string;
  level: "core" | "ledger" | "extensions";
  severity: "must" | "should" | "info";
  requirement: {
    id: string;
    text: string;
  };
  status: "passed" | "failed" | "skipped" | "info";
  /**
   * For a skipped check: unverified (the rule applies but the run could not verify it; its level is not reached) or not-applicable (the rule does not apply to this target, e.g. an extension it does not implement).
   */
  skipKind?: "unverified" | "not-applicable";
  /**
   * The check's class in the profile table: v1 (a promise of stripe402 v1), safety (protects money or safety whatever the version) or strict (this specification is stricter than v1). A strict check that failed on a 5xx answer is safety.
   */
  category?: "v1" | "safety" | "strict";
  durationMs: number;
  expected?: string;
  actual?: string;
  /**
   * Why the check was skipped, or what was observed for info.
   */
  reason?: string;
  /**
   * For a failed property: how to replay it.
   */
  property?: {
    seed?: number;
    path?: string;
    counterexample?: string;
    replay?: string;
  };
}

export type Currency = string;

export type Units = number;

export interface DiscoveryDocument {
  /**
   * The protocol version; always the integer 1.
   */
  stripe402Version: 1;
  /**
   * The server's Stripe publishable key.
   */
  publishableKey: string;
  /**
   * The paid routes.
   */
  routes: DiscoveryRoute[];
}

export interface DiscoveryRoute {
  /**
   * The HTTP method, upper case.
   */
  method: string;
  /**
   * The absolute path of the route; may hold :name parameters.
   */
  path: string;
  amount: Units;
  currency: Currency;
  minTopUp: Units;
  maxTopUp?: Units;
  description?: string;
}

export type ErrorCode =
  | "insufficient_credits"
  | "invalid_payment"
  | "unsupported_version"
  | "top_up_below_minimum"
  | "top_up_above_maximum"
  | "currency_not_accepted"
  | "card_declined"
  | "authentication_required"
  | "payment_failed"
  | "rate_limited"
  | "payment_required";

export interface PaymentPayload {
  /**
   * The protocol version; always the integer 1 (MSG-1).
   */
  stripe402Version: 1;
  /**
   * A Stripe PaymentMethod id to read the card fingerprint from and, when the balance is short, to charge.
   */
  paymentMethodId?: string;
  clientId?: ClientId;
  topUpAmount?: Units;
  /**
   * Extension: a client-chosen key that makes a top-up safe to retry (MSG-10, PROC-6).
   */
  idempotencyKey?: string;
  /**
   * Extension: resume a top-up after card authentication (AUTH-2).
   */
  paymentIntentId?: string;
  currency?: Currency;
}

export interface PaymentRequiredResponse {
  /**
   * The protocol version; always the integer 1.
   */
  stripe402Version: 1;
  resource: ResourceInfo;
  /**
   * The ways to pay, one or more; entries MAY differ by currency.
   *
   * @minItems 1
   */
  accepts: [PaymentRequirements, ...PaymentRequirements[]];
  error?: ErrorCode;
}

export interface ResourceInfo {
  /**
   * The URL, or the absolute path, of the requested resource.
   */
  url: string;
  /**
   * What the resource is, for humans.
   */
  description?: string;
  /**
   * The media type of a successful response.
   */
  mimeType?: string;
}

export interface PaymentRequirements {
  /**
   * The payment rail; always "stripe".
   */
  scheme: "stripe";
  currency: Currency;
  amount: Units;
  minTopUp: Units;
  maxTopUp?: Units;
  /**
   * The server's Stripe publishable key, with which a client tokenizes a card.
   */
  publishableKey: string;
  /**
   * What the charge is for, for humans.
   */
  description?: string;
}

export interface PaymentResponse {
  /**
   * Whether the request was paid for and served.
   */
  success: boolean;
  /**
   * The PaymentIntent this request credited, present exactly when this request credited one: a top-up it charged, or a resumed top-up (AUTH-2) whose first credit it made; absent when a webhook, recovery or an earlier request credited it (PROC-9).
   */
  chargeId?: string;
  /**
   * Extension: the amount of the charge named by chargeId, in the smallest unit of the currency (cents for usd, yen for jpy), as the server asked Stripe for it (UNIT-2); present only with chargeId. Lets a client count what was charged rather than what should have been (PROC-17).
   */
  chargeAmount?: number;
  creditsRemaining: Balance;
  /**
   * The client id to spend with from now on; the empty string when the server could not establish one (stripe402 v1 does the same, COMPAT-2).
   */
  clientId: string;
  /**
   * A message for humans; never internals (ERR-4).
   */
  error?: string;
  errorCode?: ErrorCode;
  /**
   * Extension: the PaymentIntent awaiting card authentication (AUTH-1).
   */
  paymentIntentId?: string;
  /**
   * Extension: where the card holder completes authentication (AUTH-1): the absolute URL the Stripe backend gave, unchanged; https from Stripe, http possible from a test backend on loopback.
   */
  nextActionUrl?: string;
  currency?: Currency;
}
