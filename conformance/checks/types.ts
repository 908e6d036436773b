/**
 * What a conformance check is: an id `<section>/<slug>`, the level and
 * severity it belongs to, the requirement it tests, and an async body that
 * passes by returning, fails by throwing CheckFailure, and declines by
 * throwing SkipCheck (the target or backend cannot support it) or
 * Prerequisite (something an earlier check reports as failed is missing).
 */
import type { RunContext } from '../context.ts';

export type Level = 'core' | 'ledger' | 'extensions';
export type Severity = 'must' | 'should' | 'info';

/** One check of the registry. */
export interface CheckDefinition {
  /** `<section>/<slug>`; stable, never reused once retired. */
  id: string;
  title: string;
  level: Level;
  severity: Severity;
  /** The spec requirement id the check tests, e.g. `ENC-5`. */
  requirement: string;
  /** A fast-check property: accepts --seed and --path. */
  property?: boolean;
  /** Runs after every other check (it judges what the whole run observed); still reported in registry order. */
  late?: boolean;
  /**
   * Runs the check. Returns nothing to pass, or an observation string for an
   * `info` check; throws CheckFailure, SkipCheck or Prerequisite otherwise.
   */
  run(ctx: RunContext): Promise<void | string>;
}

/** A check that observed behaviour the requirement forbids. */
export class CheckFailure extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly property?: PropertyDetails,
  ) {
    super(`expected ${expected}; got ${actual}`);
    this.name = 'CheckFailure';
  }
}

/** How a failed property can be replayed. */
export interface PropertyDetails {
  seed: number;
  path: string;
  counterexample: string;
  /** fast-check's replayPath for command sequences, when there is one. */
  commands?: string;
}

/**
 * A check that did not run to a verdict. By default the rule applies to the
 * target but the run could not verify it (cards, balance, prices, backend
 * access or an option the tester did not give): its level is then not
 * reached (CONF-6). Throw NotApplicable instead when the rule does not apply
 * to the target at all.
 */
export class SkipCheck extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SkipCheck';
  }
}

/**
 * A check whose rule does not apply to this target: an extension it does not
 * implement (CONF-5), a variant its path does not have, an optional member it
 * does not advertise. It does not keep a level from being reached.
 */
export class NotApplicable extends SkipCheck {
  constructor(reason: string) {
    super(reason);
    this.name = 'NotApplicable';
  }
}

/** A check that cannot run because something it builds on (the challenge, a funded client) is broken; another check reports that. */
export class Prerequisite extends SkipCheck {
  constructor(reason: string) {
    super(reason);
    this.name = 'Prerequisite';
  }
}

/** Fails the check unless `condition` holds. */
export function expect(condition: unknown, expected: string, actual: string | (() => string)): asserts condition {
  if (!condition) throw new CheckFailure(expected, typeof actual === 'function' ? actual() : actual);
}
