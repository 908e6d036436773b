/**
 * The load of the scale and fault suites: virtual clients, bounded in time
 * and in requests, each spending with its card's client id on a mix of
 * paid routes (one of which always fails, so credits come back), topping up
 * with a fresh idempotencyKey when the balance runs out and repeating that
 * top-up with the same key after a lost answer or a 503, as the protocol
 * tells a client to. Some requests name random client ids nobody funded.
 *
 * It records what a client can see, so the run can be held against the
 * ledger afterwards: every served request's price (a served request must
 * have been paid durably, LEDG-7), the outcome of every top-up, and every
 * answer that breaks the protocol (a 5xx other than 503, a 200 without a
 * payment-response, a negative balance, another client's id).
 */
import { randomBytes } from 'node:crypto';
import { newIdempotencyKey, paidRequest, type Card, type Outcome } from './protocol.ts';

export interface LoadRoute {
  path: string;
  /** Units per request. */
  price: number;
  minTopUp: number;
  maxTopUp: number;
  /** The handler answers 500: the spend is restored (PROC-10). */
  failing?: boolean;
  /** Relative share of requests. */
  weight: number;
}

export interface LoadOptions {
  /** Where to send requests: a fixed URL, or a function (a load balancer picking a server). */
  url: string | (() => string);
  cards: readonly Card[];
  routes: readonly LoadRoute[];
  /** Concurrent virtual clients; client i pays with cards[i % cards.length]. */
  virtualClients: number;
  durationMs: number;
  /** Stop after this many HTTP requests in all. */
  maxRequests: number;
  /** Share of spends sent with a random, never funded client id. Default 0.05. */
  unknownClientShare?: number;
  /** Attempts per top-up before the client gives up (the charge is then left to webhook or reconcile). Default 12. */
  topUpAttempts?: number;
  requestTimeoutMs?: number;
  /** Called between requests; a fault scenario injects its fault from here. */
  onTick?: (stats: LoadStats) => void;
}

export interface UnresolvedTopUp {
  clientId: string;
  idempotencyKey: string;
  lastStatus: number;
}

export interface LoadStats {
  /** HTTP requests sent, every attempt counted. */
  requests: number;
  /** Paid requests answered 200. */
  served: number;
  /** Sum of the prices of the requests answered 200, per client id (what clients saw paid for). */
  servedUnits: Map<string, number>;
  /** The same per route path, all clients together. */
  servedUnitsByRoute: Map<string, number>;
  /** Requests to the failing route answered 500 with success: the credits came back. */
  restored: number;
  /**
   * Requests whose outcome the client cannot know: no answer, or a 503. A
   * 503 from a ledger fault may follow a spend that committed while its
   * reply was lost (the server could not know either); each of these may or
   * may not have spent.
   */
  unknownOutcomes: number;
  /** Most units a request with an unknown outcome could have spent. */
  unknownUnits: number;
  /** Top-ups: `spentByOthers` counts retries that found their charge credited and already spent by the client's other requests. */
  topUps: { started: number; succeeded: number; retried: number; spentByOthers: number; unresolved: UnresolvedTopUp[] };
  /** Charges this run's responses reported (chargeId): PaymentIntent id to when it was first reported, in ms since the load started. */
  charges: Map<string, number>;
  statuses: Map<number, number>;
  unknownClientRefusals: number;
  problems: string[];
  /** The first few network errors, for the report. */
  networkErrors: string[];
  elapsedMs: number;
}

function pick<T extends { weight: number }>(items: readonly T[]): T {
  const total = items.reduce((sum, item) => sum + item.weight, 0);
  let roll = Math.random() * total;
  for (const item of items) {
    roll -= item.weight;
    if (roll < 0) return item;
  }
  return items[items.length - 1]!;
}

/** A top-up amount in whole cents of units (usd: 100 units = 1 cent), between the route's limits. */
function topUpAmount(route: LoadRoute): number {
  const steps = Math.floor((route.maxTopUp - route.minTopUp) / 100);
  return route.minTopUp + 100 * Math.floor(Math.random() * (steps + 1));
}

export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const stats: LoadStats = {
    requests: 0,
    served: 0,
    servedUnits: new Map(),
    servedUnitsByRoute: new Map(),
    restored: 0,
    unknownOutcomes: 0,
    unknownUnits: 0,
    topUps: { started: 0, succeeded: 0, retried: 0, spentByOthers: 0, unresolved: [] },
    charges: new Map(),
    statuses: new Map(),
    unknownClientRefusals: 0,
    problems: [],
    networkErrors: [],
    elapsedMs: 0,
  };
  const started = Date.now();
  const deadline = started + options.durationMs;
  const url = typeof options.url === 'string' ? () => options.url as string : options.url;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const unknownShare = options.unknownClientShare ?? 0.05;
  const problem = (text: string) => {
    if (stats.problems.length < 50) stats.problems.push(text);
  };
  const budgetLeft = () => Date.now() < deadline && stats.requests < options.maxRequests;

  const send = async (path: string, payload: Record<string, unknown>): Promise<Outcome> => {
    stats.requests++;
    const outcome = await paidRequest(url(), path, payload, timeoutMs);
    stats.statuses.set(outcome.status, (stats.statuses.get(outcome.status) ?? 0) + 1);
    if (outcome.networkError) {
      const seen = `${((Date.now() - started) / 1000).toFixed(1)} s: ${outcome.networkError}`;
      if (stats.networkErrors.length < 5) stats.networkErrors.push(seen);
      else stats.networkErrors[5] = `... last: ${seen}`;
    }
    options.onTick?.(stats);
    return outcome;
  };

  /** Checks one answer against the protocol; true when it is a served (or restored) paid request. */
  const account = (route: LoadRoute, clientId: string, outcome: Outcome): boolean => {
    const { status, payment } = outcome;
    if (payment?.chargeId && !stats.charges.has(payment.chargeId)) stats.charges.set(payment.chargeId, Date.now() - started);
    if (status === 0 || status === 503) {
      stats.unknownOutcomes++;
      stats.unknownUnits += route.price;
      return false;
    }
    if (status >= 500 && status !== 503 && !(route.failing && status === 500)) problem(`${route.path} answered ${status}`);
    if (payment && payment.creditsRemaining < 0) problem(`a payment-response reported a negative balance`);
    if (payment && payment.clientId !== clientId && payment.clientId !== '') problem(`a payment-response named another client id`);
    if (status === 200 || (route.failing && status === 500)) {
      if (!payment?.success) {
        problem(`${route.path} answered ${status} without a successful payment-response`);
        return false;
      }
      if (status === 200) {
        stats.served++;
        stats.servedUnits.set(clientId, (stats.servedUnits.get(clientId) ?? 0) + route.price);
        stats.servedUnitsByRoute.set(route.path, (stats.servedUnitsByRoute.get(route.path) ?? 0) + route.price);
      } else {
        stats.restored++;
      }
      return true;
    }
    return false;
  };

  const topUp = async (card: Card, route: LoadRoute): Promise<void> => {
    stats.topUps.started++;
    const idempotencyKey = newIdempotencyKey();
    const payload = { stripe402Version: 1, paymentMethodId: card.paymentMethodId, topUpAmount: topUpAmount(route), idempotencyKey };
    const attempts = options.topUpAttempts ?? 12;
    let last: Outcome = { status: 0 };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // A top-up already under way is finished even after the deadline: a client does not walk away from a charge it may have made.
      if (attempt > 1) stats.topUps.retried++;
      last = await send(route.path, payload);
      if (last.status !== 0 && last.status !== 503) break;
      // The server may have credited and spent before the answer was lost; the retry then spends again.
      stats.unknownOutcomes++;
      stats.unknownUnits += route.price;
      await new Promise((resolve) => setTimeout(resolve, 100 * Math.min(attempt, 5)));
    }
    if (last.status === 0 || last.status === 503) {
      // The charge, if any, is found later by webhook or reconcile.
      stats.topUps.unresolved.push({ clientId: card.clientId, idempotencyKey, lastStatus: last.status });
      return;
    }
    if (account(route, card.clientId, last)) stats.topUps.succeeded++;
    else if (last.status === 402 && last.payment?.errorCode === 'insufficient_credits') {
      // PROC-12: this key's charge was credited first by another path (the webhook, an earlier attempt whose
      // answer was lost) and the client's other requests spent it; the client starts again with a new key.
      stats.topUps.spentByOthers++;
    } else if (last.status === 402) problem(`a top-up was refused: ${last.payment?.errorCode ?? 'no payment-response'}`);
  };

  const virtualClient = async (index: number): Promise<void> => {
    const card = options.cards[index % options.cards.length]!;
    while (budgetLeft()) {
      const route = pick(options.routes);
      if (Math.random() < unknownShare) {
        const stranger = randomBytes(32).toString('hex');
        const outcome = await send(route.path, { stripe402Version: 1, clientId: stranger });
        if (outcome.status === 402 && outcome.payment?.errorCode === 'insufficient_credits' && outcome.payment.creditsRemaining === 0) stats.unknownClientRefusals++;
        else if (outcome.status !== 0 && outcome.status !== 503) problem(`an unknown client id got ${outcome.status} ${outcome.payment?.errorCode ?? ''}`);
        continue;
      }
      const outcome = await send(route.path, { stripe402Version: 1, clientId: card.clientId });
      if (account(route, card.clientId, outcome)) continue;
      if (outcome.status === 402 && outcome.payment?.errorCode === 'insufficient_credits') {
        await topUp(card, route);
      } else if (outcome.status === 503 || outcome.status === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      } else if (outcome.status !== 402) {
        problem(`a spend got ${outcome.status}`);
      }
    }
  };

  await Promise.all(Array.from({ length: options.virtualClients }, (_, index) => virtualClient(index)));
  stats.elapsedMs = Date.now() - started;
  return stats;
}

/** One line of counts, for logs and the fault table. */
export function describeLoad(stats: LoadStats): string {
  const statuses = [...stats.statuses].sort((a, b) => a[0] - b[0]).map(([status, count]) => `${status === 0 ? 'no answer' : status}: ${count}`);
  return (
    `${stats.requests} requests in ${(stats.elapsedMs / 1000).toFixed(1)} s (${statuses.join(', ')}); ` +
    `${stats.served} served, ${stats.restored} restored, ${stats.topUps.started} top-ups (${stats.topUps.retried} retries, ${stats.topUps.unresolved.length} left to recovery), ` +
    `${stats.unknownClientRefusals} unknown ids refused`
  );
}
