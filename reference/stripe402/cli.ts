#!/usr/bin/env node
/**
 * The `stripe402` command: one dispatcher over the subcommands, each of
 * which parses its own options. Subcommands load lazily so that `stripe402
 * fetch` does not pay for the server's database drivers.
 */
const subcommands: Record<string, { summary: string; run: (argv: string[]) => Promise<number | void> }> = {
  serve: {
    summary: 'run the reference server and the demo paid API',
    run: async (argv) => (await import('./serve-cli.ts')).runServeCli(argv),
  },
  emulator: {
    summary: 'run the Stripe test-mode emulator',
    run: async (argv) => (await import('@stripe402/stripe-emulator')).runEmulatorCli(argv),
  },
  fetch: {
    summary: 'fetch a URL, paying with stripe402 within a budget (curl-like)',
    run: async (argv) => (await import('./fetch-cli.ts')).runFetchCli(argv),
  },
  mcp: {
    summary: 'an MCP server whose tools fetch URLs, paying with stripe402 within a budget',
    run: async (argv) => (await import('@stripe402/mcp')).runMcpCli(argv),
  },
  reconcile: {
    summary: 'credit succeeded top-ups that the ledger missed',
    run: async (argv) => (await import('./serve-cli.ts')).runReconcileCli(argv),
  },
  'stripe-mock-fixtures': {
    summary: 'write the stripe-mock fixtures file with which top-ups succeed',
    run: async (argv) => (await import('@stripe402/conformance')).runStripeMockFixturesCli(argv),
  },
};

function usage(): string {
  const lines = Object.entries(subcommands).map(([name, s]) => `  ${name.padEnd(20)} ${s.summary}`);
  return ['Usage: stripe402 <command> [options]', '', 'Commands:', ...lines, '', 'Run `stripe402 <command> --help` for its options.'].join('\n');
}

const [name, ...rest] = process.argv.slice(2);
const command = name ? subcommands[name] : undefined;
if (!command) {
  const asked = name === undefined || name === '--help' || name === '-h' || name === 'help';
  (asked ? console.log : console.error)(asked ? usage() : `stripe402: unknown command '${name}'\n\n${usage()}`);
  process.exit(asked ? 0 : 2);
}
try {
  // A subcommand either returns its exit code or sets process.exitCode itself.
  const exitCode = await command.run(rest);
  if (typeof exitCode === 'number') process.exitCode = exitCode;
} catch (error) {
  console.error(`stripe402 ${name}: ${error instanceof Error ? error.message : String(error)}`);
  // Subcommands mark usage errors with exitCode 2; anything else is a failure.
  const exitCode = (error as { exitCode?: unknown } | null)?.exitCode;
  process.exit(typeof exitCode === 'number' ? exitCode : 1);
}
