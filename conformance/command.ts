/**
 * The `conformance` command: parses arguments with commander, runs the suite,
 * prints the text report, writes the JSON, JUnit and badge files, and returns
 * the exit code (0 every required check that counts under the profile ran
 * and passed; 1 one failed or could not be verified; 2 usage error or no
 * check matched; 3 target unreachable or harness error).
 * Kept apart from cli.ts so tests can run it in-process.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ConformanceReport } from '@stripe402/core';
import { renderBadgeSvg, shieldsEndpoint } from './report/badge.ts';
import { renderJUnit } from './report/junit.ts';
import { renderText } from './report/text.ts';
import { PROFILES, categoryOf, type Profile } from './profiles.ts';
import { ConformanceError, exitCodeOf, listChecks, runConformance, type ConformanceOptions } from './runner.ts';

/** Where the command writes; the real process streams by default. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether to draw progress (a terminal, not CI). */
  progress: boolean;
  color: boolean;
}

const defaultIO = (): CommandIO => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  progress: Boolean(process.stderr.isTTY) && !process.env.CI,
  color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
});

function integer(name: string) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer`);
    return Number(value);
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Splits `--card` values into roles: `pm_x` is a good card, `declined:pm_x` and `auth:pm_x` set the other roles. */
export function parseCards(values: string[] | undefined): ConformanceOptions['cards'] {
  if (!values?.length) return undefined;
  const cards: NonNullable<ConformanceOptions['cards']> = {};
  for (const value of values) {
    const [role, id] = value.includes(':') ? (value.split(':', 2) as [string, string]) : ['good', value];
    if (role === 'good') (cards.good ??= []).push(id);
    else if (role === 'declined') cards.declined = id;
    else if (role === 'auth' || role === 'authentication') cards.authentication = id;
    else throw new InvalidArgumentError(`--card role must be declined: or auth:, not ${role}:`);
  }
  return cards;
}

function buildProgram(io: CommandIO): Command {
  const program = new Command('conformance')
    .description('Property-test a stripe402 server against its Stripe backend.')
    .option('--target <url>', 'a paid resource, or a base URL whose paid routes /.well-known/stripe402 lists')
    .option('--stripe-url <url>', 'base URL of the Stripe backend (the emulator, stripe-mock, or https://api.stripe.com)')
    .option('--stripe-key <key>', 'secret key of the Stripe backend (sk_test_...): enables backend-verified checks')
    .option('--server-secret <secret>', 'the server secret: enables the client id derivation check')
    .option('--card <pm>', 'a test PaymentMethod (repeatable), used before the default cards; prefix declined: or auth: for those roles', collect)
    .option('--cards-only', 'use only the good cards given with --card, not the default ones too')
    .option('--failing-route <path>', 'a paid route whose handler answers 5xx ("/api/fail" or "POST /api/fail")')
    .addOption(new Option('--level <level>', 'levels to run').choices(['core', 'ledger', 'extensions', 'all']).default('core'))
    .addOption(
      new Option('--profile <profile>', 'judge by the whole spec, or by what stripe402 v1 promises plus the money and safety rules (spec-strict differences reported apart)')
        .choices([...PROFILES])
        .default('spec'),
    )
    .option('--only <prefix...>', 'run only checks whose id starts with one of these prefixes (3, 3/rejects, 8/model-balances)')
    .option('--list', 'print every check id with its level, severity and requirement, and exit')
    .option('--strict', 'fail the run on SHOULD failures too')
    .option('--runs <n>', 'runs per property', integer('--runs'))
    .option('--seed <n>', 'fast-check seed (replays every property)', integer('--seed'))
    .option('--path <path>', 'fast-check path: replay one property counterexample (with --only)')
    .option('--commands <replayPath>', 'fast-check replayPath of a model command sequence (with --path)')
    .option('--json <file>', 'write the JSON report (schemas/conformance-report.schema.json)')
    .option('--junit <file>', 'write a JUnit XML report, one testsuite per spec section')
    .option('--badge <file.svg>', 'write a badge SVG and, next to it, a shields.io endpoint JSON')
    .option('--timeout <ms>', 'per-request timeout', integer('--timeout'))
    .option('--concurrency <n>', 'parallel requests in burst checks', integer('--concurrency'))
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  return program;
}

interface ParsedOptions {
  target?: string;
  stripeUrl?: string;
  stripeKey?: string;
  serverSecret?: string;
  card?: string[];
  cardsOnly?: boolean;
  profile: Profile;
  failingRoute?: string;
  level: 'core' | 'ledger' | 'extensions' | 'all';
  only?: string[];
  list?: boolean;
  strict?: boolean;
  runs?: number;
  seed?: number;
  path?: string;
  commands?: string;
  json?: string;
  junit?: string;
  badge?: string;
  timeout?: number;
  concurrency?: number;
}

/** Runs the command; resolves to the exit code. */
export async function main(argv: string[], io: CommandIO = defaultIO()): Promise<number> {
  const program = buildProgram(io);
  let opts: ParsedOptions;
  try {
    program.parse(argv, { from: 'user' });
    opts = program.opts<ParsedOptions>();
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
    }
    throw error;
  }

  if (opts.list) {
    io.stdout(renderList());
    return 0;
  }
  if (!opts.target) {
    io.stderr('error: --target <url> is required (or --list)\n');
    return 2;
  }

  let cards: ConformanceOptions['cards'];
  try {
    cards = parseCards(opts.card);
  } catch (error) {
    io.stderr(`error: ${(error as Error).message}\n`);
    return 2;
  }

  const options: ConformanceOptions = {
    target: opts.target,
    level: opts.level,
    profile: opts.profile,
    ...(opts.cardsOnly ? { cardsOnly: true } : {}),
    ...(opts.only ? { only: opts.only } : {}),
    strict: Boolean(opts.strict),
    ...(opts.runs !== undefined ? { runs: opts.runs } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.path ? { path: opts.path } : {}),
    ...(opts.commands ? { commands: opts.commands } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(cards ? { cards } : {}),
    ...(opts.failingRoute ? { failingRoute: opts.failingRoute } : {}),
    ...(opts.serverSecret ? { serverSecret: opts.serverSecret } : {}),
    ...(opts.stripeUrl ? { stripeUrl: opts.stripeUrl } : {}),
    ...(opts.stripeKey ? { stripeKey: opts.stripeKey } : {}),
  };
  if (io.progress) {
    options.onProgress = (event) => {
      if (event.type === 'start') io.stderr(`\r\u001b[2K[${event.index + 1}/${event.total}] ${event.id}`);
      else if (event.index + 1 === event.total) io.stderr('\r\u001b[2K');
    };
  }

  let report: ConformanceReport;
  try {
    report = await runConformance(options);
  } catch (error) {
    if (io.progress) io.stderr('\r\u001b[2K');
    if (error instanceof ConformanceError) {
      io.stderr(`error: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`harness error: ${(error as Error).stack ?? String(error)}\n`);
    return 3;
  }

  io.stdout(renderText(report, { color: io.color }));
  try {
    await writeReports(report, opts);
  } catch (error) {
    io.stderr(`error: could not write a report file: ${(error as Error).message}\n`);
    return 3;
  }
  return exitCodeOf(report);
}

async function writeReports(report: ConformanceReport, opts: ParsedOptions): Promise<void> {
  const write = async (file: string, text: string) => {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFile(file, text);
  };
  if (opts.json) await write(opts.json, JSON.stringify(report, null, 2) + '\n');
  if (opts.junit) await write(opts.junit, renderJUnit(report));
  if (opts.badge) {
    await write(opts.badge, renderBadgeSvg(report));
    await write(endpointPath(opts.badge), JSON.stringify(shieldsEndpoint(report), null, 2) + '\n');
  }
}

/** The shields.io endpoint file next to a badge: `badge.svg` -> `badge.json`. */
export function endpointPath(badge: string): string {
  return badge.endsWith('.svg') ? badge.slice(0, -4) + '.json' : badge + '.json';
}

function renderList(): string {
  const checks = listChecks();
  const width = Math.max(...checks.map((c) => c.id.length));
  const lines = checks.map(
    (c) => `${c.id.padEnd(width)}  ${c.level.padEnd(10)}  ${c.severity.padEnd(6)}  ${c.requirement.padEnd(8)}  ${categoryOf(c.id).padEnd(6)}  ${c.title}${c.property ? ' [property]' : ''}`,
  );
  return lines.join('\n') + '\n';
}
