/**
 * Entry point of `npx conformance` (loaded by bin/conformance.js): runs the
 * command and leaves the exit code to the process, so buffered output drains.
 */
import { main } from './command.ts';

process.exitCode = await main(process.argv.slice(2));
