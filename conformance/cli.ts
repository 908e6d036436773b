#!/usr/bin/env node
/**
 * Entry point of the `conformance` command (`npx @stripe402/conformance`):
 * runs the command and leaves the exit code to the process, so buffered
 * output drains.
 */
import { main } from './command.ts';

process.exitCode = await main(process.argv.slice(2));
