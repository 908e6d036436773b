/**
 * Concurrent spends against several server processes sharing one ledger,
 * with group commit on (the default), checked to the unit:
 *
 * - every served request reports a distinct balance, and per client those
 *   balances are exactly start - price, start - 2 * price, ... (PROC-9,
 *   LEDG-1): no two requests were given the same credit, none was skipped;
 * - a client funded for exactly n requests gets exactly n served out of a
 *   burst of many, and ends at zero (no overdraft, LEDG-1);
 * - afterwards each balance equals its journal (LEDG-2) and the ledger's
 *   spends equal what was served.
 *
 * The processes share one port and the kernel spreads the connections
 * over them, as a load balancer would; the run checks from each process's
 * CPU time that every one of them took part.
 */
import { processCpuSeconds, startStack } from './fleet.ts';
import { checkInvariants, type InvariantReport } from './invariants.ts';
import { createCards, paidRequest, topUp } from './protocol.ts';
import type { LedgerKind } from './services.ts';
import { SCALE_ROUTES } from './scenarios.ts';

export interface SpendRaceOptions {
  ledger: LedgerKind;
  workers: number;
  /** Funded clients spending in the race. */
  clients: number;
  /** Requests in the race, all clients together. */
  requests: number;
  /** Requests in flight at once. */
  concurrency: number;
}

export interface SpendRaceResult {
  served: number;
  refused: number;
  /** Problems found; empty when every check held. */
  problems: string[];
  invariants: InvariantReport;
  /** CPU seconds each server process spent during the race: every one must have served. */
  workerCpu: number[];
  /** The client funded for exactly `exactRequests`: how many of its burst were served, and its final balance. */
  exact: { funded: number; burst: number; served: number; finalBalance: number };
}

const PATH = '/api/weather';
const PRICE = 2_500;

async function inParallel(count: number, concurrency: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await run(next++);
    }),
  );
}

export async function runSpendRace(options: SpendRaceOptions): Promise<SpendRaceResult> {
  const { emulator, target, serverSecret, fleet, stop } = await startStack(options.ledger, { routes: SCALE_ROUTES, workers: options.workers, port: 0 });
  const problems: string[] = [];
  try {
    const cards = await createCards(emulator.stripe(), serverSecret, options.clients + 1);
    const racers = cards.slice(0, options.clients);
    const exactCard = cards[options.clients]!;

    // Fund every racer with one top-up of 200,000 units (80 requests), then learn its balance from one paid request.
    const start = new Map<string, number>();
    for (const card of racers) {
      const funded = await topUp(fleet.url, PATH, card, 200_000);
      if (funded.final.status !== 200 || !funded.final.payment) throw new Error(`funding failed with ${funded.final.status}`);
      start.set(card.clientId, funded.final.payment.creditsRemaining);
    }
    const reported = new Map<string, number[]>(racers.map((card) => [card.clientId, []]));
    let served = 0;
    let refused = 0;
    const cpuBefore = new Map(fleet.workers().map((pid) => [pid, processCpuSeconds(pid)]));
    await inParallel(options.requests, options.concurrency, async (index) => {
      const card = racers[index % racers.length]!;
      const outcome = await paidRequest(fleet.url, PATH, { stripe402Version: 1, clientId: card.clientId });
      if (outcome.status === 200 && outcome.payment?.success) {
        served++;
        reported.get(card.clientId)!.push(outcome.payment.creditsRemaining);
      } else if (outcome.status === 402 && outcome.payment?.errorCode === 'insufficient_credits') {
        refused++;
      } else {
        problems.push(`a spend got ${outcome.status}${outcome.networkError ? ` (${outcome.networkError})` : ''}`);
      }
    });
    const workerCpu = [...cpuBefore].map(([pid, before]) => processCpuSeconds(pid) - before);
    if (workerCpu.length !== options.workers || workerCpu.some((seconds) => seconds < 0.02)) {
      problems.push(`not every server process served: CPU seconds per process ${workerCpu.map((s) => s.toFixed(2)).join(', ')}`);
    }
    for (const card of racers) {
      const balances = reported.get(card.clientId)!.sort((a, b) => b - a);
      const first = start.get(card.clientId)!;
      for (let k = 0; k < balances.length; k++) {
        if (balances[k] !== first - (k + 1) * PRICE) {
          problems.push(`client ${card.clientId.slice(0, 8)}: the ${k + 1}th highest balance reported is ${balances[k]}, expected ${first - (k + 1) * PRICE}`);
          break;
        }
      }
    }

    // One client funded for exactly 20 requests (50,000 units), then a burst of 60 at once.
    const burst = 60;
    const funded = await topUp(fleet.url, PATH, exactCard, 50_000);
    if (funded.final.status !== 200) throw new Error(`funding failed with ${funded.final.status}`);
    let exactServed = 1; // the top-up request itself was served
    await inParallel(burst, burst, async () => {
      const outcome = await paidRequest(fleet.url, PATH, { stripe402Version: 1, clientId: exactCard.clientId });
      if (outcome.status === 200) exactServed++;
      else if (!(outcome.status === 402 && outcome.payment?.errorCode === 'insufficient_credits')) problems.push(`a burst spend got ${outcome.status}`);
    });

    await fleet.stop();
    const ledger = await target.openLedger();
    try {
      const invariants = await checkInvariants(ledger, emulator.state.paymentIntents());
      for (const card of racers) {
        const expected = start.get(card.clientId)! - reported.get(card.clientId)!.length * PRICE;
        const balance = await ledger.balance({ clientId: card.clientId, currency: 'usd' });
        if (balance !== expected) problems.push(`client ${card.clientId.slice(0, 8)}: ledger balance ${balance}, but the served requests leave ${expected}`);
      }
      const finalBalance = await ledger.balance({ clientId: exactCard.clientId, currency: 'usd' });
      if (exactServed !== 20) problems.push(`a client funded for 20 requests was served ${exactServed}`);
      if (finalBalance !== 0) problems.push(`a client funded for 20 requests ended at ${finalBalance} units`);
      return { served, refused, problems, invariants, workerCpu, exact: { funded: 20, burst, served: exactServed, finalBalance } };
    } finally {
      await ledger.close();
    }
  } finally {
    await stop();
  }
}
