// The Stripe API surface the emulator serves: the route table, each
// endpoint's parameters (Stripe's names and types; anything else is an
// unknown parameter), and the handlers, including lists with cursors,
// searches and `expand[]`. Handlers return the JSON body of a 200 answer or
// throw a StripeApiError.
import type Stripe from 'stripe';
import { resolveCardNumber, testTokenNumber, testCard, type TestCard } from './cards.ts';
import { checkChargeAmount, checkCurrency } from './currencies.ts';
import type { PaymentEngine, RequestInfo } from './engine.ts';
import { cardError, invalidRequest, missingParameter, resourceMissing } from './errors.ts';
import { checkParams, type FormObject, type ParamSpec, type Params } from './form.ts';
import { compileSearch, type SearchResource } from './search.ts';
import {
  buildCustomer,
  buildPaymentIntent,
  buildPaymentMethod,
  type BillingDetailsInput,
  type PaymentIntentRecord,
  type PaymentMethodRecord,
  type Store,
} from './store.ts';

export interface ApiContext {
  store: Store;
  engine: PaymentEngine;
  params: FormObject;
  request: RequestInfo;
}

export interface Route {
  method: 'GET' | 'POST';
  /** Path segments after `/v1/`; `:id` matches any one segment. */
  segments: string[];
  /** Callable with a publishable key (only creating PaymentMethods is). */
  publishable?: boolean;
  handle(context: ApiContext, id: string): unknown;
}

// ---------------------------------------------------------------------------
// Parameter specs

const str = (extra: Partial<Extract<ParamSpec, { kind: 'string' }>> = {}): ParamSpec => ({ kind: 'string', ...extra });
const int = (extra: Partial<Extract<ParamSpec, { kind: 'integer' }>> = {}): ParamSpec => ({ kind: 'integer', ...extra });
const bool: ParamSpec = { kind: 'boolean' };
const metadata: ParamSpec = { kind: 'metadata' };
const expand: ParamSpec = { kind: 'array', of: { kind: 'string' } };
const obj = (fields: Record<string, ParamSpec>, extra: { required?: boolean; emptyable?: boolean } = {}): ParamSpec => ({
  kind: 'object',
  fields,
  ...extra,
});

const LIST_FIELDS: Record<string, ParamSpec> = {
  created: { kind: 'range' },
  limit: int(),
  starting_after: str(),
  ending_before: str(),
  expand,
};

const SEARCH_FIELDS: Record<string, ParamSpec> = {
  query: str({ required: true }),
  limit: int(),
  page: str(),
  expand,
};

const RETRIEVE_FIELDS: Record<string, ParamSpec> = { expand };

const ADDRESS = obj(
  {
    city: str({ emptyable: true }),
    country: str({ emptyable: true }),
    line1: str({ emptyable: true }),
    line2: str({ emptyable: true }),
    postal_code: str({ emptyable: true }),
    state: str({ emptyable: true }),
  },
  { emptyable: true },
);

const PAYMENT_METHOD_CREATE: Record<string, ParamSpec> = {
  type: str(),
  card: obj({
    number: str(),
    exp_month: int(),
    exp_year: int(),
    cvc: str(),
    token: str(),
    networks: obj({ preferred: str() }),
  }),
  billing_details: obj({
    address: ADDRESS,
    email: str({ emptyable: true }),
    name: str({ emptyable: true }),
    phone: str({ emptyable: true }),
  }),
  allow_redisplay: str({ oneOf: ['always', 'limited', 'unspecified'] }),
  metadata,
  expand,
};

const CUSTOMER_FIELDS: Record<string, ParamSpec> = {
  email: str({ maxLength: 512, emptyable: true }),
  name: str({ maxLength: 256, emptyable: true }),
  phone: str({ maxLength: 20, emptyable: true }),
  description: str({ emptyable: true }),
  metadata,
  invoice_settings: obj({ default_payment_method: str({ emptyable: true }) }),
  expand,
};

const PAYMENT_METHOD_OPTIONS = obj({
  card: obj({ request_three_d_secure: str({ oneOf: ['any', 'automatic', 'challenge'] }) }),
});

const OFF_SESSION = str({ oneOf: ['true', 'false', 'one_off', 'recurring'] });

const PAYMENT_INTENT_CREATE: Record<string, ParamSpec> = {
  amount: int({ required: true, min: 1 }),
  currency: str({ required: true }),
  customer: str(),
  payment_method: str(),
  confirm: bool,
  off_session: OFF_SESSION,
  error_on_requires_action: bool,
  automatic_payment_methods: obj({
    enabled: { kind: 'boolean', required: true },
    allow_redirects: str({ oneOf: ['always', 'never'] }),
  }),
  /** The API versions pinned by SDK v23 and later say allowed_payment_method_types. */
  allowed_payment_method_types: { kind: 'array', of: str() },
  excluded_payment_method_types: { kind: 'array', of: str() },
  /** Older API versions. */
  payment_method_types: { kind: 'array', of: str() },
  payment_method_options: PAYMENT_METHOD_OPTIONS,
  capture_method: str({ oneOf: ['automatic', 'automatic_async', 'manual'] }),
  confirmation_method: str({ oneOf: ['automatic', 'manual'] }),
  description: str({ maxLength: 1000, emptyable: true }),
  metadata,
  receipt_email: str({ emptyable: true }),
  return_url: str(),
  setup_future_usage: str({ oneOf: ['off_session', 'on_session'] }),
  statement_descriptor: str({ maxLength: 22 }),
  statement_descriptor_suffix: str({ maxLength: 22 }),
  use_stripe_sdk: bool,
  expand,
};

const PAYMENT_INTENT_CONFIRM: Record<string, ParamSpec> = {
  payment_method: str(),
  allowed_payment_method_types: { kind: 'array', of: str() },
  excluded_payment_method_types: { kind: 'array', of: str() },
  return_url: str(),
  off_session: OFF_SESSION,
  error_on_requires_action: bool,
  payment_method_options: PAYMENT_METHOD_OPTIONS,
  receipt_email: str({ emptyable: true }),
  setup_future_usage: str({ oneOf: ['off_session', 'on_session'], emptyable: true }),
  use_stripe_sdk: bool,
  expand,
};

const PAYMENT_INTENT_UPDATE: Record<string, ParamSpec> = {
  amount: int({ min: 1 }),
  currency: str(),
  customer: str(),
  payment_method: str(),
  description: str({ maxLength: 1000, emptyable: true }),
  metadata,
  receipt_email: str({ emptyable: true }),
  setup_future_usage: str({ oneOf: ['off_session', 'on_session'], emptyable: true }),
  statement_descriptor: str({ maxLength: 22, emptyable: true }),
  statement_descriptor_suffix: str({ maxLength: 22, emptyable: true }),
  expand,
};

const PAYMENT_INTENT_CANCEL: Record<string, ParamSpec> = {
  cancellation_reason: str({ oneOf: ['abandoned', 'duplicate', 'fraudulent', 'requested_by_customer'] }),
  expand,
};

const REFUND_CREATE: Record<string, ParamSpec> = {
  payment_intent: str(),
  charge: str(),
  amount: int({ min: 1 }),
  reason: str({ oneOf: ['duplicate', 'fraudulent', 'requested_by_customer'] }),
  metadata,
  expand,
};

// ---------------------------------------------------------------------------
// Lists, search and expansion

interface ListBody<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

function limitOf(params: Params): number {
  const limit = params.limit === undefined ? 10 : (params.limit as number);
  if (limit < 1 || limit > 100) {
    throw invalidRequest('Invalid limit: must be between 1 and 100', { param: 'limit' });
  }
  return limit;
}

function createdFilter(params: Params): (created: number) => boolean {
  const created = params.created;
  if (created === undefined) return () => true;
  if (typeof created === 'number') return (value) => value === created;
  const range = created as Record<string, number | undefined>;
  return (value) =>
    (range.gt === undefined || value > range.gt) &&
    (range.gte === undefined || value >= range.gte) &&
    (range.lt === undefined || value < range.lt) &&
    (range.lte === undefined || value <= range.lte);
}

/** A page of `items` (oldest first, as stored) in Stripe's list order, newest first. */
function paginate<T extends { id: string }>(
  store: Store,
  items: Iterable<T>,
  params: Params,
  url: string,
  label: string,
  keep: (item: T) => boolean,
): ListBody<T> {
  const limit = limitOf(params);
  const after = params.starting_after as string | undefined;
  const before = params.ending_before as string | undefined;
  if (after !== undefined && before !== undefined) {
    throw invalidRequest('You may only specify one of these parameters: ending_before, starting_after.', { param: 'ending_before' });
  }
  const cursorId = after ?? before;
  let cursor: number | undefined;
  if (cursorId !== undefined) {
    cursor = store.sequenceOf(cursorId);
    if (cursor === undefined) throw resourceMissing(label, cursorId, after !== undefined ? 'starting_after' : 'ending_before', 400);
  }
  const newestFirst: T[] = [];
  for (const item of items) {
    if (!keep(item)) continue;
    if (cursor !== undefined) {
      const position = store.sequenceOf(item.id) ?? -1;
      if (after !== undefined && position >= cursor) continue;
      if (before !== undefined && position <= cursor) continue;
    }
    newestFirst.push(item);
  }
  newestFirst.reverse();
  if (before !== undefined) {
    // The page closest to the cursor, still newest first.
    const start = Math.max(0, newestFirst.length - limit);
    return { object: 'list', data: newestFirst.slice(start), has_more: start > 0, url };
  }
  return { object: 'list', data: newestFirst.slice(0, limit), has_more: newestFirst.length > limit, url };
}

function searchPage<T>(items: Iterable<T>, params: Params, url: string, resource: SearchResource<T>) {
  const limit = limitOf(params);
  const matches = compileSearch(params.query as string, resource);
  let offset = 0;
  if (params.page !== undefined) {
    const decoded = /^page_(\d{1,9})$/.exec(Buffer.from(params.page as string, 'base64url').toString('utf8'));
    if (!decoded) throw invalidRequest('Invalid page: use the next_page of a previous search result.', { param: 'page' });
    offset = Number(decoded[1]);
  }
  const found: T[] = [];
  for (const item of items) if (matches(item)) found.push(item);
  found.reverse();
  const data = found.slice(offset, offset + limit);
  const hasMore = found.length > offset + limit;
  const body: Record<string, unknown> = {
    object: 'search_result',
    data,
    has_more: hasMore,
    next_page: hasMore ? Buffer.from(`page_${offset + limit}`, 'utf8').toString('base64url') : null,
    url,
  };
  if (expandPaths(params).includes('total_count')) body.total_count = found.length;
  return body;
}

/** Which fields of each object type `expand[]` may replace with the object they name, and its type. */
const EXPANDABLE: Record<string, Array<{ path: string[]; target: string }>> = {
  payment_intent: [
    { path: ['customer'], target: 'customer' },
    { path: ['payment_method'], target: 'payment_method' },
    { path: ['latest_charge'], target: 'charge' },
  ],
  payment_method: [{ path: ['customer'], target: 'customer' }],
  charge: [
    { path: ['customer'], target: 'customer' },
    { path: ['payment_intent'], target: 'payment_intent' },
  ],
  refund: [
    { path: ['charge'], target: 'charge' },
    { path: ['payment_intent'], target: 'payment_intent' },
  ],
  customer: [{ path: ['invoice_settings', 'default_payment_method'], target: 'payment_method' }],
};

function expandPaths(params: Params): string[] {
  return (params.expand as string[] | undefined) ?? [];
}

function expandableField(type: string, path: string[]) {
  return (EXPANDABLE[type] ?? []).find((candidate) => candidate.path.every((segment, i) => path[i] === segment));
}

/** Checks an expansion path against the object type up front, so an empty list rejects it too. */
function checkExpandPath(type: string, full: string): string[] {
  const path = full.split('.');
  if (path.length > 4) throw invalidRequest(`You cannot expand more than 4 levels of a property (${full}).`, { param: 'expand' });
  let rest = path;
  let current = type;
  while (rest.length > 0) {
    const field = expandableField(current, rest);
    if (!field) throw invalidRequest(`This property cannot be expanded (${full}).`, { param: 'expand' });
    rest = rest.slice(field.path.length);
    current = field.target;
  }
  return path;
}

function expandOne(store: Store, target: Record<string, unknown>, path: string[]): Record<string, unknown> {
  const field = expandableField(target.object as string, path);
  if (!field) return target;
  const rest = path.slice(field.path.length);
  const copy: Record<string, unknown> = { ...target };
  let parent = copy;
  for (const segment of field.path.slice(0, -1)) {
    const child = parent[segment];
    if (!child || typeof child !== 'object') return copy;
    parent[segment] = { ...(child as Record<string, unknown>) };
    parent = parent[segment] as Record<string, unknown>;
  }
  const key = field.path[field.path.length - 1]!;
  const value = parent[key];
  let expanded: unknown = value;
  if (typeof value === 'string') expanded = store.resolve(value) ?? value;
  if (rest.length > 0 && expanded && typeof expanded === 'object') {
    expanded = expandOne(store, expanded as Record<string, unknown>, rest);
  }
  parent[key] = expanded;
  return copy;
}

function expandObject<T extends object>(store: Store, target: T, params: Params): T {
  let out = target as unknown as Record<string, unknown>;
  for (const full of expandPaths(params)) {
    out = expandOne(store, out, checkExpandPath(out.object as string, full));
  }
  return out as T;
}

function expandList<T extends object>(store: Store, body: { data: T[] }, params: Params, itemType: string): void {
  const paths: string[][] = [];
  for (const full of expandPaths(params)) {
    if (full === 'total_count') continue;
    if (!full.startsWith('data.')) throw invalidRequest(`This property cannot be expanded (${full}).`, { param: 'expand' });
    paths.push(checkExpandPath(itemType, full.slice('data.'.length)));
  }
  if (paths.length === 0) return;
  body.data = body.data.map((item) => paths.reduce((acc, path) => expandOne(store, acc, path), item as unknown as Record<string, unknown>) as unknown as T);
}

// ---------------------------------------------------------------------------
// Lookups

function paymentMethodOrMissing(store: Store, id: string, param: string, status: 400 | 404): PaymentMethodRecord {
  const record = store.paymentMethod(id);
  if (!record) throw resourceMissing('PaymentMethod', id, param, status);
  return record;
}

function customerOrMissing(store: Store, id: string, param: string, status: 400 | 404): Stripe.Customer {
  const customer = store.customers.get(id);
  if (!customer) throw resourceMissing('customer', id, param, status);
  return customer;
}

function paymentIntentOrMissing(store: Store, id: string, param: string, status: 400 | 404): PaymentIntentRecord {
  const record = store.paymentIntents.get(id);
  if (!record) throw resourceMissing('payment_intent', id, param, status);
  return record;
}

function metadataOf(params: Params): Record<string, string> {
  return (params.metadata as Record<string, string> | null | undefined) ?? {};
}

/** Applies a metadata update: `metadata=` clears, `metadata[k]=` removes k, others set. */
function updateMetadata(current: Record<string, string>, update: Params['metadata'] | undefined): Record<string, string> {
  if (update === undefined) return current;
  if (update === null) return {};
  const next = { ...current };
  for (const [key, value] of Object.entries(update as Record<string, string>)) {
    if (value === '') delete next[key];
    else next[key] = value;
  }
  return next;
}

function nullableString(value: Params[string] | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

// ---------------------------------------------------------------------------
// PaymentMethods

function cardFromParams(card: Params): { testCard: TestCard; expMonth: number; expYear: number; cvcProvided: boolean } {
  const now = new Date();
  if (typeof card.token === 'string') {
    const number = testTokenNumber(card.token);
    if (number === undefined) throw resourceMissing('token', card.token, 'card[token]', 400);
    return { testCard: testCard(number)!, expMonth: now.getUTCMonth() + 1, expYear: now.getUTCFullYear() + 1, cvcProvided: false };
  }
  if (card.number === undefined) throw missingParameter('card[number]');
  if (card.exp_month === undefined) throw missingParameter('card[exp_month]');
  if (card.exp_year === undefined) throw missingParameter('card[exp_year]');
  const resolved = resolveCardNumber(card.number as string);
  const expMonth = card.exp_month as number;
  let expYear = card.exp_year as number;
  if (expYear >= 0 && expYear < 100) expYear += 2000;
  if (expMonth < 1 || expMonth > 12) {
    throw cardError({ code: 'invalid_expiry_month', message: "Your card's expiration month is invalid.", param: 'exp_month' });
  }
  const year = now.getUTCFullYear();
  if (expYear < year || expYear > year + 50) {
    throw cardError({ code: 'invalid_expiry_year', message: "Your card's expiration year is invalid.", param: 'exp_year' });
  }
  if (expYear === year && expMonth < now.getUTCMonth() + 1) {
    throw cardError({ code: 'invalid_expiry_month', message: "Your card's expiration month is invalid.", param: 'exp_month' });
  }
  if (card.cvc !== undefined && !/^\d{3,4}$/.test(card.cvc as string)) {
    throw cardError({ code: 'invalid_cvc', message: "Your card's security code is invalid.", param: 'cvc' });
  }
  return { testCard: resolved, expMonth, expYear, cvcProvided: card.cvc !== undefined };
}

function createPaymentMethod({ store, params: raw }: ApiContext): unknown {
  const params = checkParams(PAYMENT_METHOD_CREATE, raw);
  if (params.type === undefined) throw missingParameter('type');
  if (params.type !== 'card') {
    throw invalidRequest(`The emulator supports only PaymentMethods of type card, not ${String(params.type)}.`, { param: 'type' });
  }
  if (params.card === undefined) throw missingParameter('card');
  const card = cardFromParams(params.card as Params);
  const record: PaymentMethodRecord = {
    object: buildPaymentMethod({
      card: card.testCard,
      expMonth: card.expMonth,
      expYear: card.expYear,
      cvcProvided: card.cvcProvided,
      billingDetails: params.billing_details as BillingDetailsInput | undefined,
      metadata: metadataOf(params),
    }),
    card: card.testCard,
    magic: false,
    consumed: false,
  };
  if (params.allow_redisplay !== undefined) record.object.allow_redisplay = params.allow_redisplay as Stripe.PaymentMethod.AllowRedisplay;
  store.addPaymentMethod(record);
  return expandObject(store, record.object, params);
}

function retrievePaymentMethod({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(RETRIEVE_FIELDS, raw);
  return expandObject(store, paymentMethodOrMissing(store, id, 'payment_method', 404).object, params);
}

/**
 * Attaches a PaymentMethod to a Customer. Stripe validates the card on
 * attach, so declining test cards fail here; a magic test id attaches a
 * fresh copy, as Stripe's do.
 */
function attachPaymentMethod(store: Store, method: PaymentMethodRecord, customerId: string): PaymentMethodRecord {
  const behaviour = method.card.behaviour;
  if (behaviour.kind === 'decline' && behaviour.failsOnAttach) {
    throw cardError({ code: behaviour.code, declineCode: behaviour.declineCode, message: behaviour.message });
  }
  if (method.magic) {
    const card = method.object.card!;
    const copy: PaymentMethodRecord = {
      object: buildPaymentMethod({
        card: method.card,
        expMonth: card.exp_month,
        expYear: card.exp_year,
        cvcProvided: false,
        customer: customerId,
      }),
      card: method.card,
      magic: false,
      consumed: false,
    };
    store.addPaymentMethod(copy);
    return copy;
  }
  const owner = method.object.customer as string | null;
  if (owner === customerId) return method;
  if (owner !== null) {
    throw invalidRequest('The payment method you provided has already been attached to a customer.', { param: 'payment_method', saved: true });
  }
  if (method.consumed) {
    throw invalidRequest(
      'This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.',
      { param: 'payment_method', saved: true },
    );
  }
  method.object.customer = customerId;
  return method;
}

function attachPaymentMethodRoute({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams({ customer: str({ required: true }), expand }, raw);
  const method = paymentMethodOrMissing(store, id, 'payment_method', 404);
  customerOrMissing(store, params.customer as string, 'customer', 400);
  return expandObject(store, attachPaymentMethod(store, method, params.customer as string).object, params);
}

function detachPaymentMethodRoute({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(RETRIEVE_FIELDS, raw);
  const method = paymentMethodOrMissing(store, id, 'payment_method', 404);
  if (method.magic || method.object.customer === null) {
    throw invalidRequest(`The payment method ${id} is not attached to a customer so detachment is impossible.`, { saved: true });
  }
  method.object.customer = null;
  // A detached PaymentMethod cannot be used again, as in Stripe.
  method.consumed = true;
  return expandObject(store, method.object, params);
}

// ---------------------------------------------------------------------------
// Customers

const CUSTOMER_SEARCH: SearchResource<Stripe.Customer> = {
  name: 'customers',
  fields: {
    created: { type: 'number', get: (c) => c.created },
    email: { type: 'string', get: (c) => c.email },
    name: { type: 'string', get: (c) => c.name },
    phone: { type: 'string', get: (c) => c.phone },
  },
  metadata: (c) => c.metadata,
};

function createCustomer({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...CUSTOMER_FIELDS, payment_method: str() }, raw);
  const customer = buildCustomer({
    email: nullableString(params.email),
    name: nullableString(params.name),
    phone: nullableString(params.phone),
    description: nullableString(params.description),
    metadata: metadataOf(params),
  });
  const paymentMethodId = params.payment_method as string | undefined;
  const method = paymentMethodId === undefined ? undefined : paymentMethodOrMissing(store, paymentMethodId, 'payment_method', 400);
  const defaultPaymentMethod = nullableString((params.invoice_settings as Params | undefined)?.default_payment_method);
  store.addCustomer(customer);
  try {
    const attached = method ? attachPaymentMethod(store, method, customer.id) : undefined;
    if (defaultPaymentMethod !== null) {
      const usable = defaultPaymentMethod === paymentMethodId ? attached : store.paymentMethod(defaultPaymentMethod);
      if (!usable || usable.object.customer !== customer.id) {
        throw invalidRequest(
          `The customer does not have a payment method with the ID ${defaultPaymentMethod}. The payment method must be attached to the customer.`,
          { param: 'invoice_settings[default_payment_method]', saved: true },
        );
      }
      customer.invoice_settings.default_payment_method = usable.object.id;
    }
  } catch (error) {
    // The create fails as a whole, as in Stripe.
    store.customers.delete(customer.id);
    throw error;
  }
  return expandObject(store, customer, params);
}

function retrieveCustomer({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(RETRIEVE_FIELDS, raw);
  return expandObject(store, customerOrMissing(store, id, 'id', 404), params);
}

function updateCustomer({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(CUSTOMER_FIELDS, raw);
  const customer = customerOrMissing(store, id, 'id', 404);
  const defaultPaymentMethod = (params.invoice_settings as Params | undefined)?.default_payment_method;
  if (typeof defaultPaymentMethod === 'string' && store.paymentMethod(defaultPaymentMethod)?.object.customer !== id) {
    throw invalidRequest(
      `The customer does not have a payment method with the ID ${defaultPaymentMethod}. The payment method must be attached to the customer.`,
      { param: 'invoice_settings[default_payment_method]', saved: true },
    );
  }
  for (const field of ['email', 'name', 'phone', 'description'] as const) {
    if (field in params) customer[field] = nullableString(params[field]);
  }
  customer.metadata = updateMetadata(customer.metadata, params.metadata);
  if (defaultPaymentMethod !== undefined) customer.invoice_settings.default_payment_method = nullableString(defaultPaymentMethod);
  return expandObject(store, customer, params);
}

function listCustomers({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...LIST_FIELDS, email: str() }, raw);
  const email = params.email as string | undefined;
  const created = createdFilter(params);
  const body = paginate(store, store.customers.values(), params, '/v1/customers', 'customer', (c) =>
    created(c.created) && (email === undefined || c.email === email),
  );
  expandList(store, body, params, 'customer');
  return body;
}

function searchCustomers({ store, params: raw }: ApiContext): unknown {
  const params = checkParams(SEARCH_FIELDS, raw);
  const body = searchPage(store.customers.values(), params, '/v1/customers/search', CUSTOMER_SEARCH);
  expandList(store, body as { data: Stripe.Customer[] }, params, 'customer');
  return body;
}

// ---------------------------------------------------------------------------
// PaymentIntents

const PAYMENT_INTENT_SEARCH: SearchResource<Stripe.PaymentIntent> = {
  name: 'payment_intents',
  fields: {
    amount: { type: 'number', get: (pi) => pi.amount },
    created: { type: 'number', get: (pi) => pi.created },
    currency: { type: 'string', get: (pi) => pi.currency },
    customer: { type: 'string', get: (pi) => pi.customer as string | null },
    status: { type: 'string', get: (pi) => pi.status },
  },
  metadata: (pi) => pi.metadata,
};

/** The emulator charges cards only; other payment method types are refused rather than ignored. */
function checkCardOnly(types: string[] | undefined, param: string): void {
  for (const type of types ?? []) {
    if (type !== 'card') {
      throw invalidRequest(`The payment method type "${type}" is invalid. The emulator supports only card payments.`, { param });
    }
  }
}

function offSessionOf(value: Params[string] | undefined): boolean {
  return value === 'true' || value === 'one_off' || value === 'recurring';
}

function createPaymentIntent({ store, engine, params: raw, request }: ApiContext): unknown {
  const params = checkParams(PAYMENT_INTENT_CREATE, raw);
  const amount = params.amount as number;
  const currency = checkCurrency(params.currency as string);
  checkChargeAmount(amount, currency);
  const confirm = params.confirm === true;
  for (const onlyWithConfirm of ['off_session', 'return_url', 'error_on_requires_action'] as const) {
    if (params[onlyWithConfirm] !== undefined && !confirm) {
      throw invalidRequest(`You can only pass \`${onlyWithConfirm}\` when \`confirm\` is true.`, { param: onlyWithConfirm });
    }
  }
  const legacyTypes = params.payment_method_types as string[] | undefined;
  const allowedTypes = params.allowed_payment_method_types as string[] | undefined;
  if (legacyTypes !== undefined && (params.automatic_payment_methods !== undefined || allowedTypes !== undefined)) {
    throw invalidRequest(
      `You may only specify one of these parameters: ${params.automatic_payment_methods !== undefined ? 'automatic_payment_methods' : 'allowed_payment_method_types'}, payment_method_types.`,
      { param: 'payment_method_types' },
    );
  }
  checkCardOnly(legacyTypes ?? allowedTypes, legacyTypes ? 'payment_method_types' : 'allowed_payment_method_types');
  if (params.capture_method === 'manual' || params.confirmation_method === 'manual') {
    throw invalidRequest('The emulator supports only automatic capture and automatic confirmation.', {
      param: params.capture_method === 'manual' ? 'capture_method' : 'confirmation_method',
    });
  }
  // Since API version 2023-08-16 a PaymentIntent without payment_method_types accepts automatic payment methods.
  let automaticPaymentMethods: PaymentIntentRecord['object']['automatic_payment_methods'] = null;
  if (legacyTypes === undefined) {
    const apm = params.automatic_payment_methods as { enabled: boolean; allow_redirects?: 'always' | 'never' } | undefined;
    automaticPaymentMethods = apm
      ? { enabled: apm.enabled, ...(apm.enabled ? { allow_redirects: apm.allow_redirects ?? 'always' } : {}) }
      : { enabled: true, allow_redirects: 'always' };
  }
  const customerId = (params.customer as string | undefined) ?? null;
  if (customerId !== null) customerOrMissing(store, customerId, 'customer', 400);
  const paymentMethodId = (params.payment_method as string | undefined) ?? null;
  const method = paymentMethodId === null ? undefined : paymentMethodOrMissing(store, paymentMethodId, 'payment_method', 400);
  const requestThreeDSecure =
    ((params.payment_method_options as Params | undefined)?.card as Params | undefined)?.request_three_d_secure ?? 'automatic';
  const intent = buildPaymentIntent({
    amount,
    currency,
    customer: customerId,
    paymentMethod: paymentMethodId,
    description: nullableString(params.description),
    metadata: metadataOf(params),
    receiptEmail: nullableString(params.receipt_email),
    setupFutureUsage: (params.setup_future_usage as 'off_session' | 'on_session' | undefined) ?? null,
    statementDescriptor: nullableString(params.statement_descriptor),
    statementDescriptorSuffix: nullableString(params.statement_descriptor_suffix),
    automaticPaymentMethods,
    requestThreeDSecure: requestThreeDSecure as 'any' | 'automatic' | 'challenge',
  });
  if (allowedTypes !== undefined) intent.allowed_payment_method_types = allowedTypes;
  const excludedTypes = params.excluded_payment_method_types as string[] | undefined;
  if (excludedTypes !== undefined) intent.excluded_payment_method_types = excludedTypes;
  const record: PaymentIntentRecord = { object: intent };
  if (confirm) {
    const returnUrl = (params.return_url as string | undefined) ?? null;
    // Checked before the PaymentIntent exists: a create that cannot be confirmed creates nothing.
    engine.checkConfirmable(intent, returnUrl);
    if (!method) {
      throw invalidRequest(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
        { code: 'payment_intent_unexpected_state', param: 'payment_method' },
      );
    }
    engine.checkUsable(method, customerId);
    store.addPaymentIntent(record);
    engine.confirm(
      record,
      method,
      { offSession: offSessionOf(params.off_session), errorOnRequiresAction: params.error_on_requires_action === true, returnUrl },
      request,
    );
  } else {
    if (method) engine.checkUsable(method, customerId);
    store.addPaymentIntent(record);
  }
  return expandObject(store, intent, params);
}

function retrievePaymentIntent({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams({ ...RETRIEVE_FIELDS, client_secret: str() }, raw);
  return expandObject(store, paymentIntentOrMissing(store, id, 'intent', 404).object, params);
}

function confirmPaymentIntent({ store, engine, params: raw, request }: ApiContext, id: string): unknown {
  const params = checkParams(PAYMENT_INTENT_CONFIRM, raw);
  const record = paymentIntentOrMissing(store, id, 'intent', 404);
  const intent = record.object;
  const returnUrl = (params.return_url as string | undefined) ?? null;
  checkCardOnly(params.allowed_payment_method_types as string[] | undefined, 'allowed_payment_method_types');
  if (params.allowed_payment_method_types !== undefined) intent.allowed_payment_method_types = params.allowed_payment_method_types as string[];
  if (params.excluded_payment_method_types !== undefined) intent.excluded_payment_method_types = params.excluded_payment_method_types as string[];
  engine.checkConfirmable(intent, returnUrl);
  const paymentMethodId = (params.payment_method as string | undefined) ?? (intent.payment_method as string | null);
  if (paymentMethodId === null) {
    throw invalidRequest(
      "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
      { code: 'payment_intent_unexpected_state', param: 'payment_method', saved: true },
    );
  }
  const method = paymentMethodOrMissing(store, paymentMethodId, 'payment_method', 400);
  engine.checkUsable(method, intent.customer as string | null);
  if (params.receipt_email !== undefined) intent.receipt_email = nullableString(params.receipt_email);
  if (params.setup_future_usage !== undefined) {
    intent.setup_future_usage = (nullableString(params.setup_future_usage) as 'off_session' | 'on_session' | null);
  }
  const threeDS = ((params.payment_method_options as Params | undefined)?.card as Params | undefined)?.request_three_d_secure;
  if (typeof threeDS === 'string' && intent.payment_method_options?.card) {
    intent.payment_method_options.card.request_three_d_secure = threeDS as 'any' | 'automatic' | 'challenge';
  }
  engine.confirm(
    record,
    method,
    { offSession: offSessionOf(params.off_session), errorOnRequiresAction: params.error_on_requires_action === true, returnUrl },
    request,
  );
  return expandObject(store, intent, params);
}

function updatePaymentIntent({ store, engine, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(PAYMENT_INTENT_UPDATE, raw);
  const record = paymentIntentOrMissing(store, id, 'intent', 404);
  const intent = record.object;
  const changesPayment = ['amount', 'currency', 'customer', 'payment_method'].some((field) => field in params);
  if (changesPayment && !['requires_payment_method', 'requires_confirmation', 'requires_action'].includes(intent.status)) {
    throw invalidRequest(
      `You cannot update this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be updated: requires_payment_method, requires_confirmation, requires_action.`,
      { code: 'payment_intent_unexpected_state', saved: true },
    );
  }
  const currency = params.currency !== undefined ? checkCurrency(params.currency as string) : intent.currency;
  const amount = (params.amount as number | undefined) ?? intent.amount;
  if (params.amount !== undefined || params.currency !== undefined) checkChargeAmount(amount, currency);
  const customerId = params.customer !== undefined ? (params.customer as string) : (intent.customer as string | null);
  if (params.customer !== undefined) customerOrMissing(store, customerId!, 'customer', 400);
  if (params.payment_method !== undefined) {
    engine.checkUsable(paymentMethodOrMissing(store, params.payment_method as string, 'payment_method', 400), customerId);
  }
  intent.amount = amount;
  intent.currency = currency;
  intent.customer = customerId;
  if (params.payment_method !== undefined) {
    intent.payment_method = params.payment_method as string;
    intent.status = 'requires_confirmation';
    intent.next_action = null;
    delete record.pendingPaymentMethod;
  }
  if ('description' in params) intent.description = nullableString(params.description);
  if ('receipt_email' in params) intent.receipt_email = nullableString(params.receipt_email);
  if ('setup_future_usage' in params) intent.setup_future_usage = nullableString(params.setup_future_usage) as 'off_session' | 'on_session' | null;
  if ('statement_descriptor' in params) intent.statement_descriptor = nullableString(params.statement_descriptor);
  if ('statement_descriptor_suffix' in params) intent.statement_descriptor_suffix = nullableString(params.statement_descriptor_suffix);
  intent.metadata = updateMetadata(intent.metadata, params.metadata);
  return expandObject(store, intent, params);
}

function cancelPaymentIntent({ store, engine, params: raw, request }: ApiContext, id: string): unknown {
  const params = checkParams(PAYMENT_INTENT_CANCEL, raw);
  const record = paymentIntentOrMissing(store, id, 'intent', 404);
  const reason = (params.cancellation_reason as Stripe.PaymentIntent.CancellationReason | undefined) ?? null;
  return expandObject(store, engine.cancel(record, reason, request), params);
}

function* intentsOf(store: Store): Iterable<Stripe.PaymentIntent> {
  for (const record of store.paymentIntents.values()) yield record.object;
}

function listPaymentIntents({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...LIST_FIELDS, customer: str() }, raw);
  const customer = params.customer as string | undefined;
  const created = createdFilter(params);
  const body = paginate(store, intentsOf(store), params, '/v1/payment_intents', 'payment_intent', (pi) =>
    created(pi.created) && (customer === undefined || pi.customer === customer),
  );
  expandList(store, body, params, 'payment_intent');
  return body;
}

function searchPaymentIntents({ store, params: raw }: ApiContext): unknown {
  const params = checkParams(SEARCH_FIELDS, raw);
  const body = searchPage(intentsOf(store), params, '/v1/payment_intents/search', PAYMENT_INTENT_SEARCH);
  expandList(store, body as { data: Stripe.PaymentIntent[] }, params, 'payment_intent');
  return body;
}

// ---------------------------------------------------------------------------
// Charges and refunds

function createRefund({ store, engine, params: raw, request }: ApiContext): unknown {
  const params = checkParams(REFUND_CREATE, raw);
  let charge: Stripe.Charge | undefined;
  if (params.charge !== undefined) {
    charge = store.charges.get(params.charge as string);
    if (!charge) throw resourceMissing('charge', params.charge as string, 'charge', 400);
    if (params.payment_intent !== undefined && charge.payment_intent !== params.payment_intent) {
      throw invalidRequest('The charge does not belong to the given payment_intent.', { param: 'payment_intent', saved: true });
    }
  } else if (params.payment_intent !== undefined) {
    const intent = paymentIntentOrMissing(store, params.payment_intent as string, 'payment_intent', 400).object;
    const latest = typeof intent.latest_charge === 'string' ? store.charges.get(intent.latest_charge) : undefined;
    if (intent.status !== 'succeeded' || !latest) {
      throw invalidRequest(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, {
        param: 'payment_intent',
        saved: true,
      });
    }
    charge = latest;
  } else {
    throw invalidRequest('One of the following params should be provided for this request: charge or payment_intent.', {
      code: 'parameter_missing',
    });
  }
  const reason = (params.reason as Stripe.Refund.Reason | undefined) ?? null;
  const refund = engine.refund(charge, params.amount as number | undefined, reason, metadataOf(params), request);
  return expandObject(store, refund, params);
}

function retrieveRefund({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(RETRIEVE_FIELDS, raw);
  const refund = store.refunds.get(id);
  if (!refund) throw resourceMissing('refund', id, 'id', 404);
  return expandObject(store, refund, params);
}

function listRefunds({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...LIST_FIELDS, charge: str(), payment_intent: str() }, raw);
  const created = createdFilter(params);
  const body = paginate(store, store.refunds.values(), params, '/v1/refunds', 'refund', (r) =>
    created(r.created) &&
    (params.charge === undefined || r.charge === params.charge) &&
    (params.payment_intent === undefined || r.payment_intent === params.payment_intent),
  );
  expandList(store, body, params, 'refund');
  return body;
}

function retrieveCharge({ store, params: raw }: ApiContext, id: string): unknown {
  const params = checkParams(RETRIEVE_FIELDS, raw);
  const charge = store.charges.get(id);
  if (!charge) throw resourceMissing('charge', id, 'id', 404);
  return expandObject(store, charge, params);
}

function listCharges({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...LIST_FIELDS, customer: str(), payment_intent: str() }, raw);
  const created = createdFilter(params);
  const body = paginate(store, store.charges.values(), params, '/v1/charges', 'charge', (c) =>
    created(c.created) &&
    (params.customer === undefined || c.customer === params.customer) &&
    (params.payment_intent === undefined || c.payment_intent === params.payment_intent),
  );
  expandList(store, body, params, 'charge');
  return body;
}

// ---------------------------------------------------------------------------
// Events

function retrieveEvent({ store, params: raw }: ApiContext, id: string): unknown {
  checkParams(RETRIEVE_FIELDS, raw);
  const record = store.events.get(id);
  if (!record) throw resourceMissing('event', id, 'id', 404);
  return JSON.parse(record.payload) as unknown;
}

function listEvents({ store, params: raw }: ApiContext): unknown {
  const params = checkParams({ ...LIST_FIELDS, type: str(), types: { kind: 'array', of: str() } }, raw);
  const created = createdFilter(params);
  const types = params.types as string[] | undefined;
  const type = params.type as string | undefined;
  const matchesType = (candidate: string) =>
    (type === undefined || (type.endsWith('.*') ? candidate.startsWith(type.slice(0, -1)) : candidate === type)) &&
    (types === undefined || types.includes(candidate));
  const page = paginate(store, store.events.values(), params, '/v1/events', 'event', (e) => created(e.created) && matchesType(e.type));
  return { ...page, data: page.data.map((record) => JSON.parse(record.payload) as unknown) };
}

// ---------------------------------------------------------------------------

function route(method: 'GET' | 'POST', path: string, handle: Route['handle'], publishable = false): Route {
  return { method, segments: path.split('/'), handle, ...(publishable ? { publishable } : {}) };
}

/** Literal routes come before `:id` routes so `/payment_intents/search` is not an id. */
export const ROUTES: Route[] = [
  route('POST', 'payment_methods', createPaymentMethod, true),
  route('GET', 'payment_methods/:id', retrievePaymentMethod),
  route('POST', 'payment_methods/:id/attach', attachPaymentMethodRoute),
  route('POST', 'payment_methods/:id/detach', detachPaymentMethodRoute),
  route('POST', 'customers', createCustomer),
  route('GET', 'customers', listCustomers),
  route('GET', 'customers/search', searchCustomers),
  route('GET', 'customers/:id', retrieveCustomer),
  route('POST', 'customers/:id', updateCustomer),
  route('POST', 'payment_intents', createPaymentIntent),
  route('GET', 'payment_intents', listPaymentIntents),
  route('GET', 'payment_intents/search', searchPaymentIntents),
  route('GET', 'payment_intents/:id', retrievePaymentIntent),
  route('POST', 'payment_intents/:id', updatePaymentIntent),
  route('POST', 'payment_intents/:id/confirm', confirmPaymentIntent),
  route('POST', 'payment_intents/:id/cancel', cancelPaymentIntent),
  route('POST', 'refunds', createRefund),
  route('GET', 'refunds', listRefunds),
  route('GET', 'refunds/:id', retrieveRefund),
  route('GET', 'charges', listCharges),
  route('GET', 'charges/:id', retrieveCharge),
  route('GET', 'events', listEvents),
  route('GET', 'events/:id', retrieveEvent),
];

/** Finds the route for a method and the path segments after `/v1/`. */
export function findRoute(method: string, segments: string[]): { route: Route; id: string } | undefined {
  for (const candidate of ROUTES) {
    if (candidate.method !== method || candidate.segments.length !== segments.length) continue;
    let id = '';
    let matched = true;
    for (let i = 0; i < segments.length; i++) {
      const expected = candidate.segments[i]!;
      const actual = segments[i]!;
      if (expected === ':id') {
        if (actual === '') {
          matched = false;
          break;
        }
        id = actual;
      } else if (expected !== actual) {
        matched = false;
        break;
      }
    }
    if (matched) return { route: candidate, id };
  }
  return undefined;
}
