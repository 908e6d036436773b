/**
 * The registry of conformance checks, in spec-section order. Ids are stable:
 * a check that is retired keeps its id out of use forever, and new checks get
 * new slugs, so `--only 3/rejects-...` in someone's CI keeps meaning the same.
 */
import { authenticationChecks } from './authentication.ts';
import { compatibilityChecks, securityChecks } from './compatibility.ts';
import { discoveryChecks } from './discovery.ts';
import { encodingChecks } from './encoding.ts';
import { errorChecks } from './errors.ts';
import { identityChecks } from './identity.ts';
import { ledgerChecks } from './ledger.ts';
import { limitChecks } from './limits.ts';
import { messageChecks } from './messages.ts';
import { paywallChecks } from './paywall.ts';
import { processingChecks } from './processing.ts';
import type { CheckDefinition } from './types.ts';
import { unitChecks } from './units.ts';

export type { CheckDefinition, Level, Severity } from './types.ts';

/** Every check, grouped by spec section in section order. */
export const CHECKS: readonly CheckDefinition[] = Object.freeze([
  ...encodingChecks,
  ...messageChecks,
  ...unitChecks,
  ...identityChecks,
  ...paywallChecks,
  ...processingChecks,
  ...authenticationChecks,
  ...errorChecks,
  ...ledgerChecks,
  ...discoveryChecks,
  ...securityChecks,
  ...limitChecks,
  ...compatibilityChecks,
]);

/** The spec section a check id belongs to (`3/rejects-x` -> `3`). */
export function sectionOf(id: string): string {
  return id.slice(0, id.indexOf('/'));
}
