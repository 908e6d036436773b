// The emulator's Stripe API over real HTTP through the official SDK: keys,
// PaymentMethods and test cards, Customers, PaymentIntents (success,
// declines, 3-D Secure), parameter validation, lists, searches, expansion
// and refunds, checked the way a stripe402 server would meet them.
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from './index.ts';

let emulator: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  emulator = await startEmulator();
  stripe = emulator.stripe(undefined, { maxNetworkRetries: 0 });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.reset();
});

async function rejection(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Stripe.errors.StripeError) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}

async function raw(path: string, init: { method?: string; body?: string; key?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...init.headers };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? emulator.secretKey}`;
  const response = await fetch(`${emulator.url}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: init.body } : {}) });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Record<string, any> };
}

const confirmNow = { confirm: true, automatic_payment_methods: { enabled: true, allow_redirects: 'never' as const } };

function createCard(number: string, extra: Partial<Stripe.PaymentMethodCreateParams.Card> = {}) {
  return stripe.paymentMethods.create({ type: 'card', card: { number, exp_month: 12, exp_year: new Date().getFullYear() + 2, cvc: '123', ...extra } });
}

describe('API keys', () => {
  it('refuses a request without an API key with 401', async () => {
    const response = await raw('/v1/payment_intents', { key: null });
    expect(response.status).toBe(401);
    expect(response.json.error.type).toBe('invalid_request_error');
    expect(response.json.error.message).toMatch(/did not provide an API key/);
  });

  it('accepts any sk_test_ key and refuses keys it does not know, redacted', async () => {
    await expect(emulator.stripe('sk_test_someone_else').paymentIntents.list()).resolves.toMatchObject({ object: 'list' });
    const error = await rejection(emulator.stripe('nonsense_key_1234').paymentIntents.list());
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(error.message).toMatch(/^Invalid API Key provided: .*1234$/);
    expect(error.message).not.toContain('nonsense_key');
  });

  it('refuses live secret and publishable keys', async () => {
    for (const key of ['sk_live_abcdefghijkl1234', 'pk_live_abcdefghijkl1234', 'rk_live_abcdefghijkl1234']) {
      const error = await rejection(emulator.stripe(key).paymentMethods.create({ type: 'card', card: { token: 'tok_visa' } }));
      expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(error.statusCode).toBe(401);
    }
  });

  it('lets a publishable key create a PaymentMethod and nothing else', async () => {
    const publishable = emulator.stripe(emulator.publishableKey, { maxNetworkRetries: 0 });
    const pm = await publishable.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_month: 1, exp_year: new Date().getFullYear() + 3 } });
    expect(pm.id).toMatch(/^pm_/);
    const error = await rejection(publishable.paymentIntents.create({ amount: 500, currency: 'usd' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(error.message).toMatch(/cannot be made with a publishable API key/);
    expect(emulator.state.paymentIntents()).toHaveLength(0);
    await expect(rejection(publishable.paymentMethods.retrieve(pm.id))).resolves.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });

  it('accepts the key through HTTP Basic auth as Stripe does', async () => {
    const basic = Buffer.from(`${emulator.secretKey}:`).toString('base64');
    const response = await raw('/v1/payment_methods/pm_card_visa', { key: null, headers: { authorization: `Basic ${basic}` } });
    expect(response.status).toBe(200);
    expect(response.json.id).toBe('pm_card_visa');
  });
});

describe('PaymentMethods and test cards', () => {
  it('creates a card PaymentMethod in Stripe\'s shape', async () => {
    const pm = await createCard('4242424242424242', { exp_month: 7, exp_year: 2031 });
    expect(pm).toMatchObject({
      object: 'payment_method',
      type: 'card',
      livemode: false,
      customer: null,
      metadata: {},
      card: { brand: 'visa', last4: '4242', exp_month: 7, exp_year: 2031, funding: 'credit', country: 'US' },
    });
    expect(pm.id).toMatch(/^pm_[A-Za-z0-9]{24}$/);
    expect(pm.card?.fingerprint).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(pm.created).toBeGreaterThan(1_600_000_000);
    expect(pm.billing_details).toMatchObject({ email: null, name: null, address: { country: null } });
  });

  it('gives the same card the same fingerprint under new ids, and different cards different fingerprints', async () => {
    const first = await createCard('4242424242424242');
    const second = await createCard('4242 4242 4242 4242');
    const other = await createCard('5555555555554444');
    expect(second.id).not.toBe(first.id);
    expect(second.card?.fingerprint).toBe(first.card?.fingerprint);
    expect(other.card?.fingerprint).not.toBe(first.card?.fingerprint);
    expect(other.card?.brand).toBe('mastercard');
  });

  it('serves the magic test ids without creating them, with their card numbers\' fingerprints', async () => {
    const visa = await stripe.paymentMethods.retrieve('pm_card_visa');
    const created = await createCard('4242424242424242');
    expect(visa.id).toBe('pm_card_visa');
    expect(visa.card?.fingerprint).toBe(created.card?.fingerprint);
    const expectations: Array<[string, string, string]> = [
      ['pm_card_mastercard', 'mastercard', '4444'],
      ['pm_card_amex', 'amex', '0005'],
      ['pm_card_chargeDeclined', 'visa', '0002'],
      ['pm_card_chargeDeclinedInsufficientFunds', 'visa', '9995'],
      ['pm_card_chargeDeclinedExpiredCard', 'visa', '0069'],
      ['pm_card_chargeDeclinedIncorrectCvc', 'visa', '0127'],
      ['pm_card_chargeDeclinedFraudulent', 'visa', '0019'],
      ['pm_card_authenticationRequired', 'visa', '3184'],
      ['pm_card_threeDSecure2Required', 'visa', '3220'],
    ];
    const fingerprints = new Set<string>();
    for (const [id, brand, last4] of expectations) {
      const pm = await stripe.paymentMethods.retrieve(id);
      expect(pm.card).toMatchObject({ brand, last4 });
      fingerprints.add(pm.card!.fingerprint!);
    }
    expect(fingerprints.size).toBe(expectations.length);
    expect(emulator.state.paymentMethods()).toHaveLength(1);
  });

  it('creates PaymentMethods from test tokens', async () => {
    const pm = await stripe.paymentMethods.create({ type: 'card', card: { token: 'tok_mastercard' } });
    expect(pm.card?.last4).toBe('4444');
    const error = await rejection(stripe.paymentMethods.create({ type: 'card', card: { token: 'tok_nope' } }));
    expect(error).toMatchObject({ code: 'resource_missing', param: 'card[token]' });
  });

  it('rejects bad card data the way Stripe test mode does', async () => {
    expect(await rejection(createCard('4242424242424241'))).toMatchObject({ type: 'StripeCardError', code: 'incorrect_number' });
    expect(await rejection(createCard('4111111111111111'))).toMatchObject({
      type: 'StripeCardError',
      code: 'card_declined',
      decline_code: 'live_mode_test_card',
    });
    expect(await rejection(createCard('4242424242424242', { exp_year: 2001 }))).toMatchObject({ code: 'invalid_expiry_year' });
    expect(await rejection(createCard('4242424242424242', { exp_month: 13 }))).toMatchObject({ code: 'invalid_expiry_month' });
    expect(await rejection(createCard('4242424242424242', { cvc: '12a' }))).toMatchObject({ code: 'invalid_cvc' });
    const missing = await rejection(stripe.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_year: 2030 } as never }));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ code: 'parameter_missing', param: 'card[exp_month]' });
    expect(emulator.state.paymentMethods()).toHaveLength(0);
  });

  it('answers 404 resource_missing for an unknown PaymentMethod', async () => {
    const error = await rejection(stripe.paymentMethods.retrieve('pm_doesnotexist'));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
    expect(error.message).toBe("No such PaymentMethod: 'pm_doesnotexist'");
  });

  it('attaches PaymentMethods to Customers, magic ids as fresh copies, and refuses declining cards', async () => {
    const customer = await stripe.customers.create({ email: 'a@example.com' });
    const pm = await createCard('4242424242424242');
    expect((await stripe.paymentMethods.attach(pm.id, { customer: customer.id })).customer).toBe(customer.id);
    const copy = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    expect(copy.id).toMatch(/^pm_[A-Za-z0-9]{24}$/);
    expect(copy.customer).toBe(customer.id);
    expect(copy.card?.fingerprint).toBe(pm.card?.fingerprint);
    const declined = await rejection(stripe.paymentMethods.attach('pm_card_chargeDeclined', { customer: customer.id }));
    expect(declined).toMatchObject({ type: 'StripeCardError', code: 'card_declined', decline_code: 'generic_decline' });
    const unknown = await rejection(stripe.paymentMethods.attach(pm.id, { customer: 'cus_missing' }));
    expect(unknown).toMatchObject({ statusCode: 400, code: 'resource_missing', param: 'customer' });
  });
});

describe('Customers', () => {
  it('creates, retrieves, updates and lists customers by email', async () => {
    const alice = await stripe.customers.create({ email: 'alice@example.com', metadata: { stripe402_client_id: 'c1' } });
    await stripe.customers.create({ email: 'bob@example.com' });
    expect(alice).toMatchObject({ object: 'customer', email: 'alice@example.com', livemode: false, metadata: { stripe402_client_id: 'c1' } });
    expect(alice.id).toMatch(/^cus_/);
    expect(await stripe.customers.retrieve(alice.id)).toMatchObject({ id: alice.id });
    const updated = await stripe.customers.update(alice.id, { metadata: { plan: 'gold', stripe402_client_id: '' } });
    expect(updated.metadata).toEqual({ plan: 'gold' });
    const listed = await stripe.customers.list({ email: 'alice@example.com' });
    expect(listed.data.map((c) => c.id)).toEqual([alice.id]);
    expect((await stripe.customers.list()).data).toHaveLength(2);
  });

  it('searches customers by metadata, joined with AND', async () => {
    const match = await stripe.customers.create({ email: 'x@example.com', metadata: { stripe402_client_id: 'abc', tier: '1' } });
    await stripe.customers.create({ metadata: { stripe402_client_id: 'abc', tier: '2' } });
    await stripe.customers.create({ metadata: { stripe402_client_id: 'other' } });
    const found = await stripe.customers.search({ query: `metadata['stripe402_client_id']:'abc' AND metadata["tier"]:"1"` });
    expect(found.object).toBe('search_result');
    expect(found.data.map((c) => c.id)).toEqual([match.id]);
    expect((await stripe.customers.search({ query: `metadata['stripe402_client_id']:'abc'` })).data).toHaveLength(2);
    expect((await stripe.customers.search({ query: `email:'x@example.com'` })).data).toHaveLength(1);
  });

  it('rejects a search on an unsupported field or with bad syntax, naming the query', async () => {
    const unsupported = await rejection(stripe.customers.search({ query: `shoe_size:'42'` }));
    expect(unsupported).toMatchObject({ statusCode: 400, param: 'query' });
    expect(unsupported.message).toMatch(/unsupported search field/);
    expect(await rejection(stripe.customers.search({ query: `metadata['a':'b'` }))).toMatchObject({ param: 'query' });
  });
});

describe('PaymentIntents that succeed', () => {
  it('charges a card at once with confirm=true', async () => {
    const pi = await stripe.paymentIntents.create({
      amount: 500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      description: 'top-up',
      metadata: { stripe402_client_id: 'c1', stripe402_units: '50000' },
      ...confirmNow,
    });
    expect(pi).toMatchObject({
      object: 'payment_intent',
      status: 'succeeded',
      amount: 500,
      amount_received: 500,
      currency: 'usd',
      livemode: false,
      payment_method: 'pm_card_visa',
      last_payment_error: null,
      next_action: null,
      description: 'top-up',
      metadata: { stripe402_client_id: 'c1', stripe402_units: '50000' },
    });
    expect(pi.client_secret).toMatch(new RegExp(`^${pi.id}_secret_`));
    const charge = await stripe.charges.retrieve(pi.latest_charge as string);
    expect(charge).toMatchObject({ status: 'succeeded', paid: true, amount: 500, payment_intent: pi.id, metadata: pi.metadata });
    expect(charge.payment_method_details?.card?.fingerprint).toBe((await stripe.paymentMethods.retrieve('pm_card_visa')).card?.fingerprint);
  });

  it('creates first and confirms later', async () => {
    const created = await stripe.paymentIntents.create({ amount: 1000, currency: 'eur', allowed_payment_method_types: ['card'] });
    expect(created.status).toBe('requires_payment_method');
    const confirmed = await stripe.paymentIntents.confirm(created.id, { payment_method: 'pm_card_mastercard' });
    expect(confirmed).toMatchObject({ id: created.id, status: 'succeeded', amount_received: 1000 });
    const again = await rejection(stripe.paymentIntents.confirm(created.id));
    expect(again).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });

  it('needs allow_redirects=never or a return_url when automatic payment methods are on, and creates nothing otherwise', async () => {
    const error = await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error.message).toMatch(/allow_redirects/);
    expect(emulator.state.paymentIntents()).toHaveLength(0);
    const withReturn = await stripe.paymentIntents.create({
      amount: 500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      return_url: 'https://example.com/back',
    });
    expect(withReturn.status).toBe('succeeded');
    const cardsOnly = await stripe.paymentIntents.create({
      amount: 500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      allowed_payment_method_types: ['card'],
    });
    expect(cardsOnly).toMatchObject({ status: 'succeeded', allowed_payment_method_types: ['card'] });
    const legacy = await raw('/v1/payment_intents', {
      method: 'POST',
      body: 'amount=500&currency=usd&payment_method=pm_card_visa&confirm=true&payment_method_types[0]=card',
    });
    expect(legacy.json).toMatchObject({ status: 'succeeded', automatic_payment_methods: null, payment_method_types: ['card'] });
    const other = await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', allowed_payment_method_types: ['sepa_debit'] }));
    expect(other).toMatchObject({ statusCode: 400, param: 'allowed_payment_method_types' });
  });

  it('cancels an unconfirmed PaymentIntent and refuses to cancel a succeeded one', async () => {
    const pending = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', allowed_payment_method_types: ['card'] });
    expect(await stripe.paymentIntents.cancel(pending.id, { cancellation_reason: 'abandoned' })).toMatchObject({
      status: 'canceled',
      cancellation_reason: 'abandoned',
    });
    const done = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', ...confirmNow });
    expect(await rejection(stripe.paymentIntents.cancel(done.id))).toMatchObject({ code: 'payment_intent_unexpected_state' });
  });

  it('updates metadata on any PaymentIntent but the amount only before it succeeds', async () => {
    const done = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', ...confirmNow, metadata: { a: '1' } });
    expect((await stripe.paymentIntents.update(done.id, { metadata: { b: '2' } })).metadata).toEqual({ a: '1', b: '2' });
    expect(await rejection(stripe.paymentIntents.update(done.id, { amount: 700 }))).toMatchObject({ code: 'payment_intent_unexpected_state' });
  });
});

describe('declined cards', () => {
  const cases: Array<[string, string, string, string]> = [
    ['pm_card_chargeDeclined', '4000000000000002', 'card_declined', 'generic_decline'],
    ['pm_card_chargeDeclinedInsufficientFunds', '4000000000009995', 'card_declined', 'insufficient_funds'],
    ['pm_card_chargeDeclinedExpiredCard', '4000000000000069', 'expired_card', 'expired_card'],
    ['pm_card_chargeDeclinedIncorrectCvc', '4000000000000127', 'incorrect_cvc', 'incorrect_cvc'],
    ['pm_card_chargeDeclinedFraudulent', '4100000000000019', 'card_declined', 'fraudulent'],
  ];

  it.each(cases)('%s answers 402 %s/%s with the failed PaymentIntent', async (magicId, number, code, declineCode) => {
    for (const paymentMethod of [magicId, (await createCard(number)).id]) {
      const error = await rejection(
        stripe.paymentIntents.create({ amount: 700, currency: 'usd', payment_method: paymentMethod, metadata: { k: 'v' }, ...confirmNow }),
      );
      expect(error).toBeInstanceOf(Stripe.errors.StripeCardError);
      expect(error).toMatchObject({ statusCode: 402, code, decline_code: declineCode });
      const intent = error.payment_intent!;
      expect(intent).toMatchObject({ object: 'payment_intent', status: 'requires_payment_method', payment_method: null, metadata: { k: 'v' } });
      expect(intent.last_payment_error).toMatchObject({ type: 'card_error', code, decline_code: declineCode });
      expect((intent.last_payment_error?.payment_method as Stripe.PaymentMethod).id).toBe(paymentMethod);
      const stored = await stripe.paymentIntents.retrieve(intent.id);
      expect(stored.status).toBe('requires_payment_method');
      expect(await stripe.charges.retrieve(error.charge!)).toMatchObject({ status: 'failed', paid: false, failure_code: code });
    }
    expect(emulator.state.paymentIntents().every((pi) => pi.amount_received === 0)).toBe(true);
  });

  it('declines pm_card_chargeCustomerFail at charge time although it attaches', async () => {
    const customer = await stripe.customers.create({});
    const attached = await stripe.paymentMethods.attach('pm_card_chargeCustomerFail', { customer: customer.id });
    const error = await rejection(
      stripe.paymentIntents.create({ amount: 500, currency: 'usd', customer: customer.id, payment_method: attached.id, ...confirmNow }),
    );
    expect(error).toMatchObject({ type: 'StripeCardError', code: 'card_declined' });
  });
});

describe('cards that require authentication', () => {
  it('a program that visits the next-action URL completes authentication', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 700, currency: 'usd', payment_method: 'pm_card_authenticationRequired', ...confirmNow });
    expect(pi.status).toBe('requires_action');
    const visit = await fetch(pi.next_action!.redirect_to_url!.url!);
    expect(visit.status).toBe(200);
    expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('succeeded');
  });

  it.each(['pm_card_authenticationRequired', 'pm_card_threeDSecure2Required', '4000002500003155', '4000002760003184'])(
    '%s waits in requires_action until authentication completes',
    async (card) => {
      const paymentMethod = card.startsWith('pm_') ? card : (await createCard(card)).id;
      const pi = await stripe.paymentIntents.create({ amount: 900, currency: 'usd', payment_method: paymentMethod, ...confirmNow });
      expect(pi.status).toBe('requires_action');
      expect(pi.next_action?.type).toBe('redirect_to_url');
      const url = pi.next_action!.redirect_to_url!.url!;
      expect(url).toBe(`${emulator.url}/_emulator/authenticate/${pi.id}`);
      const page = await fetch(url, { headers: { accept: 'text/html' } });
      expect(await page.text()).toContain('action=complete');
      expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('requires_action');
      const done = await fetch(`${url}?action=complete`);
      expect(done.status).toBe(200);
      const after = await stripe.paymentIntents.retrieve(pi.id);
      expect(after).toMatchObject({ status: 'succeeded', amount_received: 900, next_action: null });
      expect(await stripe.charges.retrieve(after.latest_charge as string)).toMatchObject({ status: 'succeeded' });
    },
  );

  it('fails the PaymentIntent when authentication fails', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 900, currency: 'usd', payment_method: 'pm_card_authenticationRequired', ...confirmNow });
    const response = await fetch(`${pi.next_action!.redirect_to_url!.url}?action=fail`);
    expect(response.status).toBe(200);
    const after = await stripe.paymentIntents.retrieve(pi.id);
    expect(after).toMatchObject({ status: 'requires_payment_method', payment_method: null, amount_received: 0 });
    expect(after.last_payment_error).toMatchObject({ code: 'payment_intent_authentication_failure', type: 'invalid_request_error' });
    const late = await fetch(`${pi.next_action!.redirect_to_url!.url}?action=complete`);
    expect(late.status).toBe(409);
    expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('requires_payment_method');
  });

  it('redirects to the return_url with Stripe\'s query parameters', async () => {
    const pi = await stripe.paymentIntents.create({
      amount: 900,
      currency: 'usd',
      payment_method: 'pm_card_authenticationRequired',
      confirm: true,
      return_url: 'https://merchant.example/done?x=1',
    });
    expect(pi.next_action?.redirect_to_url?.return_url).toBe('https://merchant.example/done?x=1');
    const response = await fetch(`${pi.next_action!.redirect_to_url!.url}?action=complete`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://merchant.example/done');
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ x: '1', payment_intent: pi.id, redirect_status: 'succeeded' });
  });

  it('declines off-session or with error_on_requires_action instead of asking for authentication', async () => {
    for (const flags of [{ off_session: true }, { error_on_requires_action: true }]) {
      const error = await rejection(
        stripe.paymentIntents.create({ amount: 900, currency: 'usd', payment_method: 'pm_card_authenticationRequired', ...confirmNow, ...flags }),
      );
      expect(error).toMatchObject({ type: 'StripeCardError', code: 'authentication_required', decline_code: 'authentication_required' });
      expect(error.payment_intent?.status).toBe('requires_payment_method');
    }
  });

  it('asks any card for authentication when 3-D Secure is requested', async () => {
    const pi = await stripe.paymentIntents.create({
      amount: 900,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      payment_method_options: { card: { request_three_d_secure: 'challenge' } },
      ...confirmNow,
    });
    expect(pi.status).toBe('requires_action');
  });
});

describe('PaymentMethod reuse', () => {
  it('refuses to reuse a PaymentMethod that paid without being attached to a Customer', async () => {
    const pm = await createCard('4242424242424242');
    const customer = await stripe.customers.create({});
    await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: customer.id, ...confirmNow });
    const error = await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: customer.id, ...confirmNow }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ param: 'payment_method' });
    expect(error.message).toMatch(/may not be used again/);
    expect(emulator.state.paymentIntents()).toHaveLength(1);
  });

  it('lets a PaymentMethod attached to a Customer pay again, for that Customer only', async () => {
    const pm = await createCard('5555555555554444');
    const [owner, stranger] = [await stripe.customers.create({}), await stripe.customers.create({})];
    await stripe.paymentMethods.attach(pm.id, { customer: owner.id });
    for (let i = 0; i < 2; i++) {
      const pi = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: owner.id, ...confirmNow });
      expect(pi.status).toBe('succeeded');
    }
    expect(await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: stranger.id, ...confirmNow }))).toMatchObject({
      param: 'payment_method',
    });
    expect(await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, ...confirmNow }))).toMatchObject({
      param: 'payment_method',
    });
  });

  it('attaches the PaymentMethod to the Customer after a payment with setup_future_usage', async () => {
    const pm = await createCard('4242424242424242');
    const customer = await stripe.customers.create({});
    await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: customer.id, setup_future_usage: 'off_session', ...confirmNow });
    expect((await stripe.paymentMethods.retrieve(pm.id)).customer).toBe(customer.id);
    const again = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: pm.id, customer: customer.id, ...confirmNow });
    expect(again.status).toBe('succeeded');
  });

  it('lets the magic test ids pay any number of times', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', ...confirmNow })).status).toBe('succeeded');
    }
  });
});

describe('parameter validation', () => {
  it('rejects a non-integer amount naming the parameter', async () => {
    for (const amount of ['abc', '1.5', '']) {
      const response = await raw('/v1/payment_intents', { method: 'POST', body: `amount=${amount}&currency=usd` });
      expect(response.status).toBe(400);
      expect(response.json.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid_integer', param: 'amount' });
    }
    const viaSdk = await rejection(stripe.paymentIntents.create({ amount: 1.5, currency: 'usd' }));
    expect(viaSdk).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(viaSdk).toMatchObject({ param: 'amount', message: 'Invalid integer: 1.5' });
  });

  it('rejects unknown parameters, nested ones too, with their bracketed name', async () => {
    const top = await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', foo: 1 } as Stripe.PaymentIntentCreateParams));
    expect(top).toMatchObject({ code: 'parameter_unknown', param: 'foo', message: 'Received unknown parameter: foo' });
    const nested = await rejection(
      stripe.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_month: 1, exp_year: 2099, colour: 'red' } as never }),
    );
    expect(nested).toMatchObject({ code: 'parameter_unknown', param: 'card[colour]' });
  });

  it('rejects missing, mistyped and out-of-range parameters', async () => {
    expect(await rejection(stripe.paymentIntents.create({ amount: 500 } as Stripe.PaymentIntentCreateParams))).toMatchObject({
      code: 'parameter_missing',
      param: 'currency',
    });
    expect(await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'xyz' }))).toMatchObject({ param: 'currency' });
    expect(await rejection(stripe.paymentIntents.create({ amount: -5, currency: 'usd' }))).toMatchObject({ param: 'amount' });
    expect(await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', confirm: 'maybe' as never }))).toMatchObject({ param: 'confirm' });
    expect(await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', metadata: 'x' as never }))).toMatchObject({ param: 'metadata' });
    expect(await rejection(stripe.paymentIntents.list({ limit: 101 }))).toMatchObject({ param: 'limit' });
    expect(emulator.state.paymentIntents()).toHaveLength(0);
  });

  it('enforces the per-currency minimum charge and accepts zero- and three-decimal currencies', async () => {
    const minimums: Array<[string, number]> = [['usd', 50], ['eur', 50], ['gbp', 30], ['jpy', 50], ['huf', 17500]];
    for (const [currency, minimum] of minimums) {
      const tooSmall = await rejection(stripe.paymentIntents.create({ amount: minimum - 1, currency, allowed_payment_method_types: ['card'] }));
      expect(tooSmall).toMatchObject({ statusCode: 400, code: 'amount_too_small', param: 'amount' });
      expect((await stripe.paymentIntents.create({ amount: minimum, currency, allowed_payment_method_types: ['card'] })).amount).toBe(minimum);
    }
    const yen = await stripe.paymentIntents.create({ amount: 55, currency: 'JPY', payment_method: 'pm_card_visa', ...confirmNow });
    expect(yen).toMatchObject({ currency: 'jpy', amount_received: 55 });
    expect((await stripe.paymentIntents.create({ amount: 1230, currency: 'kwd', payment_method: 'pm_card_visa', ...confirmNow })).status).toBe('succeeded');
    expect(await rejection(stripe.paymentIntents.create({ amount: 1235, currency: 'kwd', allowed_payment_method_types: ['card'] }))).toMatchObject({ param: 'amount' });
    expect(await rejection(stripe.paymentIntents.create({ amount: 100_000_000, currency: 'usd' }))).toMatchObject({ code: 'amount_too_large' });
  });

  it('reads bracket notation with indexed and empty brackets', async () => {
    const created = await raw('/v1/customers', { method: 'POST', body: 'metadata[a]=1&metadata[b]=two%20words&email=c%40example.com' });
    expect(created.json).toMatchObject({ metadata: { a: '1', b: 'two words' }, email: 'c@example.com' });
    const pi = await raw('/v1/payment_intents', {
      method: 'POST',
      body: `amount=500&currency=usd&customer=${created.json.id}&payment_method_types[]=card&expand[]=customer`,
    });
    expect(pi.status).toBe(200);
    expect(pi.json.customer).toMatchObject({ id: created.json.id, object: 'customer' });
    const indexed = await raw(`/v1/payment_intents/${pi.json.id}?expand[0]=customer&expand[1]=payment_method`);
    expect(indexed.json.customer.id).toBe(created.json.id);
    expect(indexed.json.payment_method).toBeNull();
  });

  it('refuses contradictory, prototype-polluting or oversized metadata keys', async () => {
    expect((await raw('/v1/customers', { method: 'POST', body: 'metadata=x&metadata[a]=1' })).status).toBe(400);
    const proto = await raw('/v1/customers', { method: 'POST', body: 'metadata[__proto__][polluted]=1' });
    expect(proto.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const longKey = 'k'.repeat(41);
    const tooLong = await raw('/v1/customers', { method: 'POST', body: `metadata[${longKey}]=1` });
    expect(tooLong.json.error).toMatchObject({ type: 'invalid_request_error', param: `metadata[${longKey}]` });
    expect(emulator.state.customers()).toHaveLength(0);
  });

  it('answers an unknown URL or method with 404 Unrecognized request URL', async () => {
    const unknown = await raw('/v1/shoes');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toMatch(/^Unrecognized request URL \(GET: \/v1\/shoes\)/);
    const wrongMethod = await raw('/v1/payment_intents', { method: 'DELETE' });
    expect(wrongMethod.status).toBe(404);
    const sdk = await rejection(stripe.rawRequest('GET', '/v1/nothing_here'));
    expect(sdk).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  });

  it('gives every answer a request id and errors Stripe\'s body shape', async () => {
    const response = await raw('/v1/payment_intents/pi_missing');
    expect(response.status).toBe(404);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(response.json.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'resource_missing',
      param: 'intent',
      message: "No such payment_intent: 'pi_missing'",
    });
    expect(response.json.error.doc_url).toMatch(/^https:\/\/stripe\.com\/docs\/error-codes\//);
  });

  it('rejects expanding a field that cannot be expanded', async () => {
    expect(await rejection(stripe.paymentIntents.list({ expand: ['data.amount'] }))).toMatchObject({ param: 'expand' });
    const pi = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', ...confirmNow });
    const expanded = await stripe.paymentIntents.retrieve(pi.id, { expand: ['latest_charge', 'payment_method'] });
    expect((expanded.latest_charge as Stripe.Charge).object).toBe('charge');
    expect((expanded.payment_method as Stripe.PaymentMethod).card?.last4).toBe('4242');
  });
});

describe('lists and searches of PaymentIntents', () => {
  async function charge(metadata: Record<string, string>, customer?: string) {
    return stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa', metadata, ...(customer ? { customer } : {}), ...confirmNow });
  }

  it('lists newest first with cursors, filters and auto-pagination', async () => {
    const customer = await stripe.customers.create({});
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await charge({ n: String(i) }, i % 2 === 0 ? customer.id : undefined));
    const newestFirst = made.map((pi) => pi.id).reverse();
    const first = await stripe.paymentIntents.list({ limit: 2 });
    expect(first).toMatchObject({ object: 'list', url: '/v1/payment_intents', has_more: true });
    expect(first.data.map((pi) => pi.id)).toEqual(newestFirst.slice(0, 2));
    const second = await stripe.paymentIntents.list({ limit: 2, starting_after: first.data[1]!.id });
    expect(second.data.map((pi) => pi.id)).toEqual(newestFirst.slice(2, 4));
    const back = await stripe.paymentIntents.list({ limit: 2, ending_before: newestFirst[3]! });
    expect(back.data.map((pi) => pi.id)).toEqual(newestFirst.slice(1, 3));
    expect((await stripe.paymentIntents.list({ limit: 3 }).autoPagingToArray({ limit: 100 })).map((pi) => pi.id)).toEqual(newestFirst);
    const mine = await stripe.paymentIntents.list({ customer: customer.id });
    expect(mine.data.map((pi) => pi.id)).toEqual([made[4]!.id, made[2]!.id, made[0]!.id]);
    const created = made[0]!.created;
    expect((await stripe.paymentIntents.list({ created: { gte: created, lte: created + 3600 } })).data).toHaveLength(5);
    expect((await stripe.paymentIntents.list({ created: { gt: created + 3600 } })).data).toHaveLength(0);
  });

  it('searches by metadata and status, page by page', async () => {
    const mine = [await charge({ stripe402_client_id: 'abc' }), await charge({ stripe402_client_id: 'abc' }), await charge({ stripe402_client_id: 'abc' })];
    await charge({ stripe402_client_id: 'other' });
    await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_chargeDeclined', metadata: { stripe402_client_id: 'abc' }, ...confirmNow }));
    const query = `metadata['stripe402_client_id']:'abc' AND status:'succeeded'`;
    const page = await stripe.paymentIntents.search({ query, limit: 2 });
    expect(page).toMatchObject({ object: 'search_result', has_more: true, url: '/v1/payment_intents/search' });
    expect(page.next_page).toEqual(expect.any(String));
    const rest = await stripe.paymentIntents.search({ query, limit: 2, page: page.next_page! });
    expect(rest).toMatchObject({ has_more: false, next_page: null });
    const ids = [...page.data, ...rest.data].map((pi) => pi.id);
    expect(ids).toEqual(mine.map((pi) => pi.id).reverse());
    expect(await stripe.paymentIntents.search({ query }).autoPagingToArray({ limit: 10 })).toHaveLength(3);
    expect((await stripe.paymentIntents.search({ query: `metadata['stripe402_client_id']:'abc'` })).data).toHaveLength(4);
    expect((await stripe.paymentIntents.search({ query: `-status:'succeeded'` })).data).toHaveLength(1);
    expect((await stripe.paymentIntents.search({ query: 'amount>=500 AND amount<501' })).data).toHaveLength(5);
  });

  it('exposes the PaymentIntents to tests through state views', async () => {
    await charge({ stripe402_client_id: 'x' });
    await charge({ stripe402_client_id: 'x' });
    await charge({ stripe402_client_id: 'y' });
    const perClient = emulator.state.paymentIntents().filter((pi) => pi.metadata.stripe402_client_id === 'x' && pi.status === 'succeeded');
    expect(perClient).toHaveLength(2);
    perClient[0]!.status = 'canceled';
    expect(emulator.state.paymentIntents()[0]!.status).toBe('succeeded');
  });

  it('forgets everything on POST /_emulator/reset', async () => {
    await charge({});
    const response = await fetch(`${emulator.url}/_emulator/reset`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(200);
    expect((await stripe.paymentIntents.list()).data).toHaveLength(0);
    expect(emulator.state.charges()).toHaveLength(0);
  });
});

describe('refunds', () => {
  it('refunds a succeeded PaymentIntent in full or in parts, never beyond the charge', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', ...confirmNow });
    const partial = await stripe.refunds.create({ payment_intent: pi.id, amount: 300 });
    expect(partial).toMatchObject({ object: 'refund', amount: 300, status: 'succeeded', payment_intent: pi.id, charge: pi.latest_charge });
    expect(await rejection(stripe.refunds.create({ payment_intent: pi.id, amount: 800 }))).toMatchObject({ param: 'amount' });
    const rest = await stripe.refunds.create({ payment_intent: pi.id });
    expect(rest.amount).toBe(700);
    expect(await stripe.charges.retrieve(pi.latest_charge as string)).toMatchObject({ amount_refunded: 1000, refunded: true });
    expect(await rejection(stripe.refunds.create({ payment_intent: pi.id }))).toMatchObject({ code: 'charge_already_refunded' });
    expect((await stripe.refunds.list({ payment_intent: pi.id })).data.map((r) => r.id)).toEqual([rest.id, partial.id]);
    expect(await stripe.refunds.retrieve(partial.id)).toMatchObject({ id: partial.id, amount: 300 });
  });

  it('refuses to refund a PaymentIntent that has not succeeded', async () => {
    const pending = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', allowed_payment_method_types: ['card'] });
    expect(await rejection(stripe.refunds.create({ payment_intent: pending.id }))).toMatchObject({ statusCode: 400, param: 'payment_intent' });
    expect(await rejection(stripe.refunds.create({ payment_intent: 'pi_missing' }))).toMatchObject({ code: 'resource_missing' });
    expect(await rejection(stripe.refunds.create({}))).toMatchObject({ statusCode: 400 });
  });
});
