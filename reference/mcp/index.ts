/**
 * @stripe402/mcp: the stripe402 MCP server. Its tools let an agent's host
 * fetch URLs that a stripe402 server charges for, within a budget, and ask
 * the person before a top-up (`createMcpServer`, `Stripe402Session`), over
 * stdio or Streamable HTTP (`runMcpCli`, `serveHttp`; `npx stripe402 mcp`).
 *
 * @module @stripe402/mcp
 */
export { createMcpServer, Stripe402Session, MCP_SERVER_INFO } from './server.ts';
export { loadMcpConfig, McpConfigError, type McpConfig } from './config.ts';
export { runMcpCli, serveHttp } from './cli.ts';
