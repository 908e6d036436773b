/**
 * `stripe402 fetch URL`: a curl-like command that pays stripe402 challenges
 * within a budget. The resource body goes to stdout, byte for byte; a
 * payment summary (price, charge, credits remaining, the client id
 * redacted) and every error go to stderr, so the output pipes like curl's.
 *
 * Exit codes: 0 the server answered 2xx; 1 it answered something else (the
 * body is still printed); 2 usage error; 3 the server or Stripe could not be
 * reached; 4 the budget refused to pay, or there was nothing to pay with;
 * 5 the server refused the payment (declined card, authentication needed, ...).
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { currencyExponent, decodeHeaderObject, HEADER_PAYMENT, HEADER_PAYMENT_RESPONSE } from '@stripe402/core';
import { type BudgetOptions, type ChargeCaps, type UnitsLimit } from '@stripe402/client';
import { budgetFromJson, parseUnitsLimit } from '@stripe402/client';
import { parseCardText, type CardDetails } from '@stripe402/client';
import {
  AuthenticationRequiredError,
  BudgetExceededError,
  CardTokenizationError,
  PaymentMethodRequiredError,
  PaymentNetworkError,
  PaymentRefusedError,
  Stripe402ClientError,
} from '@stripe402/client';
import { Stripe402Client, type PaymentEvent } from '@stripe402/client';
import { formatMinor, formatUnits, redactClientId, redactPaymentMethodId } from '@stripe402/client';
import { defaultStorePath, JsonFileClientIdStore } from '@stripe402/client/node';

/** Exit codes of `stripe402 fetch`. */
export const FETCH_EXIT = Object.freeze({
  /** The server answered 2xx. */
  ok: 0,
  /** The server answered something else (the body is still printed), or the client gave up. */
  httpError: 1,
  /** The command line was wrong. */
  usage: 2,
  /** The server or the Stripe API could not be reached, or a response was cut off. */
  unreachable: 3,
  /** The budget refused to pay, or there was nothing to pay with. */
  refusedByBudget: 4,
  /** The server refused the payment (declined card, authentication needed, ...). */
  refusedByServer: 5,
});

interface FetchCliOptions {
  request?: string;
  header?: string[];
  data?: string[];
  pm?: string;
  budget?: string;
  maxPrice?: UnitsLimit;
  maxTopup?: UnitsLimit;
  topup?: UnitsLimit;
  originCapHour?: UnitsLimit;
  originCapDay?: UnitsLimit;
  originCap?: UnitsLimit;
  totalCapHour?: UnitsLimit;
  totalCapDay?: UnitsLimit;
  totalCap?: UnitsLimit;
  allowOrigin?: string[];
  denyOrigin?: string[];
  trustChargeAmounts?: boolean;
  store?: string | boolean;
  stripeUrl?: string;
  currency?: string[];
  allowHttp?: boolean;
  verbose?: boolean;
}

/** Where the CLI writes; the defaults are the process's streams (tests pass their own). */
export interface FetchCliIo {
  /** Where the response body goes. */
  stdout: NodeJS.WritableStream;
  /** Where the summary, the verbose log and errors go. */
  stderr: NodeJS.WritableStream;
  /** Where STRIPE402_PAYMENT_METHOD, STRIPE402_CARD, STRIPE402_STORE and STRIPE402_STRIPE_URL are read. */
  env: NodeJS.ProcessEnv;
  /** What `-d @-` reads. */
  stdin: NodeJS.ReadableStream;
}

/**
 * Runs `stripe402 fetch` with its arguments (everything after `fetch`).
 * Sets `process.exitCode` rather than exiting, so output is flushed.
 */
export async function runFetchCli(argv: string[], io: Partial<FetchCliIo> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const say = (line: string) => stderr.write(`stripe402: ${line}\n`);
  const code = await main(argv, { stdout, stderr, env, stdin: io.stdin ?? process.stdin }, say);
  process.exitCode = code;
  return code;
}

async function main(argv: string[], io: FetchCliIo, say: (line: string) => void): Promise<number> {
  const program = new Command('stripe402 fetch')
    .description('Fetch a URL, paying stripe402 challenges within a budget (curl-like): the body on stdout, a payment summary on stderr.')
    .argument('<url>', 'the URL to fetch')
    .option('-X, --request <method>', 'HTTP method (default GET, or POST with -d)')
    .option('-H, --header <line>', "request header 'Name: value' (repeatable)", collect)
    .option('-d, --data <body>', 'request body; @FILE reads a file, @- reads stdin (repeatable, joined with &)', collect)
    .option('--pm <id>', 'PaymentMethod to top up with (default: $STRIPE402_PAYMENT_METHOD)')
    .option('--budget <file>', 'a JSON budget file (docs/client.md); the flags below override its entries')
    .option('--max-price <limit>', 'highest price per request (default 10000)', limit)
    .option('--max-topup <limit>', 'largest top-up (default 100000)', limit)
    .option('--topup <limit>', "top-up to buy (default the server's minTopUp)", limit)
    .option('--origin-cap-hour <limit>', 'most charged per origin in any rolling hour', limit)
    .option('--origin-cap-day <limit>', 'most charged per origin in any rolling day (default 100000)', limit)
    .option('--origin-cap <limit>', 'most charged per origin overall', limit)
    .option('--total-cap-hour <limit>', 'most charged over all origins in any rolling hour', limit)
    .option('--total-cap-day <limit>', 'most charged over all origins in any rolling day (default 200000)', limit)
    .option('--total-cap <limit>', 'most charged over all origins overall', limit)
    .option('--allow-origin <origin>', 'pay only these origins (repeatable; https://*.example.com for subdomains)', collect)
    .option('--deny-origin <origin>', 'never pay these origins (repeatable)', collect)
    .option('--trust-charge-amounts', 'count charges in jpy, kwd, ... as the spec prescribes even when the server does not confirm them (stripe402 v1)')
    .option('--store [file]', `keep client ids in a JSON file (default file ${defaultStorePath()}; or $STRIPE402_STORE)`)
    .option('--stripe-url <url>', 'Stripe API base URL for tokenizing $STRIPE402_CARD (default $STRIPE402_STRIPE_URL or https://api.stripe.com)')
    .option('--currency <code>', 'preferred currency when several are offered (repeatable)', collect)
    .option('--allow-http', 'pay over plain http to hosts other than loopback')
    .option('-v, --verbose', 'log every request and payment decision to stderr')
    .addHelpText(
      'after',
      [
        '',
        'Limits are in units (1 unit = 1/10,000 of the currency: 10000 = $1.00 or 1 yen): one number for',
        "every currency, CURRENCY=N pairs (jpy=1000000,usd=50000; '*' for the others), or 'unlimited'.",
        "Caps count money charged, per currency. Giving any --origin-cap* (or --total-cap*) flag replaces that",
        'scope\'s default daily cap. Example, the demo\'s yen route:',
        '  stripe402 fetch http://127.0.0.1:4021/api/fortune --pm pm_card_visa --currency jpy \\',
        '    --max-topup jpy=1000000 --origin-cap-day jpy=1000000 --total-cap-day jpy=1000000 --trust-charge-amounts',
      ].join('\n'),
    )
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stderr.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  let url: string;
  let options: FetchCliOptions;
  try {
    program.parse(argv, { from: 'user' });
    url = program.args[0]!;
    options = program.opts<FetchCliOptions>();
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? FETCH_EXIT.ok : FETCH_EXIT.usage;
    }
    throw error;
  }

  let target: URL;
  try {
    target = new URL(url);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError('not http');
  } catch {
    say(`'${url}' is not an http(s) URL`);
    return FETCH_EXIT.usage;
  }

  const headers = new Headers();
  for (const line of options.header ?? []) {
    const colon = line.indexOf(':');
    if (colon <= 0) {
      say(`-H '${line}' is not 'Name: value'`);
      return FETCH_EXIT.usage;
    }
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      say(`-H '${line.slice(0, colon)}' is not a valid header`);
      return FETCH_EXIT.usage;
    }
  }

  let body: Uint8Array<ArrayBuffer> | undefined;
  if (options.data) {
    try {
      const parts = await Promise.all(options.data.map((d) => readData(d, io.stdin)));
      body = joinWithAmpersand(parts);
    } catch (error) {
      say(`cannot read the body: ${(error as Error).message}`);
      return FETCH_EXIT.usage;
    }
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded');
  }
  const method = (options.request ?? (body ? 'POST' : 'GET')).toUpperCase();

  const paymentMethodId = options.pm ?? (env(io, 'STRIPE402_PAYMENT_METHOD') || undefined);
  if (paymentMethodId !== undefined && !/^pm_[A-Za-z0-9_]+$/.test(paymentMethodId)) {
    say('--pm must be a PaymentMethod id (pm_...)');
    return FETCH_EXIT.usage;
  }
  let card: CardDetails | undefined;
  const cardText = env(io, 'STRIPE402_CARD');
  if (!paymentMethodId && cardText) {
    card = parseCardText(cardText);
    if (!card) {
      say('STRIPE402_CARD must be NUMBER:MM:YYYY[:CVC]');
      return FETCH_EXIT.usage;
    }
  }
  const stripeApiBase = options.stripeUrl ?? (env(io, 'STRIPE402_STRIPE_URL') || undefined);
  const storePath = typeof options.store === 'string' ? options.store : options.store === true ? defaultStorePath() : env(io, 'STRIPE402_STORE') || undefined;

  let budget: BudgetOptions;
  try {
    budget = options.budget ? budgetFromJson(JSON.parse(await readFile(options.budget, 'utf8')), options.budget) : {};
  } catch (error) {
    say(`cannot read --budget ${options.budget}: ${error instanceof SyntaxError ? `not JSON (${error.message})` : (error as Error).message}`);
    return FETCH_EXIT.usage;
  }
  applyBudgetFlags(budget, options);

  const verbose = options.verbose ? (line: string) => io.stderr.write(`* ${line}\n`) : undefined;
  const events: PaymentEvent[] = [];
  const loggingFetch: typeof fetch = async (input, init) => {
    if (verbose) logRequest(verbose, input, init);
    const response = await fetch(input, init);
    if (verbose) logResponse(verbose, response);
    return response;
  };

  const client = new Stripe402Client({
    fetch: loggingFetch,
    ...(paymentMethodId ? { paymentMethodId } : {}),
    ...(card ? { card } : {}),
    ...(stripeApiBase ? { stripeApiBase } : {}),
    ...(storePath ? { store: new JsonFileClientIdStore(storePath) } : {}),
    ...(options.currency ? { preferredCurrencies: options.currency.map((c) => c.toLowerCase()) } : {}),
    budget,
    onPayment: (event) => events.push(event),
  });
  verbose?.(
    `pay with ${paymentMethodId ? redactPaymentMethodId(paymentMethodId) : card ? 'a card from STRIPE402_CARD' : 'nothing (no --pm)'}; client ids ${storePath ? `in ${storePath}` : 'in memory'}`,
  );

  let response: Response;
  try {
    response = await client.fetch(target, { method, headers, ...(body ? { body } : {}) });
  } catch (error) {
    return explainFailure(error, say);
  }

  let endsWithNewline = true;
  try {
    endsWithNewline = await writeBody(response, io.stdout);
  } catch (error) {
    say(`the response body was cut off: ${(error as Error).message}`);
    return FETCH_EXIT.unreachable;
  }
  // On a terminal, start the summary on its own line, as the body may not end with one.
  if (!endsWithNewline && (io.stdout as { isTTY?: boolean }).isTTY && (io.stderr as { isTTY?: boolean }).isTTY) io.stderr.write('\n');
  for (const event of events) summarize(event, say);
  if (response.status >= 200 && response.status < 300) return FETCH_EXIT.ok;
  say(
    response.status === 402
      ? `HTTP 402: ${target.origin} asks for payment and this was not a stripe402 challenge the client could pay`
      : `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
  );
  return FETCH_EXIT.httpError;
}

function summarize(event: PaymentEvent, say: (line: string) => void): void {
  const parts = [`paid ${event.price} units (${formatUnits(event.price, event.currency)}) for ${event.method} ${event.url}`];
  if (event.chargedMinor !== undefined) {
    // A charge the server did not confirm in minor units is what the budget counted (UNIT-2, or its worst case).
    const unconfirmed = !event.chargeAmountConfirmed && currencyExponent(event.currency) !== 2 ? ' (as counted: the server did not confirm the amount)' : '';
    parts.push(`charged ${formatMinor(event.chargedMinor, event.currency)}${unconfirmed} for ${event.topUpAmount} units of credit${event.chargeId ? ` (${event.chargeId})` : ''}`);
  } else if (event.chargeUnconfirmed) {
    parts.push('a top-up may have been charged (a response was lost; it counts against the budget)');
  } else {
    parts.push('charged nothing');
  }
  if (event.creditsRemaining !== undefined) {
    parts.push(`credits remaining ${event.creditsRemaining} units (${formatUnits(event.creditsRemaining, event.currency)})`);
  }
  parts.push(`client id ${redactClientId(event.clientId)}`);
  if (event.status < 200 || event.status >= 300) parts.push(`HTTP ${event.status}`);
  say(parts.join('; '));
}

function explainFailure(error: unknown, say: (line: string) => void): number {
  if (error instanceof BudgetExceededError) {
    say(`${error.message}. Nothing was charged.`);
    return FETCH_EXIT.refusedByBudget;
  }
  if (error instanceof PaymentMethodRequiredError) {
    say(`${error.message}. Pass --pm pm_... or set STRIPE402_PAYMENT_METHOD.`);
    return FETCH_EXIT.refusedByBudget;
  }
  if (error instanceof AuthenticationRequiredError) {
    say(`${error.message.replace(/; call resume\(\) when it is done$/, '')}. Authenticate the card, then run the command again.`);
    return FETCH_EXIT.refusedByServer;
  }
  if (error instanceof PaymentRefusedError) {
    say(`${error.message}${error.serverMessage ? `: ${error.serverMessage}` : ''}`);
    return FETCH_EXIT.refusedByServer;
  }
  if (error instanceof PaymentNetworkError || error instanceof CardTokenizationError) {
    say(error.message);
    return FETCH_EXIT.unreachable;
  }
  if (error instanceof Stripe402ClientError) {
    say(error.message);
    return FETCH_EXIT.httpError;
  }
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause?.code;
  say(`the request failed: ${(error as Error)?.message ?? String(error)}${cause ? ` (${cause})` : ''}`);
  return FETCH_EXIT.unreachable;
}

function logRequest(log: (line: string) => void, input: RequestInfo | URL, init: RequestInit | undefined): void {
  const url = input instanceof Request ? input.url : String(input);
  log(`> ${init?.method ?? 'GET'} ${url}`);
  const payment = new Headers(init?.headers).get(HEADER_PAYMENT);
  if (payment === null) {
    log('> (no payment header)');
    return;
  }
  const decoded = decodeHeaderObject(payment);
  if (!decoded.ok) return;
  const p = decoded.value;
  const what: string[] = [];
  if (typeof p.clientId === 'string') what.push(`client id ${redactClientId(p.clientId)}`);
  if (typeof p.paymentMethodId === 'string') what.push(`top-up of ${String(p.topUpAmount)} units with ${redactPaymentMethodId(p.paymentMethodId)}`);
  if (typeof p.idempotencyKey === 'string') what.push(`idempotency key ${p.idempotencyKey.slice(0, 6)}…`);
  if (typeof p.paymentIntentId === 'string') what.push(`resuming ${p.paymentIntentId}`);
  if (typeof p.currency === 'string') what.push(`in ${p.currency}`);
  log(`> payment: ${what.join(', ')}`);
}

function logResponse(log: (line: string) => void, response: Response): void {
  log(`< ${response.status} ${response.statusText}`);
  const header = response.headers.get(HEADER_PAYMENT_RESPONSE);
  if (header === null) return;
  const decoded = decodeHeaderObject(header);
  if (!decoded.ok) {
    log('< payment-response: (undecodable)');
    return;
  }
  const r = decoded.value;
  const parts = [`success ${String(r.success)}`, `credits ${String(r.creditsRemaining)}`];
  if (typeof r.chargeId === 'string') parts.push(`charge ${r.chargeId}`);
  if (typeof r.errorCode === 'string') parts.push(`error ${r.errorCode}`);
  if (typeof r.clientId === 'string') parts.push(`client id ${redactClientId(r.clientId)}`);
  log(`< payment-response: ${parts.join(', ')}`);
}

/** Copies the body to `out`; says whether it ended with a newline. */
async function writeBody(response: Response, out: NodeJS.WritableStream): Promise<boolean> {
  if (!response.body) return true;
  let last = 0x0a;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (chunk.byteLength === 0) continue;
    last = chunk[chunk.byteLength - 1]!;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  return last === 0x0a;
}

async function readData(spec: string, stdin: NodeJS.ReadableStream): Promise<Uint8Array> {
  if (spec === '@-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks);
  }
  if (spec.startsWith('@')) return readFile(spec.slice(1));
  return new TextEncoder().encode(spec);
}

function joinWithAmpersand(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  parts.forEach((part, i) => {
    if (i > 0) chunks.push(new Uint8Array([0x26]));
    chunks.push(part);
  });
  return Buffer.concat(chunks);
}


function env(io: FetchCliIo, name: string): string | undefined {
  return io.env[name];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function limit(value: string): UnitsLimit {
  try {
    return parseUnitsLimit(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** Lays the budget flags over a budget (read from --budget, or empty). */
function applyBudgetFlags(budget: BudgetOptions, options: FetchCliOptions): void {
  if (options.maxPrice !== undefined) budget.maxPricePerRequest = options.maxPrice;
  if (options.maxTopup !== undefined) budget.maxTopUp = options.maxTopup;
  if (options.topup !== undefined) budget.topUpTarget = options.topup;
  const caps = (hour: UnitsLimit | undefined, day: UnitsLimit | undefined, overall: UnitsLimit | undefined, base: ChargeCaps | undefined) => {
    if (hour === undefined && day === undefined && overall === undefined) return base;
    return { ...base, ...(hour !== undefined ? { perHour: hour } : {}), ...(day !== undefined ? { perDay: day } : {}), ...(overall !== undefined ? { overall } : {}) };
  };
  const perOrigin = caps(options.originCapHour, options.originCapDay, options.originCap, budget.perOrigin);
  if (perOrigin) budget.perOrigin = perOrigin;
  const total = caps(options.totalCapHour, options.totalCapDay, options.totalCap, budget.total);
  if (total) budget.total = total;
  if (options.allowOrigin) budget.allowedOrigins = options.allowOrigin;
  if (options.denyOrigin) budget.deniedOrigins = options.denyOrigin;
  if (options.allowHttp) budget.allowInsecureHttp = true;
  if (options.trustChargeAmounts) budget.unconfirmedCharges = 'as-specified';
}
