/**
 * stripe-mock (Stripe's stateless API mock) as the Stripe backend of a
 * server under test. stripe-mock keeps nothing: every answer is its one
 * fixture per resource with the request's scalar parameters (amount,
 * currency, customer, payment_method, description) written into it, never
 * `metadata`, and by default a confirmed PaymentIntent comes back
 * `requires_payment_method`. So a server that checks the PaymentIntent it
 * gets (Table 8.2) can credit nothing there, and the suite's spending checks
 * cannot run. `stripeMockFixtures` writes the fixtures file
 * (`stripe-mock -fixtures FILE`) that makes its one PaymentIntent a
 * succeeded top-up of one size for the client id of its one card
 * fingerprint: with it, every top-up of that size succeeds and every other
 * size is, rightly, refused. `stripe402 stripe-mock-fixtures` is its command;
 * `startStripeMock` runs the binary for the project's tests.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { deriveClientId, isStrongServerSecret, unitsToMinor, SERVER_SECRET_MIN_BYTES } from '@stripe402/core';
import { resolveTarget } from './context.ts';
import { HttpTransport } from './http.ts';

/** The card fingerprint of every PaymentMethod the fixtures describe (stripe-mock gives every card the same one). */
export const STRIPE_MOCK_FINGERPRINT = 'stripe402MockCard';

/** The metadata keys of a stripe402 top-up (Table 8.2). */
const CLIENT_ID = 'stripe402_client_id';
const UNITS = 'stripe402_units';
const CURRENCY = 'stripe402_currency';

export interface StripeMockFixtureOptions {
  /** The target's client-id secret (CID-1): the fixtures name the client id it derives from the one fingerprint. */
  serverSecret: string;
  /** The currency of the top-up, lower case. */
  currency: string;
  /** The size of the one top-up that succeeds, in units (the route's minTopUp, which a top-up without topUpAmount charges). */
  units: number;
  /** The card fingerprint; default STRIPE_MOCK_FINGERPRINT. */
  fingerprint?: string;
  /** Unix seconds of the objects' `created`; default now. */
  createdSeconds?: number;
}

/** The fixtures stripe-mock needs to answer a stripe402 server, as its `-fixtures` file wants them (a whole replacement of its own). */
export interface StripeMockFixtures {
  resources: { payment_intent: Record<string, unknown>; payment_method: Record<string, unknown>; customer: Record<string, unknown> };
}

/** The fixtures for one succeeding top-up size; throws RangeError on a weak secret or an impossible top-up. */
export async function stripeMockFixtures(options: StripeMockFixtureOptions): Promise<StripeMockFixtures> {
  if (!isStrongServerSecret(options.serverSecret)) throw new RangeError(`the server secret must be at least ${SERVER_SECRET_MIN_BYTES} bytes (CID-2)`);
  if (!/^[a-z]{3}$/.test(options.currency)) throw new RangeError(`the currency must be three lower-case letters, not ${options.currency}`);
  if (!Number.isSafeInteger(options.units) || options.units < 1) throw new RangeError(`the top-up must be a positive whole number of units, not ${options.units}`);
  const fingerprint = options.fingerprint ?? STRIPE_MOCK_FINGERPRINT;
  const clientId = await deriveClientId(options.serverSecret, fingerprint);
  const minor = unitsToMinor(options.units, options.currency);
  const created = options.createdSeconds ?? Math.floor(Date.now() / 1000);
  return {
    resources: {
      // Keys present here are the ones stripe-mock can overwrite from a request (amount, currency, customer, ...).
      payment_intent: {
        id: 'pi_stripe402mock',
        object: 'payment_intent',
        amount: minor,
        amount_capturable: 0,
        amount_received: minor,
        canceled_at: null,
        cancellation_reason: null,
        capture_method: 'automatic',
        client_secret: 'pi_stripe402mock_secret_stripe402mock',
        confirmation_method: 'automatic',
        created,
        currency: options.currency,
        customer: null,
        description: null,
        last_payment_error: null,
        latest_charge: null,
        livemode: false,
        metadata: { [CLIENT_ID]: clientId, [UNITS]: String(options.units), [CURRENCY]: options.currency },
        next_action: null,
        payment_method: null,
        payment_method_types: ['card'],
        setup_future_usage: null,
        status: 'succeeded',
      },
      payment_method: {
        id: 'pm_stripe402mock',
        object: 'payment_method',
        billing_details: { address: null, email: null, name: null, phone: null },
        card: {
          brand: 'visa',
          checks: null,
          country: 'US',
          exp_month: 12,
          exp_year: 2034,
          fingerprint,
          funding: 'credit',
          last4: '4242',
          networks: null,
          three_d_secure_usage: null,
          wallet: null,
        },
        created,
        customer: null,
        livemode: false,
        metadata: {},
        type: 'card',
      },
      customer: {
        id: 'cus_stripe402mock',
        object: 'customer',
        balance: 0,
        created,
        delinquent: false,
        description: null,
        email: null,
        invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
        livemode: false,
        metadata: { [CLIENT_ID]: clientId },
        name: null,
        preferred_locales: [],
        tax_exempt: 'none',
      },
    },
  };
}

/** Where the project's tests look for a stripe-mock binary: STRIPE_MOCK_BIN, else beside the repository. */
export function stripeMockBinary(): string | undefined {
  const candidate = process.env.STRIPE_MOCK_BIN || path.resolve(fileURLToPath(new URL('..', import.meta.url)), '../shared/tools/stripe-mock/stripe-mock');
  return existsSync(candidate) ? candidate : undefined;
}

export interface RunningStripeMock {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts stripe-mock on free loopback ports (HTTP, and the HTTPS listener it
 * would otherwise open on every interface at 12112), with a fixtures file
 * when given, and resolves once it listens.
 */
export async function startStripeMock(binary: string, fixturesFile?: string): Promise<RunningStripeMock> {
  const args = ['-http-addr', '127.0.0.1:', '-https-addr', '127.0.0.1:', ...(fixturesFile ? ['-fixtures', fixturesFile] : [])];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`stripe-mock did not start within 20 s: ${output}`)), 20_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill();
      reject(error);
    };
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const found = /Listening for HTTP at address: (\S+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(`http://${found[1]}`);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`stripe-mock exited with ${code}: ${output}`)));
  });
  return {
    url,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}

/**
 * `stripe402 stripe-mock-fixtures`: prints (or writes) the fixtures file for
 * a target, from its challenge (`--target`) or from `--currency` and
 * `--top-up`. The server secret comes from STRIPE402_SERVER_SECRET, never a
 * flag that would land in shell history.
 */
export async function runStripeMockFixturesCli(argv: string[]): Promise<number> {
  const positive = (value: string): number => {
    if (!/^[1-9][0-9]*$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected a positive whole number of units');
    return Number(value);
  };
  const program = new Command('stripe402 stripe-mock-fixtures')
    .description('Write the stripe-mock -fixtures file with which a top-up of one size succeeds for the target.')
    .option('--target <url>', "a paid resource (or a base URL whose discovery lists one): the top-up is its first offer's minTopUp")
    .option('--currency <code>', 'the currency of the top-up (without --target)')
    .option('--top-up <units>', 'the top-up that succeeds, in units (without --target)', positive)
    .option('--out <file>', 'write to this file instead of standard output')
    .addHelpText('after', "\nEnvironment: STRIPE402_SERVER_SECRET, the target's client-id secret (required).")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode ?? 2;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{ target?: string; currency?: string; topUp?: number; out?: string }>();
  const usage = (message: string) => Object.assign(new Error(message), { exitCode: 2 });
  const serverSecret = process.env.STRIPE402_SERVER_SECRET;
  if (!serverSecret) throw usage('STRIPE402_SERVER_SECRET is required: the client id in the fixtures is derived from it');
  let currency = opts.currency?.toLowerCase();
  let units = opts.topUp;
  if (opts.target) {
    if (currency !== undefined || units !== undefined) throw usage('give --target, or --currency with --top-up, not both');
    const url = new URL(opts.target);
    const transport = new HttpTransport(new URL(url.origin), 10_000);
    try {
      const target = await resolveTarget(transport, url);
      if (!target.route) throw usage(`${opts.target} answered no decodable challenge`);
      currency = target.route.accept.currency;
      units = target.route.accept.minTopUp;
    } finally {
      transport.close();
    }
  } else if (currency === undefined || units === undefined) {
    throw usage('give --target, or --currency with --top-up');
  }
  let fixtures;
  try {
    fixtures = await stripeMockFixtures({ serverSecret, currency, units });
  } catch (error) {
    throw error instanceof RangeError ? usage(error.message) : error;
  }
  const text = JSON.stringify(fixtures, null, 2) + '\n';
  if (opts.out) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(opts.out, text);
  } else {
    process.stdout.write(text);
  }
  return 0;
}
