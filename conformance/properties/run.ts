/**
 * Runs a fast-check property as a conformance check: the run's seed, the
 * --runs budget and (for a replay) the --path, and on failure the shrunk
 * counterexample with everything needed to replay it from the command line.
 */
import fc from 'fast-check';
import type { RunContext } from '../context.ts';
import { CheckFailure, SkipCheck, type PropertyDetails } from '../checks/types.ts';

/** The most shrink steps a property may take: each step is real HTTP traffic. */
export const MAX_SHRINKS = 40;

/** Checks a property (after the given examples); throws CheckFailure with replay details, or the SkipCheck a run raised. */
export async function checkProperty<Ts extends [unknown]>(ctx: RunContext, property: fc.IAsyncPropertyWithHooks<Ts>, examples: Ts[] = []): Promise<void> {
  const details = await fc.check(property, {
    seed: ctx.options.seed,
    // Fixed inputs tried before the generated ones, in addition to --runs (fast-check counts them among numRuns).
    numRuns: ctx.options.runs + examples.length,
    ...(examples.length ? { examples } : {}),
    ...(ctx.options.path ? { path: ctx.options.path } : {}),
    // Bound the whole property, shrinking included: a hung target must not hang the suite.
    interruptAfterTimeLimit: Math.max(60_000, ctx.options.timeoutMs * 4),
    markInterruptAsFailure: true,
  });
  if (!details.failed) return;
  const error = details.errorInstance;
  if (error instanceof SkipCheck) throw error;
  const counterexample = details.counterexample ? fc.stringify(details.counterexample[0]) : '(interrupted before a counterexample was found)';
  const property_: PropertyDetails = {
    seed: details.seed,
    path: details.counterexamplePath ?? '',
    counterexample,
  };
  // fc.commands prints its own replay path: /*replayPath="..."*/
  const commands = /\/\*replayPath="([^"]*)"\*\//.exec(counterexample)?.[1];
  if (commands) property_.commands = commands;
  if (error instanceof CheckFailure) throw new CheckFailure(error.expected, error.actual, property_);
  const message = error instanceof Error ? error.message : String(error ?? 'the property was interrupted');
  throw new CheckFailure('the property to hold for every generated input', message, property_);
}
