// `stripe402 emulator`: runs the Stripe emulator in the foreground, prints
// where it listens and which keys to use, and stops on SIGINT or SIGTERM.
// The webhook signing secret comes from the environment or a file, never
// from a flag (shell history, ps).
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { startEmulator, type EmulatorOptions } from './server.ts';
import { DEFAULT_ENABLED_EVENTS } from './webhooks.ts';

export interface EmulatorCliIo {
  /** Where to print; default console.log. */
  log?: (line: string) => void;
  /** Stops the emulator when aborted, in place of SIGINT/SIGTERM (for tests and embedding). */
  signal?: AbortSignal;
}

/** A usage error; `exitCode` is 2 as for the project's other commands. */
export class EmulatorUsageError extends Error {
  override readonly name = 'EmulatorUsageError';
  readonly exitCode = 2;
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    return parsed;
  };
}

/**
 * Runs `stripe402 emulator [options]`; `argv` holds the arguments after the
 * subcommand (a leading `emulator` is skipped). Resolves after the emulator
 * stopped, or at once for --help.
 */
export async function runEmulatorCli(argv: string[], io: EmulatorCliIo = {}): Promise<void> {
  const log = io.log ?? ((line: string) => console.log(line));
  const args = argv[0] === 'emulator' ? argv.slice(1) : argv;
  const program = new Command('stripe402 emulator')
    .description('Run the stateful Stripe test-mode emulator (PaymentMethods, Customers, PaymentIntents, refunds, webhooks).')
    .option('--port <port>', 'TCP port (0 picks a free one)', integer('--port', 0, 65535), 12111)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--webhook-url <url>', 'POST events to this URL')
    .option('--webhook-secret-file <file>', 'file holding the signing secret for webhook events (whsec_...); default $STRIPE_WEBHOOK_SECRET')
    // Recognized only to refuse it without quoting its value back.
    .addOption(new Option('--webhook-secret <secret>').hideHelp().argParser(() => true))
    .option('--webhook-events <types>', `comma-separated event types to deliver, or * (default ${DEFAULT_ENABLED_EVENTS.join(',')})`)
    .option('--latency-ms <ms>', 'latency added to every API request', integer('--latency-ms', 0, 600_000), 0)
    .option('--allow-remote-admin', 'answer /_emulator admin requests from non-loopback clients')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => log(text.trimEnd()),
      writeErr: (text) => log(text.trimEnd()),
      // The caller reports the thrown EmulatorUsageError; printing it here too would say it twice.
      outputError: () => undefined,
    });
  try {
    program.parse(args, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return;
      throw new EmulatorUsageError(error.message.replace(/^error: /, ''));
    }
    throw error;
  }
  const opts = program.opts<{
    port: number;
    host: string;
    webhookUrl?: string;
    webhookSecret?: true;
    webhookSecretFile?: string;
    webhookEvents?: string;
    latencyMs: number;
    allowRemoteAdmin?: boolean;
  }>();
  const options: EmulatorOptions = { port: opts.port, host: opts.host, latencyMs: opts.latencyMs };
  if (opts.allowRemoteAdmin) options.allowRemoteAdmin = true;
  if (opts.webhookSecret) throw new EmulatorUsageError('--webhook-secret: secrets are not taken from flags (shell history, ps); use STRIPE_WEBHOOK_SECRET or --webhook-secret-file.');
  let secret = process.env.STRIPE_WEBHOOK_SECRET;
  if (opts.webhookSecretFile) {
    try {
      secret = readFileSync(opts.webhookSecretFile, 'utf8').trim();
    } catch (error) {
      throw new EmulatorUsageError(`--webhook-secret-file ${opts.webhookSecretFile}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read the file'}`);
    }
  }
  if (opts.webhookUrl) {
    if (!secret) throw new EmulatorUsageError('--webhook-url needs STRIPE_WEBHOOK_SECRET or --webhook-secret-file.');
    options.webhook = { url: opts.webhookUrl, secret };
    if (opts.webhookEvents) options.webhook.enabledEvents = opts.webhookEvents.split(',').map((type) => type.trim()).filter(Boolean);
  } else if (opts.webhookSecretFile) {
    throw new EmulatorUsageError('--webhook-secret-file needs --webhook-url.');
  }
  let emulator;
  try {
    emulator = await startEmulator(options);
  } catch (error) {
    if (error instanceof TypeError) throw new EmulatorUsageError(error.message);
    throw error;
  }
  log(`Stripe emulator (test mode) listening on ${emulator.url}`);
  log(`  secret key:       ${emulator.secretKey}   (any sk_test_... key is accepted)`);
  log(`  publishable key:  ${emulator.publishableKey}   (any pk_test_... key is accepted)`);
  if (options.webhook) log(`  webhooks:         POST ${options.webhook.url} (${(options.webhook.enabledEvents ?? DEFAULT_ENABLED_EVENTS).join(', ')})`);
  log(`  admin:            ${emulator.url}/_emulator/{health,reset,faults,events,webhook,idempotency/expire}`);
  log(`Point a server at it: STRIPE_SECRET_KEY=${emulator.secretKey} stripe402 serve --stripe-url ${emulator.url}`);
  log('Press Ctrl-C to stop.');

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      resolve();
    };
    if (io.signal) {
      if (io.signal.aborted) return stop();
      io.signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
  await emulator.close();
  log('Stripe emulator stopped.');
}
