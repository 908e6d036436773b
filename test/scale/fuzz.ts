/**
 * Bad input at volume, over raw TCP so that nothing between the generator
 * and the server cleans it up: the `payment` header (the conformance
 * suite's invalid-input classes and vectors, random edits of a valid
 * header, payloads with a member of the wrong type, raw junk with control
 * characters, over-long and repeated values), random other headers, and
 * the discovery endpoint under odd methods, paths and queries. The invalid
 * payment headers name a funded client and a real card, so a lax server
 * would spend or charge where the run is watching.
 *
 * Verdict: no 5xx, the server never crashes, the ledger (every account and
 * journal) and Stripe (every object count) are exactly as before, and the
 * heap in use after a full GC stays flat once warm.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import type { Emulator } from '@stripe402/stripe-emulator';
import { builtInInputs, invalidPayloadArbitrary, mutationArbitrary, vectorInputs } from '../../conformance/properties/invalid-input.ts';
import { encodeHeader } from '@stripe402/core';
import type { Ledger } from '@stripe402/server/ledger';
import { startStack } from './fleet.ts';
import { createCards, topUp } from './protocol.ts';
import type { LedgerKind } from './services.ts';
import { SCALE_ROUTES } from './scenarios.ts';

export interface FuzzOptions {
  ledger: LedgerKind;
  /** Requests in all (bounded). */
  requests: number;
  /** fast-check seed, for replay. Default random. */
  seed?: number;
  /** Requests in flight at once. */
  concurrency?: number;
}

export interface FuzzResult {
  seed: number;
  requests: number;
  statuses: Map<number, number>;
  /** Requests answered 5xx, or not answered at all, with what was sent. */
  failures: string[];
  serverAlive: boolean;
  ledgerChanged: string[];
  stripeChanged: string[];
  /** Heap in use after a full GC, in bytes: after warm-up, half-way through the rest, at the end. */
  heap: { warm: number; middle: number; end: number };
  elapsedMs: number;
}

interface RawRequest {
  method: string;
  path: string;
  /** Header lines as sent, possibly repeated, possibly junk. */
  headers: Array<[string, string]>;
  label: string;
}

const PAID_PATHS = ['/api/joke', '/api/weather', '/api/fail'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND'];

/** Sends one request byte for byte; the status, or 0 when the server did not answer. */
function sendRaw(port: number, request: RawRequest, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => finish(0), timeoutMs);
    socket.on('connect', () => {
      const lines = [`${request.method} ${request.path} HTTP/1.1`, `host: 127.0.0.1:${port}`, ...request.headers.map(([n, v]) => `${n}: ${v}`), 'connection: close'];
      // write, not end: a half-closed socket makes Node's server drop a response it is still preparing.
      socket.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'));
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (match) finish(Number(match[1]));
    });
    socket.on('error', () => finish(0));
    socket.on('close', () => finish(/^HTTP\/1\.[01] (\d{3})/.exec(received) ? Number(/^HTTP\/1\.[01] (\d{3})/.exec(received)![1]) : 0));
  });
}

function requestArbitrary(card: string, clientId: string): fc.Arbitrary<RawRequest> {
  const valid = encodeHeader({ stripe402Version: 1, clientId });
  const known = [...vectorInputs(card, clientId), ...builtInInputs(card, clientId, 50_000)];
  const invalidPayment = fc.oneof(
    fc.constantFrom(...known).map((input) => ({ value: input.value, label: input.source })),
    mutationArbitrary(valid).map((input) => ({ value: input.value, label: input.source })),
    invalidPayloadArbitrary(card, clientId).map((input) => ({ value: input.value, label: input.source })),
    // Raw junk, control characters included: the HTTP layer may refuse it (400), never the server fall over.
    fc.string({ maxLength: 200 }).map((value) => ({ value, label: `raw string ${JSON.stringify(value.slice(0, 40))}` })),
    fc.string({ unit: 'binary', maxLength: 100 }).map((value) => ({ value, label: `binary string` })),
    fc.integer({ min: 4_000, max: 12_000 }).map((length) => ({ value: 'A'.repeat(length), label: `${length} characters` })),
    fc.jsonValue({ maxDepth: 3 }).map((json) => ({ value: Buffer.from(JSON.stringify(json) ?? 'null').toString('base64'), label: `base64 of random JSON` })),
  );
  const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,24}$/).filter((name) => !['host', 'connection', 'content-length', 'transfer-encoding', 'payment'].includes(name));
  const headerValue = fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('', ' ', '\t', '*', 'null', '0', '-1', '../../etc/passwd', '%00', '\u0000'));
  const otherHeaders = fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 });
  const commonHeaders = fc.array(
    fc.tuple(fc.constantFrom('origin', 'content-type', 'accept', 'accept-encoding', 'cache-control', 'stripe-signature', 'x-forwarded-for', 'cookie', 'authorization'), headerValue),
    { maxLength: 4 },
  );
  const variantOf = (path: string) =>
    fc.constantFrom(path, path + '/', path.toUpperCase(), '//' + path.slice(1), path.replace('/', '/%2f'), '/v1' + path, path + '?x=1', path + '/..', path + '/../' + path.split('/').pop(), encodeURI(path) + '%00');
  const discoveryPath = fc.oneof(
    variantOf('/.well-known/stripe402'),
    fc.tuple(fc.constant('/.well-known/stripe402'), fc.string({ maxLength: 40 })).map(([p, s]) => p + '?' + encodeURIComponent(s)),
    fc.string({ maxLength: 30 }).map((s) => '/.well-known/' + encodeURIComponent(s)),
  );
  // Mostly the paid paths as they are, so the paywall sees the bad headers; sometimes a variant (PAY-1).
  const paidPath = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...PAID_PATHS) }, { weight: 1, arbitrary: fc.constantFrom(...PAID_PATHS).chain(variantOf) });
  const paymentRequest = fc
    .record({ path: paidPath, method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST'), payment: invalidPayment, repeat: fc.nat({ max: 6 }), extra: otherHeaders, common: commonHeaders })
    .map(({ path, method, payment, repeat, extra, common }) => ({
      method,
      path,
      // Sometimes the same header twice (ENC-9), or a valid one beside an invalid one.
      headers: [
        ['payment', payment.value] as [string, string],
        ...(repeat === 0 ? [['payment', payment.value] as [string, string]] : repeat === 1 ? [['payment', valid] as [string, string]] : []),
        ...extra,
        ...common,
      ],
      label: `${method} ${path} with ${payment.label}`,
    }));
  const discoveryRequest = fc
    .record({ path: discoveryPath, method: fc.constantFrom(...METHODS), extra: otherHeaders, common: commonHeaders })
    .map(({ path, method, extra, common }) => ({ method, path, headers: [...extra, ...common], label: `${method} ${path} (discovery)` }));
  const anyRequest = fc
    .record({ path: fc.oneof(fc.constantFrom('/', '/health', '/stripe402/webhook', '/api'), fc.webPath()), method: fc.constantFrom(...METHODS), extra: otherHeaders, common: commonHeaders })
    .map(({ path, method, extra, common }) => ({ method, path: path.startsWith('/') ? path : '/' + path, headers: [...extra, ...common], label: `${method} ${path}` }));
  return fc.oneof({ weight: 6, arbitrary: paymentRequest }, { weight: 2, arbitrary: discoveryRequest }, { weight: 1, arbitrary: anyRequest });
}

/** Everything a request could change in the ledger, for one before/after comparison. */
async function ledgerSnapshot(ledger: Ledger): Promise<Map<string, string>> {
  const snapshot = new Map<string, string>();
  for (const account of await ledger.accounts()) {
    const journal = await ledger.journal(account);
    snapshot.set(`${account.clientId}:${account.currency}`, `${account.balance}/${journal.length}/${journal.reduce((s, e) => s + e.delta, 0)}`);
  }
  return snapshot;
}

function stripeSnapshot(emulator: Emulator): Record<string, number> {
  const s = emulator.state;
  return { paymentIntents: s.paymentIntents().length, paymentMethods: s.paymentMethods().length, customers: s.customers().length, charges: s.charges().length, refunds: s.refunds().length };
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const { emulator, target, serverSecret, fleet, stop } = await startStack(
    options.ledger,
    { webhookSecret: `whsec_${randomBytes(16).toString('hex')}`, routes: SCALE_ROUTES, workers: 1, port: 0 },
    { exposeGc: true },
  );
  const started = Date.now();
  try {
    // A funded client with a real card: the invalid headers name both.
    const [card] = await createCards(emulator.stripe(), serverSecret, 1);
    const funded = await topUp(fleet.url, '/api/joke', card!, 200_000);
    if (funded.final.status !== 200) throw new Error(`funding failed with ${funded.final.status}`);
    const port = Number(new URL(fleet.url).port);

    // PGlite's directory belongs to the server process while it runs: its ledger is compared through the paid route's answers instead.
    const readLedger = options.ledger !== 'pglite';
    const ledger = readLedger ? await target.openLedger() : undefined;
    try {
      const ledgerBefore = ledger ? await ledgerSnapshot(ledger) : new Map();
      const stripeBefore = stripeSnapshot(emulator);
      const samples = fc.sample(requestArbitrary(card!.paymentMethodId, card!.clientId), { numRuns: options.requests, seed });
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      const concurrency = options.concurrency ?? 16;
      const warmAt = Math.floor(options.requests / 3);
      const middleAt = Math.floor((2 * options.requests) / 3);
      const heap = { warm: 0, middle: 0, end: 0 };
      let next = 0;
      const runUntil = async (end: number) => {
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < end) {
              const request = samples[next++]!;
              const status = await sendRaw(port, request);
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
              if ((status === 0 || status >= 500) && failures.length < 20) failures.push(`${status || 'no answer'}: ${request.label}`);
            }
          }),
        );
      };
      await runUntil(warmAt);
      heap.warm = await fleet.heapUsed();
      await runUntil(middleAt);
      heap.middle = await fleet.heapUsed();
      await runUntil(options.requests);
      heap.end = await fleet.heapUsed();

      const serverAlive = fleet.alive() && (await fetch(`${fleet.url}/health`).then((r) => r.status === 200, () => false));
      const ledgerChanged: string[] = [];
      if (ledger) {
        const after = await ledgerSnapshot(ledger);
        for (const key of new Set([...ledgerBefore.keys(), ...after.keys()])) {
          if (ledgerBefore.get(key) !== after.get(key)) ledgerChanged.push(`${key.slice(0, 12)}: ${ledgerBefore.get(key) ?? 'absent'} -> ${after.get(key) ?? 'absent'}`);
        }
      } else {
        // The funded balance, read through the server: a 402 challenge-free probe would spend, so ask with a top-up-free
        // spend and compare with the balance the funding top-up reported, minus that one spend.
        const probe = await fetch(`${fleet.url}/api/weather`, { headers: { payment: encodeHeader({ stripe402Version: 1, clientId: card!.clientId }) } });
        const reported = probe.headers.get('payment-response');
        const balance = reported ? (JSON.parse(Buffer.from(reported, 'base64').toString('utf8')) as { creditsRemaining: number }).creditsRemaining : -1;
        if (balance !== funded.final.payment!.creditsRemaining - 2_500) ledgerChanged.push(`balance ${funded.final.payment!.creditsRemaining} -> ${balance + 2_500}`);
      }
      const stripeAfter = stripeSnapshot(emulator);
      const stripeChanged = Object.keys(stripeBefore)
        .filter((key) => stripeBefore[key] !== stripeAfter[key])
        .map((key) => `${key}: ${stripeBefore[key]} -> ${stripeAfter[key]}`);
      return { seed, requests: next, statuses, failures, serverAlive, ledgerChanged, stripeChanged, heap, elapsedMs: Date.now() - started };
    } finally {
      await ledger?.close();
    }
  } finally {
    await stop();
  }
}
