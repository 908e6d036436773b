/**
 * The MCP server end to end: the official SDK's MCP client starts
 * `stripe402 mcp` as a child process over stdio (as an MCP host does) and
 * calls its tools against the reference server and the Stripe emulator. A
 * paid fetch charges once, a budget refusal and a denied approval charge
 * nothing, a card that needs authentication is resumed and credited once,
 * and a server that is not stripe402 is fetched without paying. One test
 * runs over Streamable HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, succeededCharges, type Stack } from '../client/test/harness.ts';
import type { RunningServer } from 'stripe402';

const BIN = resolve(import.meta.dirname, '../../bin/stripe402.js');

let stack: Stack;
let dir: string;
let plain: Server;
let plainUrl: string;

beforeAll(async () => {
  stack = await startStack();
  dir = await mkdtemp(join(tmpdir(), 'stripe402-mcp-'));
  // A server that is not stripe402: a 402 with no challenge.
  plain = createServer((_req, res) => {
    res.writeHead(402, { 'content-type': 'text/plain' });
    res.end('pay us somehow');
  });
  await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
  plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
}, 180_000);
afterAll(async () => {
  await new Promise((done) => plain?.close(done));
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

let configs = 0;
async function configFile(config: object): Promise<string> {
  const file = join(dir, `config-${++configs}.json`);
  await writeFile(file, JSON.stringify(config));
  return file;
}

interface Connected {
  client: Client;
  asked: string[];
  close(): Promise<void>;
}

/** Starts `stripe402 mcp` over stdio with a configuration, as an MCP host would; `answer` makes the client support elicitation. */
async function connect(config: object, env: Record<string, string>, answer?: (message: string) => 'accept' | 'decline'): Promise<Connected> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--config', await configFile(config)],
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'test-host', version: '1.0.0' }, { capabilities: answer ? { elicitation: { form: {} } } : {} });
  const asked: string[] = [];
  if (answer) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return answer(request.params.message) === 'accept' ? { action: 'accept', content: { approve: true } } : { action: 'decline' };
    });
  }
  await client.connect(transport);
  return { client, asked, close: () => client.close() };
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const text = (result: CallToolResult) => result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
const charges = () => succeededCharges(stack.emulator).length;
const intents = () => stack.emulator.state.paymentIntents().length;
const PAY_ALL = { approveTopUpsAbove: 'unlimited' };

describe('stripe402 mcp over stdio', { timeout: 120_000 }, () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await stack.freshServer();
  });

  it('lists its two tools', async () => {
    const { client, close } = await connect(PAY_ALL, {});
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['stripe402_balances', 'stripe402_fetch']);
      expect(tools.find((t) => t.name === 'stripe402_fetch')!.inputSchema.required).toEqual(['url']);
    } finally {
      await close();
    }
  });

  it('fetches a paid URL: one charge, the body, what was paid, then balances', async () => {
    const before = charges();
    const { client, close } = await connect(PAY_ALL, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' });
    try {
      const paid = await call(client, 'stripe402_fetch', { url: `${server.url}/api/joke` });
      expect(paid.isError).toBeFalsy();
      expect(text(paid)).toContain('HTTP 200');
      expect(text(paid)).toContain('charged 5.00 USD');
      const structured = paid.structuredContent as { status: number; body: string; payments: Array<{ chargedMinor: number; chargeConfirmedByServer: boolean; creditsRemaining: number }> };
      expect(structured.status).toBe(200);
      expect(JSON.parse(structured.body)).toHaveProperty('joke');
      expect(structured.payments).toEqual([expect.objectContaining({ chargedMinor: 500, chargeConfirmedByServer: true, creditsRemaining: 49_900 })]);
      const again = await call(client, 'stripe402_fetch', { url: `${server.url}/api/joke` });
      expect(text(again)).toContain('charged nothing');
      expect(charges()).toBe(before + 1);
      const balances = await call(client, 'stripe402_balances');
      const rows = (balances.structuredContent as { balances: Array<Record<string, unknown>> }).balances;
      expect(rows).toEqual([expect.objectContaining({ origin: server.url, currency: 'usd', paidRequests: 2, unitsSpent: 200, creditsRemaining: 49_800, chargedMinor: 500, charged: '5.00 USD' })]);
      expect(JSON.stringify(rows)).not.toMatch(/[0-9a-f]{64}/);
    } finally {
      await close();
    }
  });

  it('a top-up the budget refuses is a tool error with the rule, and nothing is charged', async () => {
    const fresh = await stack.freshServer();
    const before = intents();
    const { client, close } = await connect({ ...PAY_ALL, budget: { maxTopUp: 1000 } }, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' });
    try {
      const refused = await call(client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toMatch(/^budget_exceeded: .*max_top_up.*Nothing was charged/);
      expect(intents()).toBe(before);
    } finally {
      await close();
    }
  });

  it('asks the person before a top-up above the threshold; a denial charges nothing, an approval pays', async () => {
    const fresh = await stack.freshServer();
    const before = intents();
    const denying = await connect({ approveTopUpsAbove: 10_000 }, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' }, () => 'decline');
    try {
      const denied = await call(denying.client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(denied.isError).toBe(true);
      expect(text(denied)).toContain('approval_denied');
      expect(denying.asked).toHaveLength(1);
      expect(denying.asked[0]).toContain('top-up of 5.00 USD');
      expect(intents()).toBe(before);
    } finally {
      await denying.close();
    }
    const approving = await connect({ approveTopUpsAbove: 10_000 }, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' }, () => 'accept');
    try {
      const paid = await call(approving.client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(paid.isError).toBeFalsy();
      expect(approving.asked).toHaveLength(1);
      expect(intents()).toBe(before + 1);
    } finally {
      await approving.close();
    }
  });

  it('refuses a top-up that needs approval when the host cannot ask', async () => {
    const fresh = await stack.freshServer();
    const before = intents();
    const { client, close } = await connect({ approveTopUpsAbove: 0 }, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' });
    try {
      const refused = await call(client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toContain('approval_denied');
      expect(intents()).toBe(before);
    } finally {
      await close();
    }
  });

  it('a card that needs authentication: the tool error gives the URL, and the same call after authenticating is credited once', async () => {
    const fresh = await stack.freshServer();
    const before = charges();
    const { client, close } = await connect(PAY_ALL, { STRIPE402_PAYMENT_METHOD: 'pm_card_authenticationRequired' });
    try {
      const held = await call(client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(held.isError).toBe(true);
      expect(text(held)).toMatch(/^authentication_required: /);
      const url = /at (https?:\/\/\S+?)\. /.exec(text(held))?.[1];
      expect(url).toBeDefined();
      // The card holder completes 3-D Secure (the emulator's next-action page).
      expect((await fetch(url!)).ok).toBe(true);
      const resumed = await call(client, 'stripe402_fetch', { url: `${fresh.url}/api/joke` });
      expect(resumed.isError).toBeFalsy();
      expect(text(resumed)).toContain('HTTP 200');
      expect(charges()).toBe(before + 1);
    } finally {
      await close();
    }
  });

  it('fetches a server that is not stripe402 without paying, and reports a bad URL as a tool error', async () => {
    const before = intents();
    const { client, close } = await connect(PAY_ALL, { STRIPE402_PAYMENT_METHOD: 'pm_card_visa' });
    try {
      const answered = await call(client, 'stripe402_fetch', { url: `${plainUrl}/anything` });
      expect(answered.isError).toBeFalsy();
      expect(text(answered)).toContain('HTTP 402');
      expect(text(answered)).toContain('paid nothing');
      expect((answered.structuredContent as { body: string }).body).toBe('pay us somehow');
      const bad = await call(client, 'stripe402_fetch', { url: 'ftp://example.com/x' });
      expect(bad.isError).toBe(true);
      expect(text(bad)).toMatch(/^invalid_url: /);
      expect(intents()).toBe(before);
    } finally {
      await close();
    }
  });

  it('refuses to start on a configuration with an unknown key, with exit code 2', async () => {
    const file = await configFile({ budget: { maxTopup: 5 } });
    const child: ChildProcess = spawn(process.execPath, [BIN, 'mcp', '--config', file], { env: { PATH: process.env.PATH ?? '', HOME: dir }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code).toBe(2);
    expect(stderr).toContain("unknown key 'maxTopup'");
  });
});

describe('stripe402 mcp over Streamable HTTP', { timeout: 120_000 }, () => {
  it('serves a paid fetch to an MCP client on a loopback port', async () => {
    const server = await stack.freshServer();
    const child = spawn(process.execPath, [BIN, 'mcp', '--http', '0', '--config', await configFile(PAY_ALL)], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, STRIPE402_PAYMENT_METHOD: 'pm_card_visa' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const endpoint = await new Promise<string>((done, fail) => {
        let stderr = '';
        child.stderr!.on('data', (c: Buffer) => {
          stderr += c.toString();
          const m = /(http:\/\/\S+\/mcp)/.exec(stderr);
          if (m) done(m[1]!);
        });
        child.on('close', () => fail(new Error(`stripe402 mcp exited: ${stderr}`)));
      });
      const client = new Client({ name: 'http-host', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
      const paid = await call(client, 'stripe402_fetch', { url: `${server.url}/api/joke` });
      expect(paid.isError).toBeFalsy();
      expect(text(paid)).toContain('charged 5.00 USD');
      await client.close();
    } finally {
      child.kill();
    }
  });
});
