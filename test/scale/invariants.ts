/**
 * The ledger invariants every scale and fault run ends with (spec section
 * 11), checked from the outside: the ledger read through its own interface,
 * Stripe read through the emulator's state.
 *
 * - LEDG-1: no balance below zero;
 * - LEDG-2: every balance equals the sum of its journal entries;
 * - LEDG-4: no PaymentIntent credited twice;
 * - LEDG-5: per client, the PaymentIntents that succeeded are exactly the
 *   top-ups credited, and their cents add up to the same total.
 *
 * A client that Stripe charged but the ledger never heard of has no
 * account, so the client ids come from both sides.
 */
import type Stripe from 'stripe';
import type { Ledger } from '@stripe402/server/ledger';

export interface InvariantReport {
  accounts: number;
  clients: number;
  succeededPaymentIntents: number;
  creditedTopUps: number;
  /** Sum of every balance checked, in units. */
  totalBalance: number;
  /** Journal entries read (aggregated spends count once). */
  journalEntries: number;
  negative: Array<{ clientId: string; currency: string; balance: number }>;
  journalMismatch: Array<{ clientId: string; currency: string; balance: number; journalTotal: number }>;
  duplicateCredits: string[];
  /** Clients whose succeeded PaymentIntents differ from their credited top-ups. */
  conservation: Array<{ clientId: string; succeededMinor: number; creditedMinor: number; uncredited: string[]; creditedWithoutCharge: string[] }>;
  ok: boolean;
}

/** The stripe402 client id a PaymentIntent's metadata names (PROC-6). */
function clientOf(pi: Stripe.PaymentIntent): string | undefined {
  return pi.metadata?.stripe402_client_id;
}

/**
 * Checks every account of `ledger` and every client id the succeeded
 * PaymentIntents name. `paymentIntents` is the emulator's list;
 * `onlyClients`, when given, restricts both sides to those ids.
 */
export async function checkInvariants(ledger: Ledger, paymentIntents: readonly Stripe.PaymentIntent[], onlyClients?: ReadonlySet<string>): Promise<InvariantReport> {
  const keep = (clientId: string | undefined): clientId is string => clientId !== undefined && (onlyClients === undefined || onlyClients.has(clientId));
  const succeeded = paymentIntents.filter((pi) => pi.status === 'succeeded' && keep(clientOf(pi)));
  const accounts = (await ledger.accounts()).filter((account) => keep(account.clientId));

  const pairs = new Map<string, { clientId: string; currency: string; balance: number }>();
  for (const account of accounts) pairs.set(`${account.clientId}:${account.currency}`, account);
  for (const pi of succeeded) {
    const key = `${clientOf(pi)}:${pi.currency}`;
    if (!pairs.has(key)) pairs.set(key, { clientId: clientOf(pi)!, currency: pi.currency, balance: 0 });
  }

  const report: InvariantReport = {
    accounts: accounts.length,
    clients: new Set([...pairs.values()].map((p) => p.clientId)).size,
    succeededPaymentIntents: succeeded.length,
    creditedTopUps: 0,
    totalBalance: 0,
    journalEntries: 0,
    negative: [],
    journalMismatch: [],
    duplicateCredits: [],
    conservation: [],
    ok: false,
  };

  const creditedByClient = new Map<string, Map<string, number>>();
  const seenCredits = new Set<string>();
  for (const { clientId, currency, balance } of pairs.values()) {
    report.totalBalance += balance;
    if (balance < 0) report.negative.push({ clientId, currency, balance });
    const journal = await ledger.journal({ clientId, currency });
    report.journalEntries += journal.length;
    const journalTotal = journal.reduce((sum, entry) => sum + entry.delta, 0);
    if (journalTotal !== balance) report.journalMismatch.push({ clientId, currency, balance, journalTotal });
    for (const entry of journal) {
      if (entry.kind !== 'topup' || entry.paymentIntentId === undefined) continue;
      report.creditedTopUps++;
      if (seenCredits.has(entry.paymentIntentId)) report.duplicateCredits.push(entry.paymentIntentId);
      seenCredits.add(entry.paymentIntentId);
      let credited = creditedByClient.get(clientId);
      if (!credited) creditedByClient.set(clientId, (credited = new Map()));
      credited.set(entry.paymentIntentId, entry.chargedMinor ?? 0);
    }
  }

  const succeededByClient = new Map<string, Map<string, number>>();
  for (const pi of succeeded) {
    const clientId = clientOf(pi)!;
    let charged = succeededByClient.get(clientId);
    if (!charged) succeededByClient.set(clientId, (charged = new Map()));
    charged.set(pi.id, pi.amount_received || pi.amount);
  }
  for (const clientId of new Set([...creditedByClient.keys(), ...succeededByClient.keys()])) {
    const charged = succeededByClient.get(clientId) ?? new Map<string, number>();
    const credited = creditedByClient.get(clientId) ?? new Map<string, number>();
    const succeededMinor = [...charged.values()].reduce((a, b) => a + b, 0);
    const creditedMinor = [...credited.values()].reduce((a, b) => a + b, 0);
    const uncredited = [...charged.keys()].filter((id) => !credited.has(id));
    const creditedWithoutCharge = [...credited.keys()].filter((id) => !charged.has(id));
    if (succeededMinor !== creditedMinor || uncredited.length > 0 || creditedWithoutCharge.length > 0) {
      report.conservation.push({ clientId, succeededMinor, creditedMinor, uncredited, creditedWithoutCharge });
    }
  }
  report.ok =
    report.negative.length === 0 && report.journalMismatch.length === 0 && report.duplicateCredits.length === 0 && report.conservation.length === 0;
  return report;
}

/** One line for tables and logs. */
export function summarizeInvariants(report: InvariantReport): string {
  if (report.ok) {
    return `ok: ${report.clients} clients, ${report.accounts} accounts, ${report.succeededPaymentIntents} succeeded PaymentIntents = ${report.creditedTopUps} credited top-ups, no balance below zero, every balance = its journal`;
  }
  const problems: string[] = [];
  if (report.negative.length) problems.push(`${report.negative.length} balances below zero`);
  if (report.journalMismatch.length) problems.push(`${report.journalMismatch.length} balances differ from their journal`);
  if (report.duplicateCredits.length) problems.push(`${report.duplicateCredits.length} PaymentIntents credited twice`);
  if (report.conservation.length) problems.push(`${report.conservation.length} clients whose charges and credits differ`);
  return `FAILED: ${problems.join('; ')}`;
}
