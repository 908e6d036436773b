/**
 * stripe402: the standalone reference server (`startServer`, what `stripe402
 * serve` runs) with its demo paid API on Hono, and the entry points of the
 * `stripe402` command's subcommands. Libraries for your own server are in
 * @stripe402/server and the adapters; the paying client is @stripe402/client.
 *
 * @module stripe402
 */
export { startServer, resolveServerSecret, secretWeakness, DEFAULT_PORT, DEFAULT_HOST, DEFAULT_DATA_DIR } from './standalone.ts';
export type { ServerOptions, RunningServer } from './standalone.ts';
export { createDemoApp, openCors, requestLogger, DEMO_ROUTES } from './app.ts';
export type { DemoAppOptions } from './app.ts';
export { runServeCli, runReconcileCli } from './serve-cli.ts';
export { runFetchCli, FETCH_EXIT, type FetchCliIo } from './fetch-cli.ts';
