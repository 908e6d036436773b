/**
 * `stripe402 serve` (the reference server and demo API) and `stripe402
 * reconcile` (credit succeeded top-ups the ledger missed, LEDG-6). Options
 * come from flags; secrets come from the environment or from files, never
 * from flags, which land in shell history and in every user's `ps`.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createStripeClient, StripeSdkGateway } from '@stripe402/server';
import { openLedger } from '@stripe402/server/ledger';
import { parseRateLimitSetting, type RateLimitOptions } from '@stripe402/server';
import { jsonLogger } from '@stripe402/server';
import { deploymentIdOf, parseSince, reconcile } from '@stripe402/server';
import type { PaidRouteConfig } from '@stripe402/server';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, startServer } from './standalone.ts';

/** Parses a subcommand's arguments; help exits 0, any usage error exits 2 (commander has printed why). */
function parseOrExit(program: Command, argv: string[]): void {
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode ?? 2;
    process.exit(code === 0 ? 0 : 2);
  }
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}

function rateLimitSetting(value: string, previous: RateLimitOptions): RateLimitOptions {
  try {
    return parseRateLimitSetting(value, previous);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
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

/** A secret kept in a file (one line; surrounding whitespace ignored). */
function readSecretFile(flag: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read the file'}`);
  }
  const secret = text.trim();
  if (secret === '') throw new Error(`${flag} ${file}: the file is empty`);
  return secret;
}

/**
 * A flag that once carried a secret: still recognized, so that its use gets
 * a clear refusal rather than "unknown option", and its value (which
 * commander would quote back) is never printed.
 */
function retiredSecretFlag(flag: string): Option {
  return new Option(`${flag} <secret>`).hideHelp().argParser(() => true);
}

/** `stripe402 serve [options]`: runs until SIGINT or SIGTERM, then finishes in-flight requests and closes. */
export async function runServeCli(argv: string[]): Promise<void> {
  const program = new Command('stripe402 serve')
    .description('Run the stripe402 reference server with the demo paid API.')
    .option('--port <port>', 'port to listen on (0: any free port)', port, Number(process.env.PORT) || DEFAULT_PORT)
    .option('--host <host>', 'address to bind (test mode: loopback only, unless --public-test-mode)', DEFAULT_HOST)
    .option('--public-test-mode', 'let test mode (no live key) listen on a non-loopback address: a shared demo that handles no real money')
    .option('--trusted-proxy <address>', 'a reverse proxy in front of this server that terminates TLS (repeatable); required for live keys on a non-loopback address; its X-Forwarded-For names the client for the rate limits', (value: string, list: string[]) => [...list, value], [] as string[])
    .option('--ledger <url>', 'ledger: pglite:DIR, pglite:memory, postgres://..., redis://..., redis-cluster://host:port,... (default pglite:<data-dir>/ledger)')
    .option('--ledger-schema <name>', 'PostgreSQL/PGlite schema of the ledger')
    .option('--ledger-prefix <prefix>', 'Redis key prefix of the ledger')
    .option('--data-dir <dir>', 'where the embedded ledger and the test-mode server secret live', DEFAULT_DATA_DIR)
    .option('--stripe-url <url>', 'a Stripe-compatible API (emulator, stripe-mock); default api.stripe.com, or an in-process emulator without STRIPE_SECRET_KEY')
    .option('--routes <file>', 'JSON list of paid routes ({method, path, amount, currency, minTopUp, maxTopUp?, description?} or {method, path, accepts: [...]})')
    .option('--webhook-secret-file <file>', 'file holding the Stripe webhook signing secret (or STRIPE_WEBHOOK_SECRET)')
    .option('--server-secret-file <file>', 'file holding the server secret (or STRIPE402_SERVER_SECRET)')
    .addOption(retiredSecretFlag('--webhook-secret'))
    .option('--return-url <url>', 'return_url of PaymentIntents, so Stripe offers a card-authentication URL')
    .option('--quiet', 'no request logs')
    .option('--rate-limit <setting>', 'NAME=BURST/PER_MINUTE or NAME=off, NAME one of unpaid-client-ids, charge-attempts-per-source, charge-attempts-per-card, stripe-calls; repeatable (docs/rate-limits.md)', rateLimitSetting, {} as RateLimitOptions)
    .option('--no-rate-limits', 'turn every rate limit off (only for load tests from trusted clients)')
    .addHelpText(
      'after',
      '\nEnvironment: STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE402_SERVER_SECRET (32+ random bytes; required with live keys), STRIPE_WEBHOOK_SECRET.\nWithout STRIPE_SECRET_KEY and --stripe-url, the Stripe emulator runs in-process (test mode: loopback only, never with NODE_ENV=production).\nDeployment checklist: docs/operations.md.',
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  parseOrExit(program, argv);
  const opts = program.opts<{
    port: number;
    host: string;
    ledger?: string;
    ledgerSchema?: string;
    ledgerPrefix?: string;
    dataDir: string;
    stripeUrl?: string;
    routes?: string;
    webhookSecret?: true;
    webhookSecretFile?: string;
    serverSecretFile?: string;
    publicTestMode?: boolean;
    trustedProxy: string[];
    returnUrl?: string;
    quiet?: boolean;
    rateLimit: RateLimitOptions;
    rateLimits: boolean;
  }>();
  if (opts.webhookSecret) {
    process.stderr.write('stripe402 serve: --webhook-secret: secrets are not taken from flags (shell history, ps); use STRIPE_WEBHOOK_SECRET or --webhook-secret-file\n');
    process.exit(2);
  }
  const env = process.env;
  const log = jsonLogger();
  const webhookSecret = opts.webhookSecretFile ? readSecretFile('--webhook-secret-file', opts.webhookSecretFile) : env.STRIPE_WEBHOOK_SECRET;
  const serverSecret = opts.serverSecretFile ? readSecretFile('--server-secret-file', opts.serverSecretFile) : env.STRIPE402_SERVER_SECRET;
  const server = await startServer({
    port: opts.port,
    host: opts.host,
    ...(opts.publicTestMode ? { publicTestMode: true } : {}),
    ...(opts.trustedProxy.length > 0 ? { trustedProxies: opts.trustedProxy } : {}),
    dataDir: opts.dataDir,
    ...(opts.ledger ? { ledger: opts.ledger } : {}),
    ...(opts.ledgerSchema ? { ledgerSchema: opts.ledgerSchema } : {}),
    ...(opts.ledgerPrefix ? { ledgerKeyPrefix: opts.ledgerPrefix } : {}),
    ...(opts.stripeUrl ? { stripeUrl: opts.stripeUrl } : {}),
    ...(env.STRIPE_SECRET_KEY ? { stripeSecretKey: env.STRIPE_SECRET_KEY } : {}),
    ...(env.STRIPE_PUBLISHABLE_KEY ? { stripePublishableKey: env.STRIPE_PUBLISHABLE_KEY } : {}),
    ...(serverSecret ? { serverSecret } : {}),
    ...(webhookSecret ? { webhookSecret } : {}),
    ...(opts.routes ? { routes: readRoutes(opts.routes) } : {}),
    ...(opts.returnUrl ? { returnUrl: opts.returnUrl } : {}),
    rateLimits: opts.rateLimits ? opts.rateLimit : false,
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
    deploymentId: server.deploymentId,
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

/**
 * `stripe402 reconcile --ledger URL [--stripe-url URL] [--since 24h]`:
 * prints what it credited; exit 0 on success. It credits only this
 * deployment's PaymentIntents (LEDG-9), named by `--deployment` (the public
 * id `serve` logs at start-up) or derived from the server secret.
 */
export async function runReconcileCli(argv: string[]): Promise<void> {
  const program = new Command('stripe402 reconcile')
    .description('Credit succeeded stripe402 top-ups (PaymentIntents with stripe402 metadata) that the ledger missed.')
    .requiredOption('--ledger <url>', 'ledger URL: pglite:DIR, postgres://..., redis://..., redis-cluster://host:port,...')
    .option('--ledger-schema <name>', 'PostgreSQL/PGlite schema of the ledger')
    .option('--ledger-prefix <prefix>', 'Redis key prefix of the ledger')
    .option('--stripe-url <url>', 'a Stripe-compatible API (the emulator); default api.stripe.com')
    .option('--since <window>', 'how far back to scan: 30m, 24h, 7d or an ISO date', '24h')
    .option('--deployment <id>', "this deployment's public id (the deploymentId `stripe402 serve` logs); default: derived from the server secret")
    .option('--server-secret-file <file>', 'file holding the server secret (or STRIPE402_SERVER_SECRET), to derive the deployment id')
    .option('--include-unlabelled', 'also credit PaymentIntents that name no deployment (made before deployment ids): only if this was the only stripe402 deployment on the Stripe account then')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nEnvironment: STRIPE_SECRET_KEY (defaults to sk_test_emulator with --stripe-url), STRIPE402_SERVER_SECRET.\nOnly PaymentIntents whose stripe402_deployment metadata names this deployment are credited.',
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  parseOrExit(program, argv);
  const opts = program.opts<{
    ledger: string;
    ledgerSchema?: string;
    ledgerPrefix?: string;
    stripeUrl?: string;
    since: string;
    deployment?: string;
    serverSecretFile?: string;
    includeUnlabelled?: boolean;
    json?: boolean;
  }>();
  const since = parseSince(opts.since);
  const serverSecret = opts.serverSecretFile ? readSecretFile('--server-secret-file', opts.serverSecretFile) : process.env.STRIPE402_SERVER_SECRET;
  const deploymentId = opts.deployment ?? (serverSecret ? deploymentIdOf(serverSecret) : undefined);
  if (!deploymentId) {
    throw new Error('reconcile credits only this deployment\'s top-ups: give --deployment ID (logged by `stripe402 serve` at start-up), STRIPE402_SERVER_SECRET or --server-secret-file');
  }
  if (!/^[0-9a-f]{24}$/.test(deploymentId)) throw new Error(`--deployment: expected the 24 hex digits that \`stripe402 serve\` logs, got '${deploymentId}'`);
  const secretKey = process.env.STRIPE_SECRET_KEY ?? (opts.stripeUrl ? 'sk_test_emulator' : undefined);
  if (!secretKey) throw new Error('STRIPE_SECRET_KEY is required (or --stripe-url for an emulator)');
  const gateway = new StripeSdkGateway(createStripeClient(secretKey, opts.stripeUrl ? { apiUrl: opts.stripeUrl } : {}));
  const ledger = await openLedger(opts.ledger, {
    ...(opts.ledgerSchema ? { schema: opts.ledgerSchema } : {}),
    ...(opts.ledgerPrefix ? { keyPrefix: opts.ledgerPrefix } : {}),
  });
  try {
    const report = await reconcile({ gateway, ledger }, { since, deploymentId, ...(opts.includeUnlabelled ? { includeUnlabelled: true } : {}) });
    if (opts.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    } else {
      process.stdout.write(
        `scanned ${report.scanned} succeeded stripe402 PaymentIntents since ${report.since} for deployment ${report.deploymentId}: ` +
          `${report.credited.length} credited now, ${report.alreadyCredited} already credited, ${report.otherDeployments} of other deployments, ${report.ignored.length} ignored\n`,
      );
      for (const id of report.credited) process.stdout.write(`  credited ${id}\n`);
      for (const { paymentIntentId, reason } of report.ignored) process.stdout.write(`  ignored ${paymentIntentId}: ${reason}\n`);
    }
  } finally {
    await ledger.close();
  }
}
