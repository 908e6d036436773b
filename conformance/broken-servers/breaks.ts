/**
 * The catalogue of deliberate bugs the fixture server (server.ts) can carry,
 * one rule each: what the bug is, the requirement it violates, and the
 * conformance check ids that must report `failed` when the suite runs
 * against it. It is data so that the server, broken.test.ts and table.ts
 * share one list; a check id that no break fails must be named in
 * UNBREAKABLE with the reason, or broken.test.ts fails.
 */

export interface BreakInfo {
  /** One line: what the broken server does wrong. */
  description: string;
  /** The requirement ids (spec/) the bug violates. */
  requirements: readonly string[];
  /** Conformance check ids that must report `failed` against this break. */
  checks: readonly string[];
  /** Further checks to run with them: late checks judge the traffic other checks make. */
  alsoRun?: readonly string[];
  /** The run takes long (it spends a whole balance one request at a time): the proof starts it early. */
  slow?: boolean;
}

export const BREAKS = {
  // ---- section 3: headers and encoding
  'challenge-header-unpadded': {
    description: 'the payment-required header is base64 without its = padding',
    requirements: ['ENC-2'],
    checks: ['3/challenge-header-is-standard-base64'],
  },
  'challenge-body-differs-from-header': {
    description: 'the 402 JSON body advertises twice the amount of the payment-required header',
    requirements: ['ENC-10'],
    checks: ['3/challenge-body-equals-header'],
  },
  'no-cache-control-no-store': {
    description: 'neither 402s nor paid responses carry Cache-Control: no-store',
    requirements: ['ENC-11', 'ENC-15'],
    checks: ['3/challenge-not-stored', '3/payment-response-not-shared-cacheable'],
    alsoRun: ['3/payment-response-on-success'],
  },
  'payment-response-cacheable': {
    description: 'a served paid response carries payment-response but no Cache-Control',
    requirements: ['ENC-15'],
    checks: ['3/payment-response-not-shared-cacheable'],
    alsoRun: ['3/payment-response-on-success'],
  },
  'no-cors-expose-headers': {
    description: 'cross-origin responses allow the origin but do not expose payment-required and payment-response',
    requirements: ['ENC-12'],
    checks: ['3/cors-exposes-payment-headers'],
  },
  'cors-preflight-needs-payment': {
    description: 'a CORS preflight (OPTIONS) for the paid route is answered with the 402 challenge',
    requirements: ['ENC-14'],
    checks: ['3/cors-preflight-is-free'],
  },
  'payment-header-case-sensitive': {
    description: 'recognises the payment header only when its field name is spelled in lower case',
    requirements: ['ENC-1'],
    checks: ['3/header-names-any-case'],
  },
  'no-payment-response-on-success': {
    description: 'a request served from the balance gets no payment-response header (only top-ups do)',
    requirements: ['ENC-13', 'PROC-9'],
    checks: ['3/payment-response-on-success'],
  },
  'error-402-without-payment-response': {
    description: 'payment errors (402 with error) omit the payment-response header',
    requirements: ['ENC-13', 'ERR-2'],
    checks: ['3/payment-response-on-error', '3/payment-response-on-undecodable-header', '10/error-402-carries-both-headers'],
  },
  'accepts-oversize-header': {
    description: 'accepts a payment header longer than 4096 characters',
    requirements: ['ENC-8'],
    checks: ['3/rejects-oversized-header'],
  },
  'accepts-duplicate-payment-header': {
    description: 'accepts a payment header sent twice by using the first value',
    requirements: ['ENC-9'],
    checks: ['3/rejects-repeated-header'],
  },
  'accepts-junk-base64': {
    description: "decodes the payment header with Node's lenient Buffer base64: stray characters, whitespace, data after padding, extra padding and base64url letters all pass",
    requirements: ['ENC-5', 'ERR-6'],
    checks: [
      '3/rejects-stray-characters',
      '3/rejects-interior-whitespace',
      '3/rejects-data-after-padding',
      '3/rejects-impossible-length',
      '3/rejects-mixed-alphabets',
      '10/invalid-input-never-served',
    ],
  },
  'accepts-invalid-utf8': {
    description: 'decodes the payment header bytes with a non-fatal UTF-8 decoder (invalid bytes become U+FFFD)',
    requirements: ['ENC-6'],
    checks: ['3/rejects-invalid-utf8'],
  },
  'unwraps-non-object-json': {
    description: 'accepts a payload wrapped in a JSON array or a JSON string',
    requirements: ['ENC-7'],
    checks: ['3/rejects-non-object-json'],
  },
  'five-hundred-on-null-payload': {
    description: 'reads the payment header as v1 does: non-object JSON gets the plain challenge, and JSON null throws, answering 500 with the stack trace',
    requirements: ['ENC-7', 'ERR-4', 'ERR-6'],
    checks: ['3/rejects-non-object-json', '10/error-messages-carry-no-internals'],
  },
  'accepts-duplicate-members': {
    description: 'reads a payload with two members of one name (JSON.parse keeps the last) instead of rejecting it (a SHOULD)',
    requirements: ['ENC-16'],
    checks: ['3/duplicate-member-rejected'],
  },
  'duplicate-member-first-wins': {
    description: 'reads a payload with two members of one name by the first of them',
    requirements: ['ENC-16'],
    checks: ['3/duplicate-member-rejected-or-last-wins'],
  },
  'requires-padding': {
    description: 'rejects an unpadded payment header as invalid_payment',
    requirements: ['ENC-3'],
    checks: ['3/accepts-unpadded-and-trimmed'],
  },

  // ---- section 4: messages
  'challenge-missing-resource': {
    description: 'the challenge has no resource member',
    requirements: ['MSG-4'],
    checks: ['4/challenge-is-payment-required-response'],
  },
  'duplicate-currency-entries': {
    description: 'the challenge lists two accepts entries in usd',
    requirements: ['MSG-6'],
    checks: ['4/requirements-one-per-currency'],
  },
  'min-top-up-below-amount': {
    description: 'advertises minTopUp 50 for a request costing 100 units',
    requirements: ['MSG-7'],
    checks: ['4/min-top-up-covers-amount'],
  },
  'no-version-check': {
    description: 'accepts stripe402Version 2 (or 0) as if it were 1',
    requirements: ['MSG-1'],
    checks: ['4/rejects-other-version'],
  },
  'loose-version-equality': {
    description: 'compares stripe402Version with == 1, so "1" and true pass',
    requirements: ['MSG-1'],
    checks: ['4/rejects-version-not-integer'],
  },
  'accepts-float-top-up': {
    description: 'accepts a fractional topUpAmount and truncates it',
    requirements: ['MSG-3'],
    checks: ['4/rejects-fractional-top-up'],
  },
  'charges-fractional-top-up': {
    description: 'does not check that topUpAmount is an integer: a covered card spends, and a card whose balance is short is charged the rounded-up amount and never credited (payment_failed)',
    requirements: ['MSG-3', 'PROC-2'],
    checks: ['4/rejects-fractional-top-up', '8/invalid-payload-charges-nothing'],
  },
  'resource-url-elsewhere': {
    description: 'the challenge\'s resource.url names another resource (/api)',
    requirements: ['MSG-5'],
    checks: ['4/resource-url-names-resource'],
  },
  'coerces-top-up-amount': {
    description: 'converts a topUpAmount that is not a number with Number()',
    requirements: ['MSG-3'],
    checks: ['4/rejects-top-up-of-wrong-type'],
  },
  'accepts-out-of-range-top-up': {
    description: 'checks only that topUpAmount is an integer: 0, negatives and 2^53 pass',
    requirements: ['MSG-3'],
    checks: ['4/rejects-top-up-out-of-range'],
  },
  'no-ids-treated-as-unpaid': {
    description: 'a payload with neither paymentMethodId nor clientId gets the plain challenge, not invalid_payment',
    requirements: ['MSG-8'],
    checks: ['4/rejects-payload-without-ids'],
  },
  'drops-malformed-members': {
    description: 'drops optional payload members of the wrong type or format instead of rejecting the payload',
    requirements: ['MSG-15', 'MSG-10'],
    checks: ['4/rejects-malformed-members', '4/rejects-malformed-idempotency-key'],
  },
  'rejects-unknown-fields': {
    description: 'rejects a payload with an unknown member instead of ignoring it',
    requirements: ['MSG-2'],
    checks: ['4/ignores-unknown-members'],
  },
  'default-top-up-is-max': {
    description: 'a top-up without topUpAmount buys maxTopUp instead of minTopUp',
    requirements: ['MSG-9'],
    checks: ['4/top-up-defaults-to-min-top-up'],
  },
  'ignores-currency': {
    description: 'a payload currency the route does not offer is served in the first currency',
    requirements: ['MSG-11'],
    checks: ['4/rejects-currency-not-offered'],
  },
  'error-response-without-error-code': {
    description: 'error payment-responses say success false but carry no errorCode',
    requirements: ['MSG-12'],
    checks: ['4/payment-responses-are-valid'],
    alsoRun: ['3/payment-response-on-error'],
  },
  'requires-top-up-amount': {
    description: 'refuses a paymentMethodId without topUpAmount, as deployed v1 clients send it',
    requirements: ['COMPAT-1', 'MSG-9'],
    checks: ['15/v1-payload-shapes-served'],
  },
  'requires-idempotency-key': {
    description: 'refuses a top-up that needs a charge unless the payload carries an idempotencyKey, a member v1 does not define',
    requirements: ['COMPAT-3'],
    checks: ['15/no-extension-member-required'],
  },

  // ---- section 5: units and currencies
  'credits-wrong-amount': {
    description: 'credits topUpAmount - 1 units instead of topUpAmount',
    requirements: ['UNIT-4'],
    checks: ['5/credit-is-exactly-top-up'],
  },
  'rounds-charge-down': {
    description: 'charges floor(units / 100) cents instead of rounding up',
    requirements: ['UNIT-2', 'LEDG-5'],
    checks: ['5/charge-rounds-up', '11/money-is-conserved'],
    alsoRun: ['5/credit-is-exactly-top-up'],
  },
  'metadata-units-in-cents': {
    description: 'writes the charge in cents, not the units bought, as metadata stripe402_units',
    requirements: ['PROC-14'],
    checks: ['5/top-up-metadata-names-client-and-units'],
    alsoRun: ['8/top-up-charges-and-serves'],
  },
  'charges-first-currency': {
    description: 'charges a top-up in any offered currency in the first one (usd): a eur top-up is charged in cents of usd',
    requirements: ['UNIT-3', 'UNIT-2'],
    checks: ['5/every-offered-currency-charged', '5/charge-rounds-up'],
  },
  'min-top-up-off-charge-step': {
    description: 'offers kwd with a minTopUp of 50,010 units, which charges 5,001 fils (kwd charges in steps of 10)',
    requirements: ['UNIT-7'],
    checks: ['5/advertised-top-ups-respect-charge-step'],
  },
  'min-top-up-below-stripe-minimum': {
    description: 'advertises a minTopUp of 1,000 units, a 10-cent charge, below Stripe\'s 50-cent minimum (a SHOULD)',
    requirements: ['UNIT-6'],
    checks: ['5/min-top-up-meets-stripe-minimum'],
  },
  'no-max-top-up': {
    description: 'advertises no maxTopUp (a SHOULD)',
    requirements: ['UNIT-8'],
    checks: ['5/advertises-max-top-up'],
  },
  'balance-shared-across-currencies': {
    description: 'keeps one balance per client id: usd credit pays for eur requests',
    requirements: ['UNIT-5'],
    checks: ['5/balance-belongs-to-one-currency'],
    slow: true,
  },

  // ---- section 6: client identity
  'client-id-key-and-message-swapped': {
    description: 'derives the client id as HMAC(key = fingerprint, message = secret)',
    requirements: ['CID-1'],
    checks: ['6/client-id-is-hmac-of-fingerprint'],
  },
  'client-id-per-payment': {
    description: 'derives the client id from a value that changes with every payment, not from the card fingerprint',
    requirements: ['CID-1'],
    checks: ['6/same-card-same-client-id'],
  },
  'one-client-id-for-all-cards': {
    description: 'derives the client id from the card\'s country, so different cards share one id',
    requirements: ['CID-1'],
    checks: ['6/different-cards-different-client-ids'],
  },
  'client-id-upper-case': {
    description: 'hands out client ids in upper-case hex',
    requirements: ['CID-1', 'MSG-12'],
    checks: ['6/client-id-is-64-hex', '4/payment-responses-are-valid'],
  },
  'client-id-too-short': {
    description: 'hands out client ids of 32 hex characters (the HMAC cut to 128 bits)',
    requirements: ['CID-1', 'MSG-12'],
    checks: ['6/client-id-is-64-hex', '4/payment-responses-are-valid'],
  },
  'accepts-malformed-client-id': {
    description: 'repairs a malformed clientId (upper case, short, spaces, not hex) instead of rejecting it',
    requirements: ['CID-3'],
    checks: ['6/rejects-malformed-client-id'],
  },
  'unknown-client-distinguishable': {
    description: 'an unknown client id is told "unknown client" with an empty clientId, unlike a known empty balance',
    requirements: ['CID-4'],
    checks: ['6/unknown-client-id-indistinguishable'],
  },
  'unknown-payment-method-declined': {
    description: 'a PaymentMethod id the backend does not know is answered card_declined, not invalid_payment',
    requirements: ['CID-6'],
    checks: ['6/rejects-unknown-payment-method'],
  },

  // ---- section 7: the paywall
  'trailing-slash-bypass': {
    description: 'serves /api/joke/ (trailing slash) without payment',
    requirements: ['PAY-1'],
    checks: ['7/trailing-slash-not-served'],
  },
  'case-bypass': {
    description: 'serves /API/JOKE (another letter case) without payment',
    requirements: ['PAY-1'],
    checks: ['7/letter-case-not-served'],
  },
  'duplicate-slash-bypass': {
    description: 'serves //api/joke (repeated slashes) without payment',
    requirements: ['PAY-1'],
    checks: ['7/repeated-slashes-not-served'],
  },
  'percent-encoding-bypass': {
    description: 'serves /api/%6Aoke (percent-encoded path) without payment',
    requirements: ['PAY-1'],
    checks: ['7/percent-encoding-not-served'],
  },
  'dot-segment-bypass': {
    description: 'serves /api/./joke (dot segments) without payment',
    requirements: ['PAY-1'],
    checks: ['7/dot-segments-not-served'],
  },
  'query-string-bypass': {
    description: 'serves /api/joke?x=1 (an added query) without payment',
    requirements: ['PAY-1'],
    checks: ['7/ignored-suffix-not-served'],
  },
  'mount-prefix-bypass': {
    description: 'serves /v1/api/joke (the handler under a mount prefix) without payment',
    requirements: ['PAY-3'],
    checks: ['7/mount-prefix-not-served'],
  },
  'head-bypass': {
    description: 'serves HEAD /api/joke without payment',
    requirements: ['PAY-2'],
    checks: ['7/head-not-served'],
  },
  'method-override-bypass': {
    description: 'serves POST with X-HTTP-Method-Override: GET without payment',
    requirements: ['PAY-2'],
    checks: ['7/method-override-not-served'],
  },
  'spends-on-unknown-path': {
    description: 'a payment header on a path that is no paid resource spends from the balance (answering 404)',
    requirements: ['PAY-4'],
    checks: ['7/unpaid-path-does-not-spend'],
  },

  // ---- section 8: processing
  'challenge-carries-error': {
    description: 'the first challenge, to a request without payment, already carries an error member',
    requirements: ['PROC-1'],
    checks: ['8/unpaid-request-gets-challenge'],
  },
  'no-charge-id-on-charge': {
    description: 'a request that charged the card gets no chargeId',
    requirements: ['PROC-8', 'PROC-9', 'LEDG-5'],
    checks: ['8/top-up-charges-and-serves', '11/money-is-conserved'],
  },
  'charge-id-on-spend': {
    description: 'a request that only spent the balance carries the client\'s last chargeId',
    requirements: ['PROC-3', 'PROC-9'],
    checks: ['8/spend-deducts-amount', '8/model-balances'],
  },
  'reports-balance-before-spend': {
    description: 'payment-response reports the balance before this request\'s deduction',
    requirements: ['PROC-9'],
    checks: ['8/top-up-charges-and-serves', '8/model-balances'],
  },
  'reports-balance-read-late': {
    description: 'payment-response reports the balance read again after the handler, not the value its own deduction left',
    requirements: ['PROC-9'],
    checks: ['8/concurrent-top-ups-charge-once'],
  },
  'no-charge-amount': {
    description: 'reports chargeId without chargeAmount (a SHOULD)',
    requirements: ['PROC-17'],
    checks: ['8/charge-amount-reported'],
    alsoRun: ['8/top-up-charges-and-serves'],
  },
  'charges-when-card-given-with-client-id': {
    description: 'a payload with a covering clientId and a paymentMethodId is charged instead of spending',
    requirements: ['PROC-3'],
    checks: ['8/client-id-spend-never-charges'],
  },
  'legacy-error-code': {
    description: 'a short balance is answered with the legacy v1 code payment_required, not insufficient_credits',
    requirements: ['PROC-3', 'ERR-3'],
    checks: ['8/insufficient-credits', '10/error-codes-from-closed-set'],
  },
  'charges-when-balance-covers': {
    description: 'charges a top-up for a PaymentMethod whose balance already covers the request',
    requirements: ['PROC-4', 'PROC-11'],
    checks: ['8/covered-card-does-not-charge', '8/replayed-top-up-header-charges-once'],
  },
  'no-minimum-top-up-check': {
    description: 'charges a topUpAmount below minTopUp (top_up_below_minimum not enforced)',
    requirements: ['PROC-5'],
    checks: ['8/rejects-top-up-below-minimum'],
  },
  'no-maximum-top-up-check': {
    description: 'charges a topUpAmount above maxTopUp (top_up_above_maximum not enforced)',
    requirements: ['PROC-5'],
    checks: ['8/rejects-top-up-above-maximum'],
  },
  'double-charge-on-concurrent-top-ups': {
    description: 'does not serialize top-ups per client: concurrent top-ups each charge',
    requirements: ['PROC-7'],
    checks: ['8/concurrent-top-ups-charge-once'],
  },
  'double-charge-with-v1-error-bodies': {
    description: 'answers errors as v1 does (no payment-response, a PaymentResponse body) and does not serialize top-ups: concurrent top-ups each charge',
    requirements: ['PROC-7'],
    checks: ['8/concurrent-top-ups-charge-once'],
  },
  'card-errors-are-payment-failed': {
    description: 'answers a card error other than a generic decline (expired card, incorrect CVC) with payment_failed',
    requirements: ['PROC-15'],
    checks: ['8/card-errors-are-card-declined'],
  },
  'ignores-idempotency-key': {
    description: 'ignores the payload idempotencyKey: a repeated top-up charges again',
    requirements: ['PROC-6', 'PROC-12'],
    checks: ['8/idempotency-key-charges-once'],
  },
  'replay-served-free': {
    description: 'serves a repeated spend header as a retry, without spending again',
    requirements: ['PROC-11'],
    checks: ['8/replayed-spend-header-spends-once-per-request'],
  },
  'no-restore-on-5xx': {
    description: 'keeps the deducted credits when the handler answers 5xx',
    requirements: ['PROC-10'],
    checks: ['8/handler-failure-restores-credit'],
  },

  // ---- section 9: card authentication
  'authentication-without-payment-intent-id': {
    description: 'answers authentication_required without the paymentIntentId the client needs to resume',
    requirements: ['AUTH-1'],
    checks: ['9/authentication-required-state'],
  },
  'authentication-without-next-action-url': {
    description: 'answers authentication_required without the nextActionUrl Stripe gave for the card holder to authenticate',
    requirements: ['AUTH-1'],
    checks: ['9/authentication-required-state'],
  },
  'resume-credits-twice': {
    description: 'a resumed PaymentIntent is credited again on every retry that names it',
    requirements: ['AUTH-2', 'LEDG-4'],
    checks: ['9/resume-credits-once', '11/payment-intent-credited-once'],
  },
  'resume-skips-metadata-check': {
    description: 'resumes any succeeded PaymentIntent, even one charged for another client',
    requirements: ['AUTH-3'],
    checks: ['9/rejects-foreign-payment-intent'],
    alsoRun: ['8/top-up-charges-and-serves'],
  },
  'without-authentication-refuses-payment-intent': {
    description: 'does not implement card authentication (payment_failed for requires_action) and refuses a payload with paymentIntentId instead of ignoring it',
    requirements: ['AUTH-4'],
    checks: ['9/without-extension-ignores-payment-intent'],
  },

  // ---- section 10: errors
  'payment-errors-not-402': {
    description: 'answers invalid_payment with HTTP 400 instead of 402',
    requirements: ['ERR-1'],
    checks: ['10/payment-errors-are-402'],
    alsoRun: ['3/payment-response-on-undecodable-header'],
  },
  'error-402-without-payment-required': {
    description: 'payment errors (402 with error) omit the payment-required header',
    requirements: ['ERR-2'],
    checks: ['10/error-402-carries-both-headers'],
    alsoRun: ['3/payment-response-on-error'],
  },
  'error-names-payload-client-id': {
    description: "an error after the card is read names the payload's clientId and its balance, not the card's client id",
    requirements: ['ERR-2'],
    checks: ['10/error-names-the-card-client-id'],
  },
  'leaks-internals': {
    description: 'error messages carry a stack trace',
    requirements: ['ERR-4'],
    checks: ['10/error-messages-carry-no-internals'],
    alsoRun: ['3/payment-response-on-error'],
  },
  'leaks-stripe-error-text': {
    description: 'error messages carry Stripe\'s own error text with its request id (req_...)',
    requirements: ['ERR-4'],
    checks: ['10/error-messages-carry-no-internals'],
    alsoRun: ['6/rejects-unknown-payment-method'],
  },
  'leaks-database-error-text': {
    description: 'an insufficient_credits message carries the text of a Redis error, a malformed payload\'s the text of a PostgreSQL error',
    requirements: ['ERR-4'],
    checks: ['10/error-messages-carry-no-internals'],
    alsoRun: ['3/payment-response-on-error'],
  },
  'leaks-runtime-error-text': {
    description: 'an invalid_payment message carries Go runtime error text (strconv.ParseInt: parsing ...)',
    requirements: ['ERR-4'],
    checks: ['10/error-messages-carry-no-internals'],
    alsoRun: ['4/rejects-top-up-of-wrong-type'],
  },
  'five-hundred-on-invalid-input': {
    description: 'JSON.parse of a junk payment header throws and the server answers 500',
    requirements: ['ERR-6'],
    checks: ['10/invalid-input-never-served'],
  },
  'declined-card-credits-anyway': {
    description: 'credits the top-up and serves even when the card is declined',
    requirements: ['ERR-7'],
    checks: ['10/declined-card-credits-nothing'],
  },

  // ---- rate limits (section 10.7)
  'rate-limited-as-429': {
    description: 'refuses a source presenting too many unknown client ids with a bare 429 and Retry-After',
    requirements: ['ERR-10'],
    checks: ['13/limited-answer-well-formed'],
  },
  'rate-limited-after-spend': {
    description: 'checks the rate limit after the spend: a limited spend of a funded client id loses its credits',
    requirements: ['ERR-11'],
    checks: ['13/limited-request-changes-nothing'],
  },

  // ---- section 11: the ledger
  'overdraft-under-concurrency': {
    description: 'reads the balance, awaits, then writes: concurrent spends overdraw',
    requirements: ['LEDG-1'],
    checks: ['11/concurrent-spends-never-overdraw'],
  },

  // ---- section 12: discovery
  'discovery-document-invalid': {
    description: 'the discovery document has stripe402Version "1" (a string) and no publishableKey',
    requirements: ['DISC-1'],
    checks: ['12/discovery-document-validates'],
  },
  'discovery-leaks-secret': {
    description: 'the discovery document shows the Stripe secret key in a route description',
    requirements: ['DISC-3'],
    checks: ['12/discovery-reveals-nothing'],
  },
  'discovery-price-differs': {
    description: 'the discovery document lists twice the price the challenge asks',
    requirements: ['DISC-2'],
    checks: ['12/listed-routes-answer-matching-challenge'],
  },
} as const satisfies Record<string, BreakInfo>;

export type BreakName = keyof typeof BREAKS;

/** A deliberate departure that the spec allows, and the only checks it may fail (none for a conforming variant). */
export interface VariantInfo {
  description: string;
  /** The requirements that allow it. */
  requirements: readonly string[];
  /** The checks the variant must fail, and no others: a rule the variant breaks on purpose, judged by its own check. */
  failsOnly: readonly string[];
}

/**
 * Servers the suite must not fail (beyond `failsOnly`): the fixture with a
 * behaviour the spec allows or that deployed stripe402 v1 servers have, each
 * a false failure the suite once reported. broken.test.ts runs each at level
 * all and asserts that exactly `failsOnly` fails.
 */
export const VARIANTS = {
  'no-card-authentication': {
    description: 'does not implement card authentication: requires_action is canceled and answered payment_failed, and paymentIntentId is ignored (AUTH-4)',
    requirements: ['AUTH-4', 'CONF-5'],
    failsOnly: [],
  },
  'v1-error-bodies': {
    description: 'answers errors as stripe402 v1 does: insufficient_credits with the challenge and no payment-response, other errors with neither header and a PaymentResponse body with clientId ""',
    requirements: ['COMPAT-4'],
    failsOnly: [
      '3/payment-response-on-error',
      '3/payment-response-on-undecodable-header',
      '10/error-402-carries-both-headers',
      '10/error-names-the-card-client-id',
    ],
  },
  'webhook-credits-first': {
    description: 'credits a PaymentIntent that completes authentication as soon as it sees it succeeded, before the paying request resumes (as a webhook would); the resume then reports no chargeId (LEDG-4, PROC-9)',
    requirements: ['LEDG-4', 'PROC-9'],
    failsOnly: [],
  },
} as const satisfies Record<string, VariantInfo>;

export type VariantName = keyof typeof VARIANTS;

/**
 * Checks the correct fixture cannot run, each with the reason: it implements
 * every extension, and these judge servers without one. A conforming
 * variant runs them instead.
 */
export const NOT_FOR_THE_CORRECT_SERVER: Readonly<Record<string, string>> = {
  '9/without-extension-ignores-payment-intent': 'AUTH-4 binds servers without card authentication: the no-card-authentication variant runs it',
};

/**
 * Check ids that no break of the fixture can make fail, each with the
 * reason. broken.test.ts fails when a check is neither broken nor listed.
 */
export const UNBREAKABLE: Readonly<Record<string, string>> = {
  '3/base64url-handling': 'an info check: ENC-4 lets a server accept or reject base64url, so both answers pass and it reports what it saw',
  '13/https-outside-loopback': 'an info check: it reports whether the target uses HTTPS; on loopback plain HTTP is allowed',
  '13/unknown-client-ids-limited': 'an info check: SEC-3 sets no threshold, so it reports whether the target limited a source presenting unknown client ids, and how it answered',
};
