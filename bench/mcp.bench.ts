/**
 * What the MCP server adds to a paid request: the latency of a
 * `stripe402_fetch` tool call (an MCP host's client, stdio, the `stripe402
 * mcp` child process, then the paid request) against the same paid request
 * made with the paying fetch in this process, on the same reference server
 * in the same run. Both spend a funded client id (no card charge), one call
 * at a time, so the difference is the MCP round trip and the tool's own work.
 *
 *   npx tsx bench/mcp.bench.ts
 *   BENCH_CALLS=500 npx tsx bench/mcp.bench.ts
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Stripe402Client } from '@stripe402/client';
import { startStack } from '../reference/client/test/harness.ts';
import { machineLine, runWhenScript, table } from './harness.ts';

const BIN = resolve(import.meta.dirname, '../bin/stripe402.js');

export interface McpRow {
  calls: number;
  fetchP50: number;
  fetchP99: number;
  toolP50: number;
  toolP99: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function timed(calls: number, once: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await once();
    times.push(performance.now() - start);
  }
  return times;
}

export async function main(calls = Number(process.env.BENCH_CALLS) || 200): Promise<McpRow> {
  const stack = await startStack();
  const dir = await mkdtemp(join(tmpdir(), 'stripe402-mcp-bench-'));
  let mcp: Client | undefined;
  try {
    const server = await stack.freshServer();
    const url = `${server.url}/api/joke`;
    // A top-up of 1,000,000 units at 100 a request: every measured call spends, none charges.
    const budget = { maxTopUp: 1_000_000, topUpTarget: 1_000_000, perOrigin: { perDay: 1_000_000 }, total: { perDay: 1_000_000 } };
    const direct = new Stripe402Client({ paymentMethodId: 'pm_card_visa', budget });
    const once = async () => {
      const response = await direct.fetch(url);
      if (response.status !== 200) throw new Error(`paid fetch answered ${response.status}`);
      await response.arrayBuffer();
    };
    await once();

    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ approveTopUpsAbove: 'unlimited', budget }));
    mcp = new Client({ name: 'bench-host', version: '1.0.0' });
    await mcp.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--config', config],
        env: { PATH: process.env.PATH ?? '', HOME: dir, STRIPE402_PAYMENT_METHOD: 'pm_card_visa' },
      }),
    );
    const tool = async () => {
      const result = (await mcp!.callTool({ name: 'stripe402_fetch', arguments: { url } })) as CallToolResult;
      if (result.isError) throw new Error(`the tool failed: ${JSON.stringify(result.content)}`);
    };
    await tool();

    // Interleave rounds so that a noisy neighbour slows both alike.
    const fetchTimes: number[] = [];
    const toolTimes: number[] = [];
    const rounds = 4;
    for (let r = 0; r < rounds; r++) {
      fetchTimes.push(...(await timed(Math.ceil(calls / rounds), once)));
      toolTimes.push(...(await timed(Math.ceil(calls / rounds), tool)));
    }
    return {
      calls: fetchTimes.length,
      fetchP50: percentile(fetchTimes, 0.5),
      fetchP99: percentile(fetchTimes, 0.99),
      toolP50: percentile(toolTimes, 0.5),
      toolP99: percentile(toolTimes, 0.99),
    };
  } finally {
    await mcp?.close();
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Prints a row as the summary of `npm run bench` does. */
export function printMcpRow(row: McpRow): void {
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  table([
    ['calls', 'paid fetch p50', 'p99', 'MCP tool p50', 'p99', 'tool / fetch (p50)', 'added per call (p50)'],
    [String(row.calls), ms(row.fetchP50), ms(row.fetchP99), ms(row.toolP50), ms(row.toolP99), `${(row.toolP50 / row.fetchP50).toFixed(2)}`, ms(row.toolP50 - row.fetchP50)],
  ]);
}

runWhenScript(import.meta.url, async () => {
  console.log(machineLine());
  printMcpRow(await main());
});
