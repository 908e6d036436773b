/**
 * `stripe402 serve` (the reference server and demo API) and `stripe402
 * reconcile` (credit succeeded top-ups the ledger missed, LEDG-6). Options
 * come from flags, secrets from the environment, never from flags that
 * would land in shell history.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { createStripeClient, StripeSdkGateway } from '@stripe402/server';
import { openLedger } from '@stripe402/server/ledger';
import { jsonLogger } from '@stripe402/server';
import { parseSince, reconcile } from '@stripe402/server';
import type { PaidRouteConfig } from '@stripe402/server';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, startServer } from './standalone.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}

function readRoutes(file: string): PaidRouteConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`--routes ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!Array.isArray(json)) throw new Error(`--routes ${file}: expected a JSON array of routes`);
  return json as PaidRouteConfig[];
}

/** `stripe402 serve [options]`: runs until SIGINT or SIGTERM, then finishes in-flight requests and closes. */
export async function runServeCli(argv: string[]): Promise<void> {
  const program = new Command('stripe402 serve')
    .description('Run the stripe402 reference server with the demo paid API.')
    .option('--port <port>', 'port to listen on (0: any free port)', port, Number(process.env.PORT) || DEFAULT_PORT)
    .option('--host <host>', 'address to bind', DEFAULT_HOST)
    .option('--ledger <url>', 'ledger: pglite:DIR, pglite:memory, postgres://..., redis://... (default pglite:<data-dir>/ledger)')
    .option('--ledger-schema <name>', 'PostgreSQL/PGlite schema of the ledger')
    .option('--ledger-prefix <prefix>', 'Redis key prefix of the ledger')
    .option('--data-dir <dir>', 'where the embedded ledger and the test-mode server secret live', DEFAULT_DATA_DIR)
    .option('--stripe-url <url>', 'a Stripe-compatible API (emulator, stripe-mock); default api.stripe.com, or an in-process emulator without STRIPE_SECRET_KEY')
    .option('--routes <file>', 'JSON list of paid routes ({method, path, amount, currency, minTopUp, maxTopUp?, description?} or {method, path, accepts: [...]})')
    .option('--webhook-secret <secret>', 'Stripe webhook signing secret (or STRIPE_WEBHOOK_SECRET)')
    .option('--return-url <url>', 'return_url of PaymentIntents, so Stripe offers a card-authentication URL')
    .option('--quiet', 'no request logs')
    .addHelpText(
      'after',
      '\nEnvironment: STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE402_SERVER_SECRET (32+ bytes; required with live keys), STRIPE_WEBHOOK_SECRET.\nWithout STRIPE_SECRET_KEY and --stripe-url, the Stripe emulator runs in-process (test mode).',
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode ?? 2;
    process.exit(code === 0 ? 0 : 2);
  }
  const opts = program.opts<{
    port: number;
    host: string;
    ledger?: string;
    ledgerSchema?: string;
    ledgerPrefix?: string;
    dataDir: string;
    stripeUrl?: string;
    routes?: string;
    webhookSecret?: string;
    returnUrl?: string;
    quiet?: boolean;
  }>();
  const env = process.env;
  const log = jsonLogger();
  const server = await startServer({
    port: opts.port,
    host: opts.host,
    dataDir: opts.dataDir,
    ...(opts.ledger ? { ledger: opts.ledger } : {}),
    ...(opts.ledgerSchema ? { ledgerSchema: opts.ledgerSchema } : {}),
    ...(opts.ledgerPrefix ? { ledgerKeyPrefix: opts.ledgerPrefix } : {}),
    ...(opts.stripeUrl ? { stripeUrl: opts.stripeUrl } : {}),
    ...(env.STRIPE_SECRET_KEY ? { stripeSecretKey: env.STRIPE_SECRET_KEY } : {}),
    ...(env.STRIPE_PUBLISHABLE_KEY ? { stripePublishableKey: env.STRIPE_PUBLISHABLE_KEY } : {}),
    ...(env.STRIPE402_SERVER_SECRET ? { serverSecret: env.STRIPE402_SERVER_SECRET } : {}),
    ...((opts.webhookSecret ?? env.STRIPE_WEBHOOK_SECRET) ? { webhookSecret: opts.webhookSecret ?? env.STRIPE_WEBHOOK_SECRET } : {}),
    ...(opts.routes ? { routes: readRoutes(opts.routes) } : {}),
    ...(opts.returnUrl ? { returnUrl: opts.returnUrl } : {}),
    log: opts.quiet ? false : log,
  });

  if (server.emulator) {
    const bar = '='.repeat(72);
    process.stderr.write(
      [
        bar,
        '  TEST MODE: no STRIPE_SECRET_KEY, so payments go to the in-process Stripe emulator',
        `  at ${server.emulator.url}. No real card is ever charged.`,
        '  Pay with a test PaymentMethod such as pm_card_visa.',
        bar,
        '',
      ].join('\n'),
    );
  }
  log({
    msg: 'listening',
    url: server.url,
    testMode: server.testMode,
    routes: server.engine.routes.routes.map((r) => r.key),
    discovery: `${server.url}/.well-known/stripe402`,
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log({ msg: 'shutting down', signal });
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      // A second signal while draining exits at once.
      process.once('SIGINT', () => process.exit(130));
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      server.close().then(resolve, resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  log({ msg: 'stopped' });
}

/** `stripe402 reconcile --ledger URL [--stripe-url URL] [--since 24h]`: prints what it credited; exit 0 on success. */
export async function runReconcileCli(argv: string[]): Promise<void> {
  const program = new Command('stripe402 reconcile')
    .description('Credit succeeded stripe402 top-ups (PaymentIntents with stripe402 metadata) that the ledger missed.')
    .requiredOption('--ledger <url>', 'ledger URL: pglite:DIR, postgres://..., redis://...')
    .option('--ledger-schema <name>', 'PostgreSQL/PGlite schema of the ledger')
    .option('--ledger-prefix <prefix>', 'Redis key prefix of the ledger')
    .option('--stripe-url <url>', 'a Stripe-compatible API (the emulator); default api.stripe.com')
    .option('--since <window>', 'how far back to scan: 30m, 24h, 7d or an ISO date', '24h')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nEnvironment: STRIPE_SECRET_KEY (defaults to sk_test_emulator with --stripe-url).')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode ?? 2;
    process.exit(code === 0 ? 0 : 2);
  }
  const opts = program.opts<{ ledger: string; ledgerSchema?: string; ledgerPrefix?: string; stripeUrl?: string; since: string; json?: boolean }>();
  const since = parseSince(opts.since);
  const secretKey = process.env.STRIPE_SECRET_KEY ?? (opts.stripeUrl ? 'sk_test_emulator' : undefined);
  if (!secretKey) throw new Error('STRIPE_SECRET_KEY is required (or --stripe-url for an emulator)');
  const gateway = new StripeSdkGateway(createStripeClient(secretKey, opts.stripeUrl ? { apiUrl: opts.stripeUrl } : {}));
  const ledger = await openLedger(opts.ledger, {
    ...(opts.ledgerSchema ? { schema: opts.ledgerSchema } : {}),
    ...(opts.ledgerPrefix ? { keyPrefix: opts.ledgerPrefix } : {}),
  });
  try {
    const report = await reconcile({ gateway, ledger }, { since });
    if (opts.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    } else {
      process.stdout.write(
        `scanned ${report.scanned} succeeded stripe402 PaymentIntents since ${report.since}: ` +
          `${report.credited.length} credited now, ${report.alreadyCredited} already credited, ${report.ignored.length} ignored\n`,
      );
      for (const id of report.credited) process.stdout.write(`  credited ${id}\n`);
      for (const { paymentIntentId, reason } of report.ignored) process.stdout.write(`  ignored ${paymentIntentId}: ${reason}\n`);
    }
  } finally {
    await ledger.close();
  }
}
