/**
 * The stripe402 MCP server: gives an agent's host two tools over the Model
 * Context Protocol, built on the official SDK. `stripe402_fetch` fetches a
 * URL and pays a stripe402 challenge within the configured budget;
 * `stripe402_balances` reports what was paid and what is left, per origin
 * and currency. Before a top-up above the configured threshold the person
 * is asked through MCP elicitation; a host that cannot ask gets a refusal
 * unless the configuration allows it. Every failure is a tool error carrying
 * the client's error code, never a crash, and a refused top-up charges
 * nothing. One `Stripe402Session` (client, budget, client ids) serves every
 * MCP connection of the process, so the caps count across them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { currencyExponent } from '@stripe402/core';
import {
  AuthenticationRequiredError,
  BudgetExceededError,
  BudgetPolicy,
  formatMinor,
  formatUnits,
  limitFor,
  redactClientId,
  Stripe402Client,
  Stripe402ClientError,
  type AuthenticationDetails,
  type PaymentEvent,
  type TopUpDetails,
} from '@stripe402/client';
import { JsonFileClientIdStore } from '@stripe402/client/node';
import type { McpConfig } from './config.ts';

// The package's own manifest, found by name from source and from the build alike.
const { version } = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@stripe402/mcp/package.json'), 'utf8')) as { version: string };
/** The server's name and version, as MCP hosts show them. */
export const MCP_SERVER_INFO = { name: 'stripe402', version } as const;

/** What one MCP connection can ask of the person; set per connection by `createMcpServer`. */
interface Asker {
  /** Whether the host supports form elicitation. */
  canAsk(): boolean;
  /** Asks a yes/no question; true only on an explicit yes. */
  confirm(message: string): Promise<boolean>;
}

/** Spending seen by this process for one origin and currency. */
interface Tally {
  origin: string;
  currency: string;
  paidRequests: number;
  unitsSpent: number;
  creditsRemaining: number | undefined;
  clientId: string | undefined;
}

/**
 * The paying state shared by every MCP connection of a process: one client,
 * one budget, one client-id store, and what was spent.
 */
export class Stripe402Session {
  readonly budget: BudgetPolicy;
  readonly client: Stripe402Client;
  private readonly tallies = new Map<string, Tally>();
  /** The connection whose tool call is running: approval and authentication questions go to it. */
  private asker: Asker | undefined;
  /** Top-ups held for card authentication, by `METHOD URL`, resumed by the next identical call. */
  private readonly awaitingAuthentication = new Map<string, AuthenticationRequiredError>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: McpConfig,
    fetchImpl: typeof fetch = fetch,
  ) {
    this.budget = new BudgetPolicy({ ...config.budget, approveTopUp: (details) => this.approve(details) });
    this.client = new Stripe402Client({
      fetch: fetchImpl,
      budget: this.budget,
      ...(config.paymentMethodId ? { paymentMethodId: config.paymentMethodId } : {}),
      ...(config.card ? { card: config.card } : {}),
      ...(config.stripeUrl ? { stripeApiBase: config.stripeUrl } : {}),
      ...(config.store ? { store: new JsonFileClientIdStore(config.store) } : {}),
      ...(config.preferredCurrencies ? { preferredCurrencies: config.preferredCurrencies } : {}),
      onAuthenticationRequired: (details) => this.authenticate(details),
      onPayment: (event) => this.record(event),
    });
  }

  /**
   * Runs one paid fetch for a connection. Calls run one at a time, so an
   * approval question always goes to the connection that caused it.
   */
  run<T>(asker: Asker, work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      this.asker = asker;
      try {
        return await work();
      } finally {
        this.asker = undefined;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Fetches a URL, resuming a top-up that was waiting for card authentication on the same request. */
  async fetch(url: URL, init: RequestInit & { method: string }): Promise<{ response: Response; events: PaymentEvent[] }> {
    const key = `${init.method} ${url.href}`;
    const events: PaymentEvent[] = [];
    this.listener = (event) => events.push(event);
    try {
      const held = this.awaitingAuthentication.get(key);
      if (held) {
        this.awaitingAuthentication.delete(key);
        return { response: await held.resume(), events };
      }
      try {
        return { response: await this.client.fetch(url, init), events };
      } catch (error) {
        if (error instanceof AuthenticationRequiredError) this.awaitingAuthentication.set(key, error);
        throw error;
      }
    } finally {
      this.listener = undefined;
    }
  }

  /** Spending per origin and currency, with what the budget counted as charged. */
  balances(): Array<Tally & { chargedMinor: number; charged: string; unconfirmedCharges: number }> {
    const rows = new Map(this.tallies);
    for (const charge of this.budget.charges()) {
      const key = `${charge.origin} ${charge.currency}`;
      if (!rows.has(key)) rows.set(key, { origin: charge.origin, currency: charge.currency, paidRequests: 0, unitsSpent: 0, creditsRemaining: undefined, clientId: undefined });
    }
    return [...rows.values()].map((t) => {
      const chargedMinor = this.budget.chargedMinor({ currency: t.currency, origin: t.origin });
      return {
        ...t,
        clientId: t.clientId ? redactClientId(t.clientId) : undefined,
        creditsRemaining: this.client.lastKnownCredits(t.origin, t.currency) ?? t.creditsRemaining,
        chargedMinor,
        charged: formatMinor(chargedMinor, t.currency),
        unconfirmedCharges: this.unconfirmed.get(`${t.origin} ${t.currency}`) ?? 0,
      };
    });
  }

  private listener: ((event: PaymentEvent) => void) | undefined;
  private readonly unconfirmed = new Map<string, number>();

  private record(event: PaymentEvent): void {
    const key = `${event.origin} ${event.currency}`;
    const tally = this.tallies.get(key) ?? { origin: event.origin, currency: event.currency, paidRequests: 0, unitsSpent: 0, creditsRemaining: undefined, clientId: undefined };
    if (event.status >= 200 && event.status < 300) {
      tally.paidRequests += 1;
      tally.unitsSpent += event.price;
    }
    if (event.creditsRemaining !== undefined) tally.creditsRemaining = event.creditsRemaining;
    if (event.clientId) tally.clientId = event.clientId;
    this.tallies.set(key, tally);
    if (event.chargedMinor !== undefined && !event.chargeAmountConfirmed) this.unconfirmed.set(key, (this.unconfirmed.get(key) ?? 0) + 1);
    this.listener?.(event);
  }

  private async approve(details: TopUpDetails): Promise<boolean> {
    const threshold = limitFor(this.config.approveTopUpsAbove, details.currency, 0);
    if (details.topUpAmount <= threshold) return true;
    const asker = this.asker;
    if (!asker?.canAsk()) return this.config.withoutApproval === 'allow';
    const worstCase = currencyExponent(details.currency) !== 2 ? ' (at most; the server may not confirm the amount)' : '';
    return asker.confirm(
      `Pay ${details.origin} a top-up of ${formatMinor(details.chargeMinor, details.currency)}${worstCase} ` +
        `for ${formatUnits(details.topUpAmount, details.currency)} of credit? ` +
        `The request (${details.method} ${details.url}) costs ${formatUnits(details.price, details.currency)}.`,
    );
  }

  private async authenticate(details: AuthenticationDetails): Promise<'completed' | 'abort'> {
    const asker = this.asker;
    if (!details.nextActionUrl || !asker?.canAsk()) return 'abort';
    const done = await asker.confirm(
      `The card needs authentication (3-D Secure) for a top-up to ${details.origin}. ` +
        `Open ${details.nextActionUrl}, complete it, then answer yes.`,
    );
    return done ? 'completed' : 'abort';
  }
}

const FetchInput = {
  url: z.string().describe('The http(s) URL to fetch'),
  method: z.string().regex(/^[A-Za-z]+$/).optional().describe('HTTP method; default GET, or POST when a body is given'),
  headers: z.record(z.string(), z.string()).optional().describe('Request headers'),
  body: z.string().optional().describe('Request body (text)'),
};

/** An MCP server over a shared session; connect it to one transport. */
export function createMcpServer(session: Stripe402Session): McpServer {
  const mcp = new McpServer(MCP_SERVER_INFO, {
    instructions:
      'stripe402_fetch fetches a URL and pays for it when the server asks for a stripe402 payment (HTTP 402), within a budget the user set. ' +
      'stripe402_balances shows what was paid and the credit left, per origin and currency.',
  });
  const asker: Asker = {
    canAsk: () => mcp.server.getClientCapabilities()?.elicitation !== undefined,
    confirm: async (message) => {
      const answer = await mcp.server.elicitInput({
        mode: 'form',
        message,
        requestedSchema: { type: 'object', properties: { approve: { type: 'boolean', title: 'Approve', description: message } }, required: ['approve'] },
      });
      return answer.action === 'accept' && answer.content?.approve === true;
    },
  };

  mcp.registerTool(
    'stripe402_fetch',
    {
      title: 'Fetch, paying with stripe402',
      description:
        'Fetches a URL. When the server answers 402 with a stripe402 price, pays it within the budget (a card top-up buys prepaid credit, ' +
        'later requests spend it) and retries. Returns the status, headers, body and what was paid.',
      inputSchema: FetchInput,
    },
    async ({ url, method, headers, body }) => {
      let target: URL;
      try {
        target = new URL(url);
        if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError('not http');
      } catch {
        return toolError('invalid_url', `'${url}' is not an http(s) URL`);
      }
      const verb = (method ?? (body !== undefined ? 'POST' : 'GET')).toUpperCase();
      let init: RequestInit & { method: string };
      try {
        init = { method: verb, headers: new Headers(headers ?? {}), ...(body !== undefined ? { body } : {}) };
      } catch {
        return toolError('invalid_headers', 'a header name or value is not valid in HTTP');
      }
      return session.run(asker, async () => {
        try {
          const { response, events } = await session.fetch(target, init);
          return await describeResponse(response, events, session.config.maxResponseBytes);
        } catch (error) {
          return describeFailure(error);
        }
      });
    },
  );

  mcp.registerTool(
    'stripe402_balances',
    {
      title: 'stripe402 balances and spending',
      description: 'Per origin and currency: requests paid, units spent, the credit left as the server last reported it, and money charged to the card.',
      inputSchema: {},
    },
    async () => {
      const rows = session.balances();
      const text = rows.length === 0 ? 'Nothing paid yet.' : JSON.stringify(rows, null, 2);
      return { content: [{ type: 'text', text }], structuredContent: { balances: rows } };
    },
  );
  return mcp;
}

const TEXTUAL = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))/i;

async function describeResponse(response: Response, events: PaymentEvent[], maxBytes: number): Promise<CallToolResult> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get('content-type') ?? '';
  const truncated = bytes.byteLength > maxBytes;
  const kept = bytes.subarray(0, maxBytes);
  const textual = type === '' || TEXTUAL.test(type);
  const body = textual ? new TextDecoder().decode(kept) : Buffer.from(kept).toString('base64');
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'payment-response' && name !== 'payment-required') headers[name] = value;
  });
  const payments = events.map((e) => ({
    price: formatUnits(e.price, e.currency),
    priceUnits: e.price,
    currency: e.currency,
    charged: e.chargedMinor !== undefined ? formatMinor(e.chargedMinor, e.currency) : null,
    chargedMinor: e.chargedMinor ?? null,
    chargeConfirmedByServer: e.chargeAmountConfirmed,
    chargeId: e.chargeId ?? null,
    creditsRemaining: e.creditsRemaining ?? null,
  }));
  const paid = payments.length === 0 ? 'paid nothing' : payments.map((p) => `paid ${p.price}${p.charged ? `, charged ${p.charged}` : ', charged nothing'}${p.creditsRemaining !== null ? `, credit left ${p.creditsRemaining} units` : ''}`).join('; ');
  const summary = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}; ${paid}${truncated ? `; body cut at ${maxBytes} of ${bytes.byteLength} bytes` : ''}`;
  return {
    content: [
      { type: 'text', text: summary },
      { type: 'text', text: textual ? body : `(binary ${type}, base64) ${body}` },
    ],
    structuredContent: { status: response.status, headers, body, bodyEncoding: textual ? 'utf-8' : 'base64', bodyTruncated: truncated, payments },
  };
}

function describeFailure(error: unknown): CallToolResult {
  if (error instanceof AuthenticationRequiredError) {
    const where = error.nextActionUrl ? ` at ${error.nextActionUrl}` : '';
    return toolError(error.code, `The card needs authentication (3-D Secure)${where}. After the card holder completes it, call stripe402_fetch again with the same method and URL: the held top-up is then credited once.`);
  }
  if (error instanceof BudgetExceededError) return toolError(error.code, `${error.message}. Nothing was charged.`, { rule: error.rule });
  if (error instanceof Stripe402ClientError) return toolError(error.code, error.message);
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return toolError('network_error', `the request failed: ${error instanceof Error ? error.message : String(error)}${typeof cause === 'string' ? ` (${cause})` : ''}`);
}

function toolError(code: string, message: string, extra: Record<string, unknown> = {}): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: `${code}: ${message}` }], structuredContent: { error: { code, message, ...extra } } };
}
