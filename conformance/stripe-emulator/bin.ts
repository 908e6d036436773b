#!/usr/bin/env node
/**
 * Entry point of the `stripe-emulator` command: the emulator in the
 * foreground until SIGINT or SIGTERM. Usage errors exit 2, other failures 1.
 */
import { runEmulatorCli } from './cli.ts';

try {
  await runEmulatorCli(process.argv.slice(2));
} catch (error) {
  console.error(`stripe-emulator: ${error instanceof Error ? error.message : String(error)}`);
  const exitCode = (error as { exitCode?: unknown } | null)?.exitCode;
  process.exit(typeof exitCode === 'number' ? exitCode : 1);
}
