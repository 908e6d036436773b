/**
 * Recovery of charges whose credit did not happen (LEDG-6): the Stripe
 * `payment_intent.succeeded` webhook and the `reconcile` scan both credit a
 * succeeded stripe402 PaymentIntent from its metadata, and the ledger's
 * "a PaymentIntent credits at most once" (LEDG-4) makes every path
 * (client retry, webhook, reconcile) safe to run in any order, any number
 * of times.
 */
import { isClientId } from '@stripe402/core';
import { isUnits, unitsToMinor } from '@stripe402/core';
import type { Ledger } from './ledger/types.ts';
import { METADATA_CLIENT_ID, METADATA_CURRENCY, METADATA_UNITS, type PaymentIntentView, type StripeGateway } from './gateway.ts';

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
export async function creditPaymentIntent(ledger: Ledger, pi: PaymentIntentView): Promise<{ outcome: RecoveryOutcome; reason?: string }> {
  if (pi.status !== 'succeeded') return { outcome: 'ignored', reason: `status ${pi.status}` };
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
  deps: { gateway: StripeGateway; ledger: Ledger },
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
  const object = event.data.object as unknown as Record<string, unknown>;
  const pi: PaymentIntentView = {
    id: String(object.id),
    status: String(object.status),
    amount: Number(object.amount),
    amountReceived: Number(object.amount_received ?? 0),
    currency: String(object.currency),
    metadata: (object.metadata ?? {}) as Record<string, string>,
    created: Number(object.created ?? 0),
    declined: false,
  };
  try {
    const { outcome } = await creditPaymentIntent(deps.ledger, pi);
    return { status: 200, body: { received: true, outcome } };
  } catch {
    return { status: 503, body: { received: false, error: 'ledger unavailable' } };
  }
}

export interface ReconcileReport {
  since: string;
  scanned: number;
  credited: string[];
  alreadyCredited: number;
  ignored: Array<{ paymentIntentId: string; reason: string }>;
}

/**
 * Scans succeeded stripe402 PaymentIntents created since `since` and credits
 * any that the ledger missed, each at most once (LEDG-6).
 */
export async function reconcile(deps: { gateway: StripeGateway; ledger: Ledger }, options: { since: Date }): Promise<ReconcileReport> {
  const report: ReconcileReport = { since: options.since.toISOString(), scanned: 0, credited: [], alreadyCredited: 0, ignored: [] };
  for await (const pi of deps.gateway.succeededPaymentIntents(options.since)) {
    report.scanned++;
    // isCredited first keeps a routine scan read-only for the common case.
    if (await deps.ledger.isCredited(pi.id)) {
      report.alreadyCredited++;
      continue;
    }
    const { outcome, reason } = await creditPaymentIntent(deps.ledger, pi);
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
