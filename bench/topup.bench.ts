/**
 * The cost of a top-up: how long a paid request that charges the card takes
 * end to end, against the time the Stripe calls it needs take on their own
 * (the same requests made directly to the emulator with the official SDK),
 * so the difference is this server's own overhead: the ledger's top-up lock,
 * the credit, the engine and HTTP. A plain spend on the same server is
 * measured beside it. Sequential requests, one at a time, so the figures
 * are latencies, not throughput.
 *
 * The bench route costs exactly its minimum top-up, so every top-up request
 * finds the balance empty and charges. Which Stripe calls a top-up makes is
 * counted on the emulator (one fault rule per endpoint), not assumed, and
 * the same rules add a fixed latency to every Stripe call: at 0 ms the
 * figures are this server's own cost, at 200 ms (a fast answer from real
 * Stripe) they show what each sequential Stripe call costs a client. The
 * engine makes a top-up's calls one after another, so the calls counted are
 * the sequential calls. The first top-up of a card the server has never
 * seen (no Customer yet) is counted on its own.
 *
 *   npx tsx bench/topup.bench.ts [redis] [postgres] [pglite]
 *   BENCH_TOPUPS=100 BENCH_STRIPE_LATENCY_MS=0,200,500 npx tsx bench/topup.bench.ts
 */
import { randomBytes } from 'node:crypto';
import { stripeClientForUrl } from '@stripe402/stripe-emulator';
import { encodeHeader } from '@stripe402/core';
import type { PaidRouteConfig } from '@stripe402/server';
import { startFleet } from '../test/scale/fleet.ts';
import { createCards, newIdempotencyKey, paidRequest, topUp } from '../test/scale/protocol.ts';
import { ledgerTarget, startEmulatorProcess, type LedgerKind } from '../test/scale/services.ts';
import { machineLine, table, ledgerArguments, runWhenScript } from './harness.ts';

const ROUTES: PaidRouteConfig[] = [
  // Costs its minimum top-up: each top-up is spent by its own request, the next one charges again.
  { method: 'GET', path: '/api/joke', amount: 50_000, currency: 'usd', minTopUp: 50_000, maxTopUp: 50_000 },
  { method: 'GET', path: '/api/weather', amount: 100, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000 },
];

/** The Stripe endpoints a top-up may call, each counted with its own rule. */
const ENDPOINTS = [
  { method: 'GET', path: '^/v1/payment_methods/[^/]+$', name: 'retrieve PaymentMethod' },
  { method: 'GET', path: '/v1/payment_intents/search', name: 'search PaymentIntents' },
  { method: 'GET', path: '/v1/customers/search', name: 'search Customers' },
  { method: 'POST', path: '^/v1/customers$', name: 'create Customer' },
  { method: 'POST', path: '^/v1/payment_intents$', name: 'create+confirm PaymentIntent' },
  { method: 'POST', path: '/v1/payment_methods/', name: 'attach PaymentMethod' },
  { method: 'GET', path: '^/v1/payment_intents/pi_[^/]+$', name: 'retrieve PaymentIntent' },
  // Last: whatever else a top-up calls is counted (and delayed) too.
  { method: undefined, path: '^/v1/', name: 'other' },
] as const;

export interface TopUpRow {
  ledger: LedgerKind;
  /** Latency the emulator added to every Stripe call, in ms. */
  stripeLatencyMs: number;
  topUps: number;
  topUpP50: number;
  topUpP99: number;
  spendP50: number;
  /** The same Stripe calls made directly, p50 of their sum. */
  stripeP50: number;
  /** topUpP50 - stripeP50. */
  overheadP50: number;
  callsPerTopUp: Record<string, number>;
  /** The first top-up of a card this server never saw: its latency and its calls. */
  firstTopUpMs: number;
  firstTopUpCalls: Record<string, number>;
}

/** The calls counted between two snapshots of the rules' hits, per top-up. */
function callsBetween(rules: Array<{ endpoint: (typeof ENDPOINTS)[number]; id: string }>, before: Map<string, number>, after: Map<string, number>, topUps: number): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const { endpoint, id } of rules) {
    const count = ((after.get(id) ?? 0) - (before.get(id) ?? 0)) / topUps;
    if (count > 0) calls[endpoint.name] = Math.round(count * 100) / 100;
  }
  return calls;
}

function total(calls: Record<string, number>): number {
  return Object.values(calls).reduce((sum, n) => sum + n, 0);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function benchLedger(kind: LedgerKind, topUps: number, stripeLatencyMs: number): Promise<TopUpRow> {
  // The emulator in a process of its own: the server's calls and the direct ones below both cross processes.
  const emulator = await startEmulatorProcess();
  const target = await ledgerTarget(kind);
  const serverSecret = randomBytes(32).toString('hex');
  const fleet = await startFleet(
    {
      ...target.fleetLedger,
      stripeUrl: emulator.url,
      routes: ROUTES,
      workers: 1,
      port: 0,
    },
    { serverSecret },
  );
  try {
    const stripe = stripeClientForUrl(emulator.url, 'sk_test_emulator');
    const [card, spender] = await createCards(stripe, serverSecret, 2);
    const rules: Array<{ endpoint: (typeof ENDPOINTS)[number]; id: string }> = [];
    for (const endpoint of ENDPOINTS) {
      const match = endpoint.method === undefined ? { path: endpoint.path } : { method: endpoint.method, path: endpoint.path };
      rules.push({ endpoint, id: await emulator.armFault({ match, kind: 'latency', ms: stripeLatencyMs, times: 'unlimited' }) });
    }
    // The first top-up of a card never seen: the Customer is created here.
    const firstHits = await emulator.faultHits();
    const firstStarted = performance.now();
    const first = await paidRequest(fleet.url, '/api/joke', { stripe402Version: 1, paymentMethodId: card!.paymentMethodId, topUpAmount: 50_000, idempotencyKey: newIdempotencyKey() });
    const firstTopUpMs = performance.now() - firstStarted;
    if (first.status !== 200 || !first.payment?.chargeId) throw new Error(`${kind}: the first top-up did not charge (${first.status})`);
    const firstTopUpCalls = callsBetween(rules, firstHits, await emulator.faultHits(), 1);
    // Warm-up: JIT, pools.
    for (let i = 0; i < 4; i++) await topUp(fleet.url, '/api/joke', card!, 50_000);
    await topUp(fleet.url, '/api/weather', spender!, 10_000_000);

    const before = await emulator.faultHits();
    const latencies: number[] = [];
    for (let i = 0; i < topUps; i++) {
      const started = performance.now();
      const outcome = await paidRequest(fleet.url, '/api/joke', { stripe402Version: 1, paymentMethodId: card!.paymentMethodId, topUpAmount: 50_000, idempotencyKey: newIdempotencyKey() });
      latencies.push(performance.now() - started);
      if (outcome.status !== 200 || !outcome.payment?.chargeId) throw new Error(`${kind}: a top-up did not charge (${outcome.status})`);
    }
    const callsPerTopUp = callsBetween(rules, before, await emulator.faultHits(), topUps);
    await emulator.clearFaults();

    const spends: number[] = [];
    const header = encodeHeader({ stripe402Version: 1, clientId: spender!.clientId });
    for (let i = 0; i < topUps; i++) {
      const started = performance.now();
      const response = await fetch(`${fleet.url}/api/weather`, { headers: { payment: header } });
      await response.arrayBuffer();
      spends.push(performance.now() - started);
      if (response.status !== 200) throw new Error(`${kind}: a spend was refused (${response.status})`);
    }

    // The same Stripe calls, made directly: what the emulator itself costs.
    // With the latency rules armed again, so that the direct calls pay what the server's calls paid.
    for (const endpoint of ENDPOINTS) {
      const match = endpoint.method === undefined ? { path: endpoint.path } : { method: endpoint.method, path: endpoint.path };
      await emulator.armFault({ match, kind: 'latency', ms: stripeLatencyMs, times: 'unlimited' });
    }
    const direct: number[] = [];
    const customer = (await stripe.paymentMethods.retrieve(card!.paymentMethodId)).customer as string | null;
    for (let i = 0; i < topUps; i++) {
      const started = performance.now();
      for (const [name, count] of Object.entries(callsPerTopUp)) {
        for (let c = 0; c < Math.round(count); c++) {
          if (name === 'retrieve PaymentMethod') await stripe.paymentMethods.retrieve(card!.paymentMethodId);
          else if (name === 'search PaymentIntents') await stripe.paymentIntents.search({ query: `metadata['stripe402_client_id']:'${card!.clientId}'`, limit: 1 });
          else if (name === 'search Customers') await stripe.customers.search({ query: `metadata['stripe402_client_id']:'${card!.clientId}'`, limit: 1 });
          else if (name === 'create Customer') await stripe.customers.create({ metadata: { bench: '1' } });
          else if (name === 'retrieve PaymentIntent') await stripe.paymentIntents.retrieve(first.payment!.chargeId!);
          else if (name === 'create+confirm PaymentIntent') {
            await stripe.paymentIntents.create(
              {
                amount: 500,
                currency: 'usd',
                payment_method: card!.paymentMethodId,
                ...(customer ? { customer } : {}),
                confirm: true,
                automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
                metadata: { bench: 'direct' },
              },
              { idempotencyKey: `bench-direct-${randomBytes(8).toString('hex')}` },
            );
          }
        }
      }
      direct.push(performance.now() - started);
    }
    await emulator.clearFaults();
    const row: TopUpRow = {
      ledger: kind,
      stripeLatencyMs,
      topUps,
      topUpP50: percentile(latencies, 0.5),
      topUpP99: percentile(latencies, 0.99),
      spendP50: percentile(spends, 0.5),
      stripeP50: percentile(direct, 0.5),
      overheadP50: 0,
      callsPerTopUp,
      firstTopUpMs,
      firstTopUpCalls,
    };
    row.overheadP50 = row.topUpP50 - row.stripeP50;
    return row;
  } finally {
    await fleet.stop();
    await emulator.close();
    await target.dispose();
  }
}

export async function main(options: { ledgers?: LedgerKind[]; topUps?: number; stripeLatenciesMs?: number[]; log?: (line: string) => void } = {}): Promise<TopUpRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const topUps = options.topUps ?? (Number(process.env.BENCH_TOPUPS) || 40);
  const latencies = options.stripeLatenciesMs ?? (process.env.BENCH_STRIPE_LATENCY_MS ?? '0,200').split(',').map(Number);
  log(`top-up cost: ${topUps} sequential top-ups per ledger (each one charges), at ${latencies.join(' and ')} ms per Stripe call, against the same Stripe calls made directly`);
  log(machineLine());
  const rows: TopUpRow[] = [];
  for (const latency of latencies) {
    for (const kind of options.ledgers ?? (['redis', 'postgres', 'pglite'] as LedgerKind[])) rows.push(await benchLedger(kind, topUps, latency));
  }
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  table(
    [
      ['ledger', 'Stripe latency', 'sequential Stripe calls', 'top-up p50', 'p99', 'Stripe calls alone p50', 'our overhead p50', 'plain spend p50', 'first top-up of a card: calls', 'its time'],
      ...rows.map((row) => [
        row.ledger,
        `${row.stripeLatencyMs} ms`,
        String(total(row.callsPerTopUp)),
        ms(row.topUpP50),
        ms(row.topUpP99),
        ms(row.stripeP50),
        ms(row.overheadP50),
        ms(row.spendP50),
        String(total(row.firstTopUpCalls)),
        ms(row.firstTopUpMs),
      ]),
    ],
    log,
  );
  log(`Stripe calls per top-up of a card seen before: ${Object.entries(rows[0]?.callsPerTopUp ?? {}).map(([name, n]) => `${name} ${n}`).join(', ')}`);
  log(`Stripe calls of the first top-up of a card: ${Object.entries(rows[0]?.firstTopUpCalls ?? {}).map(([name, n]) => `${name} ${n}`).join(', ')}`);
  return rows;
}

runWhenScript(import.meta.url, () => {
  const ledgers = ledgerArguments();
  return main(ledgers ? { ledgers } : {});
});
