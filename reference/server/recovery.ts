/**
 * Recovery of charges whose credit did not happen (LEDG-6): the Stripe
 * `payment_intent.succeeded` webhook and the `reconcile` scan both credit a
 * succeeded stripe402 PaymentIntent from its metadata, and the ledger's
 * "a PaymentIntent credits at most once" (LEDG-4) makes every path
 * (client retry, webhook, reconcile) safe to run in any order, any number
 * of times. Both credit only PaymentIntents that name this deployment
 * (LEDG-9): several deployments may share one Stripe account, and a
 * top-up paid to one must never become credit on another. The webhook
 * reads the PaymentIntent back from Stripe before crediting, so a leaked
 * signing secret cannot mint credit with a forged event.
 */
import { createHmac } from 'node:crypto';
import { isClientId } from '@stripe402/core';
import { isUnits, unitsToMinor } from '@stripe402/core';
import type { Ledger } from './ledger/types.ts';
import { METADATA_CLIENT_ID, METADATA_CURRENCY, METADATA_DEPLOYMENT, METADATA_UNITS, type PaymentIntentView, type StripeGateway } from './gateway.ts';

/**
 * The public id of a deployment (LEDG-9): the first 24 hex digits of
 * HMAC-SHA256(key = server secret, message = a fixed label). It names the
 * deployment in PaymentIntent metadata and cannot be turned back into the
 * secret; deployments with different secrets get different ids.
 */
export function deploymentIdOf(serverSecret: string): string {
  return createHmac('sha256', serverSecret).update(DEPLOYMENT_ID_LABEL).digest('hex').slice(0, 24);
}
const DEPLOYMENT_ID_LABEL = 'stripe402 deployment id v1';

/** Which PaymentIntents a recovery path may credit. */
export interface CreditScope {
  /** This deployment's id: PaymentIntents naming another deployment are never credited. */
  deploymentId: string;
  /**
   * Also credit PaymentIntents that name no deployment (created by a server
   * from before deployment ids). Only `reconcile --include-unlabelled` sets
   * it, on the operator's word that this deployment was then the only one
   * on the Stripe account; a webhook never does.
   */
  includeUnlabelled?: boolean;
}

export type RecoveryOutcome =
  /** Credited now. */
  | 'credited'
  /** Credited before; nothing changed. */
  | 'already_credited'
  /** Not a succeeded stripe402 top-up, or its metadata does not add up; nothing changed. */
  | 'ignored';

/**
 * Credits one succeeded PaymentIntent from its metadata, at most once. The
 * charged amount must equal the metadata's units at the currency's rate, so
 * a PaymentIntent that does not add up never creates credit (LEDG-5).
 */
export async function creditPaymentIntent(ledger: Ledger, pi: PaymentIntentView, scope: CreditScope): Promise<{ outcome: RecoveryOutcome; reason?: string }> {
  if (pi.status !== 'succeeded') return { outcome: 'ignored', reason: `status ${pi.status}` };
  const foreign = notOurs(pi, scope);
  if (foreign) return { outcome: 'ignored', reason: foreign };
  const clientId = pi.metadata[METADATA_CLIENT_ID];
  const unitsText = pi.metadata[METADATA_UNITS] ?? '';
  const currency = pi.metadata[METADATA_CURRENCY] ?? pi.currency;
  if (!isClientId(clientId)) return { outcome: 'ignored', reason: 'no stripe402 client id in metadata' };
  const units = /^[1-9][0-9]*$/.test(unitsText) ? Number(unitsText) : NaN;
  if (!isUnits(units)) return { outcome: 'ignored', reason: 'no valid stripe402 units in metadata' };
  if (currency !== pi.currency) return { outcome: 'ignored', reason: 'metadata currency differs from the charge' };
  if (pi.amount !== unitsToMinor(units, currency)) return { outcome: 'ignored', reason: 'charged amount does not match the units' };
  const result = await ledger.creditTopUp({ clientId, currency, paymentIntentId: pi.id, units, chargedMinor: pi.amountReceived || pi.amount });
  return { outcome: result.credited ? 'credited' : 'already_credited' };
}

/** Why a PaymentIntent is not this deployment's to credit, or undefined when it is. */
function notOurs(pi: PaymentIntentView, scope: CreditScope): string | undefined {
  const label = pi.metadata[METADATA_DEPLOYMENT];
  if (label === undefined || label === '') return scope.includeUnlabelled ? undefined : UNLABELLED;
  return label === scope.deploymentId ? undefined : OTHER_DEPLOYMENT;
}
const UNLABELLED = 'names no deployment (created before deployment ids; see reconcile --include-unlabelled)';
const OTHER_DEPLOYMENT = 'created by another deployment';

export interface WebhookResult {
  status: 200 | 400 | 503;
  body: { received: boolean; outcome?: RecoveryOutcome; error?: string };
}

/**
 * Handles one webhook delivery: the signature is checked first, so a bad
 * one changes nothing (400). A ledger fault answers 503 so that Stripe
 * redelivers later.
 */
export async function handleWebhook(
  deps: { gateway: StripeGateway; ledger: Ledger; deploymentId: string },
  rawBody: string,
  signature: string | null | undefined,
  secret: string,
): Promise<WebhookResult> {
  let event;
  try {
    if (!signature) throw new Error('missing signature');
    event = deps.gateway.verifyWebhook(rawBody, signature, secret);
  } catch {
    return { status: 400, body: { received: false, error: 'invalid signature' } };
  }
  if (event.type !== 'payment_intent.succeeded') return { status: 200, body: { received: true, outcome: 'ignored' } };
  const object = event.data.object as unknown as { id?: unknown; metadata?: Record<string, string> | null };
  if (typeof object.id !== 'string' || !/^pi_[A-Za-z0-9_]{1,255}$/.test(object.id)) return { status: 200, body: { received: true, outcome: 'ignored' } };
  // Every endpoint on the account receives every event: one for another deployment's PaymentIntent, or for
  // one that names none (never credited here, LEDG-9), costs no Stripe call.
  if (object.metadata?.[METADATA_DEPLOYMENT] !== deps.deploymentId) return { status: 200, body: { received: true, outcome: 'ignored' } };
  // The event body is only a hint: the PaymentIntent as Stripe holds it is what gets credited (LEDG-10).
  const found = await deps.gateway.retrievePaymentIntent(object.id);
  if (!found.ok) {
    // Only an outage is worth a redelivery; Stripe refusing the id will refuse it again.
    if (found.kind === 'unavailable') return { status: 503, body: { received: false, error: 'stripe unavailable' } };
    return { status: 200, body: { received: true, outcome: 'ignored' } };
  }
  try {
    const { outcome } = await creditPaymentIntent(deps.ledger, found.paymentIntent, { deploymentId: deps.deploymentId });
    return { status: 200, body: { received: true, outcome } };
  } catch {
    return { status: 503, body: { received: false, error: 'ledger unavailable' } };
  }
}

export interface ReconcileReport {
  since: string;
  deploymentId: string;
  scanned: number;
  credited: string[];
  alreadyCredited: number;
  /** Succeeded stripe402 PaymentIntents of other deployments on the same account: not ours, left alone. */
  otherDeployments: number;
  ignored: Array<{ paymentIntentId: string; reason: string }>;
}

/**
 * Scans succeeded stripe402 PaymentIntents created since `since` and credits
 * any of this deployment's that the ledger missed, each at most once
 * (LEDG-6, LEDG-9).
 */
export async function reconcile(deps: { gateway: StripeGateway; ledger: Ledger }, options: { since: Date } & CreditScope): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    since: options.since.toISOString(),
    deploymentId: options.deploymentId,
    scanned: 0,
    credited: [],
    alreadyCredited: 0,
    otherDeployments: 0,
    ignored: [],
  };
  for await (const pi of deps.gateway.succeededPaymentIntents(options.since)) {
    report.scanned++;
    if (notOurs(pi, options) === OTHER_DEPLOYMENT) {
      report.otherDeployments++;
      continue;
    }
    // isCredited first keeps a routine scan read-only for the common case.
    if (await deps.ledger.isCredited(pi.id)) {
      report.alreadyCredited++;
      continue;
    }
    const { outcome, reason } = await creditPaymentIntent(deps.ledger, pi, options);
    if (outcome === 'credited') report.credited.push(pi.id);
    else if (outcome === 'already_credited') report.alreadyCredited++;
    else report.ignored.push({ paymentIntentId: pi.id, reason: reason ?? 'ignored' });
  }
  return report;
}

/** Parses "24h", "30m", "7d", "90s" or an ISO date into the start of a reconcile window. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const relative = /^(\d+)\s*([smhd])$/.exec(value.trim());
  if (relative) {
    const seconds = { s: 1, m: 60, h: 3600, d: 86_400 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(relative[1]) * seconds * 1000);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new RangeError(`--since: expected a duration like 24h, 30m, 7d or an ISO date, got '${value}'`);
  return date;
}
