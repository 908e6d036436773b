/**
 * `stripe402 mcp`: runs the MCP server over stdio (what MCP hosts start as a
 * command), or over Streamable HTTP on a loopback port with `--http PORT`.
 * Configuration comes from `--config FILE` (or `STRIPE402_MCP_CONFIG`) and
 * the environment; nothing secret is taken from flags. On stdio, stdout
 * belongs to the protocol: every message for people goes to stderr.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { loadMcpConfig, McpConfigError } from './config.ts';
import { createMcpServer, Stripe402Session } from './server.ts';

/** The largest JSON-RPC message accepted over HTTP, in bytes. */
const MAX_MESSAGE_BYTES = 1_000_000;

/** Runs `stripe402 mcp` with its arguments; resolves with an exit code when it cannot start, else keeps running. */
export async function runMcpCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | void> {
  const program = new Command('stripe402 mcp')
    .description('An MCP server whose tools fetch URLs paying stripe402 challenges within a budget (stdio, or Streamable HTTP with --http).')
    .option('--config <file>', 'JSON configuration (default $STRIPE402_MCP_CONFIG); see docs/mcp.md')
    .option('--http <port>', 'serve Streamable HTTP on this port instead of stdio (0: any free port)', port)
    .option('--host <host>', 'address for --http (loopback unless you put it behind authentication)', '127.0.0.1')
    .exitOverride()
    .configureOutput({ writeOut: (t) => process.stderr.write(t), writeErr: (t) => process.stderr.write(t) });
  let options: { config?: string; http?: number; host: string };
  try {
    program.parse(argv, { from: 'user' });
    options = program.opts();
  } catch (error) {
    if (error instanceof CommanderError) return error.code === 'commander.helpDisplayed' ? 0 : 2;
    throw error;
  }
  let session: Stripe402Session;
  try {
    session = new Stripe402Session(await loadMcpConfig(env, options.config ?? env.STRIPE402_MCP_CONFIG));
  } catch (error) {
    if (error instanceof McpConfigError || error instanceof RangeError) {
      process.stderr.write(`stripe402 mcp: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (options.http === undefined) {
    await createMcpServer(session).connect(new StdioServerTransport());
    return;
  }
  const address = await serveHttp(session, options.host, options.http);
  process.stderr.write(`stripe402 mcp: Streamable HTTP on http://${address}/mcp\n`);
}

/** Serves MCP sessions over Streamable HTTP at /mcp; resolves with `host:port` once listening. */
export async function serveHttp(session: Stripe402Session, host: string, listenPort: number): Promise<string> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }));
    });
  });
  let allowedHosts: string[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') return reply(res, 404, 'not found: the MCP endpoint is /mcp');
    const id = req.headers['mcp-session-id'];
    const existing = typeof id === 'string' ? transports.get(id) : undefined;
    if (req.method !== 'POST') {
      if (!existing) return reply(res, 400, 'unknown or missing mcp-session-id');
      return existing.handleRequest(req, res);
    }
    const body = await readJson(req);
    if (body === undefined) return reply(res, 400, `the body must be JSON of at most ${MAX_MESSAGE_BYTES} bytes`);
    if (existing) return existing.handleRequest(req, res, body);
    if (!isInitializeRequest(body)) return reply(res, 400, 'start a session with an initialize request');
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      // A web page must not drive a loopback MCP server through DNS rebinding.
      enableDnsRebindingProtection: true,
      allowedHosts,
      onsessioninitialized: (sid) => void transports.set(sid, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await createMcpServer(session).connect(transport);
    await transport.handleRequest(req, res, body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  allowedHosts = [`127.0.0.1:${bound}`, `localhost:${bound}`, `[::1]:${bound}`, `${host}:${bound}`];
  return `${host}:${bound}`;
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_MESSAGE_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('must be a port number (0 to 65535)');
  return n;
}
