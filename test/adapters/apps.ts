/**
 * The demo API as a real app of each framework: Express (4 or 5), Fastify
 * 5, and a plain Fetch-API handler served by Node. Each mounts a body
 * parser before the paywall, so a paid POST (/api/echo) shows its body
 * reaching the handler through both.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { stripe402 as expressPaywall } from '@stripe402/express';
import { stripe402 as fastifyPaywall } from '@stripe402/fastify';
import { stripe402Fetch, type Stripe402Options } from '@stripe402/server';
import express5 from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { demo } from './kit.ts';

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

function listening(server: http.Server): Promise<RunningApp> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The demo on Express; `version` picks Express 4 or 5. */
export function startExpressApp(options: Stripe402Options, version: 4 | 5 = 5): Promise<RunningApp> {
  const express = (version === 4 ? express4 : express5) as typeof express5;
  const app = express();
  app.disable('x-powered-by');
  // A body parser before the paywall: the paid POST's body must still reach its handler.
  app.use(express.raw({ type: '*/*', limit: '1mb' }));
  app.use((req, res, next) => {
    res.set(demo.cors);
    if (req.method === 'OPTIONS') return void res.set(demo.preflight).status(204).end();
    next();
  });
  app.use(expressPaywall(options));
  app.get('/health', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/api/joke', (_req, res) => void res.json(demo.joke()));
  app.get('/api/weather', (req, res) => void res.json(demo.weather(typeof req.query.city === 'string' ? req.query.city : undefined)));
  app.post('/api/echo', (req, res) => {
    res.type(req.get('content-type') ?? 'application/octet-stream');
    res.send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  });
  app.get('/api/fortune', (_req, res) => void res.json(demo.fortune()));
  app.get('/api/fail', (_req, res) => void res.status(500).json(demo.fail()));
  app.use((_req, res) => void res.status(404).json(demo.notFound()));
  app.use((_error: unknown, _req: unknown, res: express5.Response, _next: unknown) => void res.status(500).json({ error: 'internal_error' }));
  return listening(http.createServer(app));
}

/** The demo on Fastify 5. */
export async function startFastifyApp(options: Stripe402Options): Promise<RunningApp> {
  const app = Fastify();
  // Every body type arrives as bytes (the paid POST echoes them).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(demo.cors);
    if (request.method === 'OPTIONS') return reply.headers(demo.preflight).code(204).send();
  });
  await app.register(fastifyPaywall, options);
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/api/joke', async () => demo.joke());
  app.get<{ Querystring: { city?: string } }>('/api/weather', async (request) => demo.weather(request.query.city));
  app.post('/api/echo', async (request, reply) => {
    reply.type(request.headers['content-type'] ?? 'application/octet-stream');
    return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  });
  app.get('/api/fortune', async () => demo.fortune());
  app.get('/api/fail', async (_request, reply) => reply.code(500).send(demo.fail()));
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(demo.notFound()));
  app.setErrorHandler(async (_error, _request, reply) => reply.code(500).send({ error: 'internal_error' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** The demo as one Fetch-API handler (what a Next.js route handler, Bun or Deno would export), served by Node. */
export function demoFetchHandler(options: Stripe402Options): (request: Request) => Promise<Response> {
  const json = (body: unknown, status = 200) => Response.json(body, { status });
  const paid = stripe402Fetch(options, async (request) => {
    const url = new URL(request.url);
    const route = `${request.method === 'HEAD' ? 'GET' : request.method} ${url.pathname.toLowerCase().replace(/\/+$/, '')}`;
    switch (route) {
      case 'GET /health': return json({ status: 'ok' });
      case 'GET /api/joke': return json(demo.joke());
      case 'GET /api/weather': return json(demo.weather(url.searchParams.get('city') ?? undefined));
      case 'POST /api/echo': return new Response(await request.arrayBuffer(), { headers: { 'content-type': request.headers.get('content-type') ?? 'application/octet-stream' } });
      case 'GET /api/fortune': return json(demo.fortune());
      case 'GET /api/fail': return json(demo.fail(), 500);
      default: return json(demo.notFound(), 404);
    }
  });
  return async (request) => {
    if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: { ...demo.cors, ...demo.preflight } });
    const response = await paid(request);
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(demo.cors)) headers.set(name, value);
    return new Response(request.method === 'HEAD' ? null : response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

export function startFetchApp(options: Stripe402Options): Promise<RunningApp> {
  const handler = demoFetchHandler(options);
  return new Promise((resolve) => {
    const server = serve({ fetch: handler, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
  });
}
