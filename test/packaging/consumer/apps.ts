/**
 * A new user's project, as the package READMEs tell it: an Express, a
 * Fastify, a Hono and a plain Fetch-handler app with the stripe402 paywall,
 * each paid with @stripe402/client. It imports package names only and is
 * typechecked strictly (moduleResolution node16 and bundler) before it runs.
 * Prints one JSON line per app and the URL of the Express app, then waits
 * for stdin to close.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { withStripe402 } from '@stripe402/client';
import { stripe402 as expressPaywall } from '@stripe402/express';
import { stripe402 as fastifyPaywall } from '@stripe402/fastify';
import { stripe402 as honoPaywall } from '@stripe402/hono';
import { createStripeClient, deploymentIdOf, PaymentEngine, StripeSdkGateway, stripe402Fetch, type PaidRouteConfig } from '@stripe402/server';
import { openLedger } from '@stripe402/server/ledger';
import { startEmulator } from '@stripe402/stripe-emulator';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';

const routes: PaidRouteConfig[] = [
  { method: 'GET', path: '/api/joke', amount: 100, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'A joke' },
  { method: 'POST', path: '/api/echo', amount: 50, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'Echo' },
  { method: 'GET', path: '/api/fail', amount: 100, currency: 'usd', minTopUp: 50_000, maxTopUp: 10_000_000, description: 'Always 500' },
];
const joke = { joke: 'HTTP 402 waited 27 years for this joke.' };

const emulator = await startEmulator({ port: 0 });
const ledger = await openLedger('pglite:memory');
const serverSecret = 'packaging test server secret, 32 bytes or more';
const engine = new PaymentEngine({
  ledger,
  gateway: new StripeSdkGateway(createStripeClient(emulator.secretKey, { apiUrl: emulator.url }), { deploymentId: deploymentIdOf(serverSecret) }),
  serverSecret,
  publishableKey: emulator.publishableKey,
  routes,
});

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

// Express, with a body parser before the paywall.
const expressApp = express();
expressApp.use(express.json());
expressApp.use(expressPaywall({ engine }));
expressApp.get('/api/joke', (_req, res) => void res.json(joke));
expressApp.post('/api/echo', (req, res) => void res.json(req.body));
expressApp.get('/api/fail', (_req, res) => void res.status(500).json({ error: 'fails' }));
const expressServer = http.createServer(expressApp);
const expressUrl = await listen(expressServer);

// Fastify 5.
const fastifyApp = Fastify();
await fastifyApp.register(fastifyPaywall, { engine });
fastifyApp.get('/api/joke', async () => joke);
fastifyApp.post('/api/echo', async (request) => request.body);
fastifyApp.get('/api/fail', async (_request, reply) => reply.code(500).send({ error: 'fails' }));
await fastifyApp.listen({ port: 0, host: '127.0.0.1' });
const fastifyUrl = `http://127.0.0.1:${(fastifyApp.server.address() as AddressInfo).port}`;

// Hono on Node.
const honoApp = new Hono();
honoApp.use(honoPaywall({ engine }));
honoApp.get('/api/joke', (c) => c.json(joke));
honoApp.post('/api/echo', async (c) => c.json(await c.req.json()));
honoApp.get('/api/fail', (c) => c.json({ error: 'fails' }, 500));
const honoServer = serve({ fetch: honoApp.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((resolve) => honoServer.once('listening', resolve));
const honoUrl = `http://127.0.0.1:${(honoServer.address() as AddressInfo).port}`;

// A plain Fetch-API handler (what a Next.js route handler exports), served by Node.
const fetchHandler = stripe402Fetch({ engine }, async (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/api/joke') return Response.json(joke);
  if (pathname === '/api/echo') return Response.json(await request.json());
  if (pathname === '/api/fail') return Response.json({ error: 'fails' }, { status: 500 });
  return Response.json({ error: 'not_found' }, { status: 404 });
});
const fetchServer = serve({ fetch: fetchHandler, port: 0, hostname: '127.0.0.1' });
await new Promise((resolve) => fetchServer.once('listening', resolve));
const fetchUrl = `http://127.0.0.1:${(fetchServer.address() as AddressInfo).port}`;

const apps = { express: expressUrl, fastify: fastifyUrl, hono: honoUrl, fetch: fetchUrl };
for (const [name, url] of Object.entries(apps)) {
  // The paying client, as an agent builder uses it.
  const paidFetch = withStripe402(fetch, { paymentMethodId: 'pm_card_visa', budget: { maxPricePerRequest: 1_000, maxTopUp: 50_000 } });
  const first = await paidFetch(`${url}/api/joke`);
  const second = await paidFetch(`${url}/api/joke`);
  const echo = await paidFetch(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 42 }) });
  const unpaid = await fetch(`${url}/api/joke`);
  console.log(JSON.stringify({
    app: name,
    first: first.status,
    joke: ((await first.json()) as typeof joke).joke === joke.joke,
    second: second.status,
    secondReceipt: second.headers.get('payment-response') !== null,
    echo: await echo.json(),
    unpaid: unpaid.status,
  }));
}
console.log(JSON.stringify({ conformanceTarget: expressUrl, stripeUrl: emulator.url, stripeKey: emulator.secretKey }));

// Stays up for the conformance CLI until the test closes stdin.
process.stdin.resume();
process.stdin.on('end', async () => {
  expressServer.close();
  honoServer.close();
  fetchServer.close();
  await fastifyApp.close();
  await ledger.close();
  await emulator.close();
  process.exit(0);
});
