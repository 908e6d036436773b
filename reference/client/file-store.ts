/**
 * The persistent client-id store, Node only (the `@stripe402/client/node`
 * entry): one JSON file shared by every process that points at it. A client
 * id is a bearer credential (anyone holding it spends the balance, spec
 * section 13), so the store writes with mode 0600 inside a 0700 directory,
 * atomically (temporary file, then rename) so that a crash never leaves a
 * half-written file.
 */
// Node only: the main entry builds without Node's types, this file with them.
/// <reference types="node" />
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { isClientId } from '@stripe402/core';
import type { ClientIdStore } from './store.ts';

/** The JSON file the file store writes: `{ version: 1, clients: { origin: { currency: clientId } } }`. */
export interface ClientIdFile {
  /** The file format version. */
  version: 1;
  /** Client ids by origin, then by currency. */
  clients: Record<string, Record<string, string>>;
}

/** The default path of the persistent store: `~/.config/stripe402/clients.json` (or under `$XDG_CONFIG_HOME`). */
export function defaultStorePath(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'stripe402', 'clients.json');
}

/**
 * A store in one JSON file, shared by every process that points at it.
 * Each change re-reads the file and replaces it atomically, so concurrent
 * writers lose at most an update, never the file.
 */
export class JsonFileClientIdStore implements ClientIdStore {
  /** The file's path. */
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(path: string = defaultStorePath()) {
    this.path = path;
  }

  /** @inheritDoc */
  async get(origin: string, currency: string): Promise<string | undefined> {
    const file = await this.read();
    const id = file.clients[origin]?.[currency];
    return isClientId(id) ? id : undefined;
  }

  /** @inheritDoc */
  async set(origin: string, currency: string, clientId: string): Promise<void> {
    if (!isClientId(clientId)) throw new TypeError('a client id is 64 lower-case hex characters');
    await this.update((file) => {
      (file.clients[origin] ??= {})[currency] = clientId;
    });
  }

  /** @inheritDoc */
  async delete(origin: string, currency: string): Promise<void> {
    await this.update((file) => {
      const entry = file.clients[origin];
      if (!entry) return;
      delete entry[currency];
      if (Object.keys(entry).length === 0) delete file.clients[origin];
    });
  }

  private async read(): Promise<ClientIdFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, clients: {} };
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new Error(`${this.path} is not a stripe402 client-id file (not JSON)`, { cause: error });
    }
    const clients = (parsed as ClientIdFile | null)?.clients;
    if (typeof clients !== 'object' || clients === null || Array.isArray(clients)) {
      throw new Error(`${this.path} is not a stripe402 client-id file (no "clients" object)`);
    }
    return { version: 1, clients };
  }

  private update(change: (file: ClientIdFile) => void): Promise<void> {
    // Serialize this process's writers; other processes are covered by the atomic rename.
    const run = this.queue.then(async () => {
      const file = await this.read();
      change(file);
      await this.write(file);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(file: ClientIdFile): Promise<void> {
    const directory = dirname(this.path);
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const temporary = join(directory, `.${randomBytes(6).toString('hex')}.clients.json.tmp`);
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`, 'utf8');
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    await handle.close();
    // The umask may have narrowed the mode further, never widened it; make it exactly 0600.
    await chmod(temporary, 0o600);
    await rename(temporary, this.path);
  }
}
