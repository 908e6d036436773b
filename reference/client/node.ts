/**
 * @stripe402/client/node: what only Node can do, the client-id store in a
 * JSON file (`~/.config/stripe402/clients.json` by default), so a client
 * spends the same balance across runs. Everything else is in the main entry.
 *
 * @module @stripe402/client/node
 */
export { JsonFileClientIdStore, defaultStorePath, type ClientIdFile } from './file-store.ts';
