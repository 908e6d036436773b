/**
 * A stripe402 v1 resource server as deployed before this project's
 * extensions, written from the v1 wire description (protocol.md, D0-D2) to
 * prove that the reference client needs nothing more. It reads only
 * `paymentMethodId`, `clientId` and `topUpAmount`; it ignores
 * `idempotencyKey`, `currency` and `paymentIntentId`; it decodes the
 * payment header laxly, like v1; its error 402s carry a PaymentResponse body
 * with `clientId: ""` and no payment headers; balances live in a Map; the
 * card is charged through the official stripe SDK (pointed at the emulator),
 * with no idempotency key, as v1 does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { deriveClientId, encodeHeader, unitsToMinor } from '@stripe402/core';

/** A paid route of the v1 server. */
export interface V1Route {
  amount: number;
  currency: string;
  minTopUp: number;
  description?: string;
}

/** What the v1 server saw, for assertions. */
export interface V1RequestRecord {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

export interface RunningV1Server {
  url: string;
  /** Balances in units, by client id. */
  balances: Map<string, number>;
  /** Every request received, in order. */
  requests: V1RequestRecord[];
  /** The PaymentIntent ids this server created. */
  charges: string[];
  close(): Promise<void>;
}

export interface V1ServerOptions {
  stripeUrl: string;
  stripeSecretKey: string;
  publishableKey: string;
  serverSecret: string;
  routes?: Record<string, V1Route>;
  /**
   * How units become the charge: `spec` (UNIT-2), or `two-decimals`, the
   * defect of v1 servers that divide by 100 whatever the currency (a yen
   * price charged 100 times over).
   */
  minorUnits?: 'spec' | 'two-decimals';
}

/** The v1 demo's price list: route key "METHOD /path". */
export const V1_ROUTES: Record<string, V1Route> = {
  'GET /api/joke': { amount: 100, currency: 'usd', minTopUp: 50_000, description: 'A joke' },
  'POST /api/echo': { amount: 50, currency: 'usd', minTopUp: 50_000, description: 'Echoes the body' },
};

export async function startV1Server(options: V1ServerOptions): Promise<RunningV1Server> {
  const api = new URL(options.stripeUrl);
  const stripe = new Stripe(options.stripeSecretKey, {
    host: api.hostname,
    port: Number(api.port || 80),
    protocol: api.protocol === 'https:' ? 'https' : 'http',
    telemetry: false,
    maxNetworkRetries: 0,
  });
  const routes = options.routes ?? V1_ROUTES;
  const balances = new Map<string, number>();
  const requests: V1RequestRecord[] = [];
  const charges: string[] = [];

  const deduct = (clientId: string, amount: number): number | null => {
    const balance = balances.get(clientId) ?? 0;
    if (balance < amount) return null;
    balances.set(clientId, balance - amount);
    return balance - amount;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://v1.local');
    const route = routes[`${req.method} ${url.pathname}`];
    const serve = (paymentResponse?: object) => {
      if (paymentResponse) res.setHeader('payment-response', encodeHeader(paymentResponse));
      if (url.pathname === '/api/echo') {
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        res.end(body);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ joke: 'A v1 server walks into a bar.' }));
      }
    };
    if (url.pathname === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    const send402 = (error?: string) => {
      const challenge = {
        stripe402Version: 1,
        resource: { url: url.pathname },
        accepts: [{ scheme: 'stripe', currency: route.currency, amount: route.amount, minTopUp: route.minTopUp, publishableKey: options.publishableKey, description: route.description }],
        error,
      };
      res.writeHead(402, { 'payment-required': encodeHeader(challenge), 'content-type': 'application/json' });
      res.end(JSON.stringify(challenge));
    };
    const sendPaymentError = (code: string, message: string) => {
      res.writeHead(402, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: false, creditsRemaining: 0, clientId: '', error: message, errorCode: code }));
    };

    const header = req.headers['payment'];
    if (typeof header !== 'string') return send402();
    let payload: { clientId?: string; paymentMethodId?: string; topUpAmount?: number };
    try {
      // v1 decodes laxly: whatever Buffer makes of it, then JSON.parse.
      payload = JSON.parse(Buffer.from(header, 'base64').toString('utf-8'));
    } catch {
      return sendPaymentError('invalid_payment', 'Malformed payment header');
    }

    if (payload.clientId) {
      const remaining = deduct(payload.clientId, route.amount);
      if (remaining !== null) return serve({ success: true, creditsRemaining: remaining, clientId: payload.clientId });
      if (!payload.paymentMethodId) return send402('insufficient_credits');
    }
    if (!payload.paymentMethodId) return send402();
    const topUpAmount = payload.topUpAmount ?? route.minTopUp;
    if (topUpAmount < route.minTopUp) {
      return sendPaymentError('top_up_below_minimum', `Top-up amount ${topUpAmount} is below the minimum of ${route.minTopUp}`);
    }
    try {
      const method = await stripe.paymentMethods.retrieve(payload.paymentMethodId);
      const clientId = await deriveClientId(options.serverSecret, method.card?.fingerprint ?? '');
      const existing = deduct(clientId, route.amount);
      if (existing !== null) return serve({ success: true, creditsRemaining: existing, clientId });
      const intent = await stripe.paymentIntents.create({
        amount: unitsToMinor(topUpAmount, options.minorUnits === 'two-decimals' ? 'usd' : route.currency),
        currency: route.currency,
        payment_method: payload.paymentMethodId,
        confirm: true,
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
        description: `stripe402 top-up for ${route.description ?? url.pathname}`,
      });
      charges.push(intent.id);
      if (intent.status !== 'succeeded') return sendPaymentError('payment_failed', `Payment did not succeed. Status: ${intent.status}`);
      balances.set(clientId, (balances.get(clientId) ?? 0) + topUpAmount);
      const remaining = deduct(clientId, route.amount) ?? 0;
      return serve({ success: true, chargeId: intent.id, creditsRemaining: remaining, clientId });
    } catch (error) {
      if ((error as { type?: string }).type === 'StripeCardError') return sendPaymentError('card_declined', 'Your card was declined.');
      return sendPaymentError('payment_failed', 'Payment processing failed');
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.on('finish', () =>
        requests.push({ method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body: body.toString('utf8'), status: res.statusCode }),
      );
      handle(req, res, body).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    balances,
    requests,
    charges,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
