/**
 * Where the paying fetch keeps client ids, one per (origin, currency): the
 * id a server returned after the first top-up, spent on every later request.
 * The memory store here runs anywhere; the file store that keeps ids
 * between runs is Node only, in `@stripe402/client/node` (file-store.ts).
 */
import { isClientId } from '@stripe402/core';

/** Where client ids live between requests (and, with a persistent store, between runs). */
export interface ClientIdStore {
  /** The client id for an origin and currency, if one is known. */
  get(origin: string, currency: string): Promise<string | undefined>;
  /** Remembers the client id for an origin and currency. */
  set(origin: string, currency: string, clientId: string): Promise<void>;
  /** Forgets the client id for an origin and currency. */
  delete(origin: string, currency: string): Promise<void>;
}

/** The default store: client ids live as long as the process. */
export class MemoryClientIdStore implements ClientIdStore {
  private readonly ids = new Map<string, string>();

  /** @inheritDoc */
  async get(origin: string, currency: string): Promise<string | undefined> {
    return this.ids.get(key(origin, currency));
  }

  /** @inheritDoc */
  async set(origin: string, currency: string, clientId: string): Promise<void> {
    if (!isClientId(clientId)) throw new TypeError('a client id is 64 lower-case hex characters');
    this.ids.set(key(origin, currency), clientId);
  }

  /** @inheritDoc */
  async delete(origin: string, currency: string): Promise<void> {
    this.ids.delete(key(origin, currency));
  }
}

function key(origin: string, currency: string): string {
  return `${origin} ${currency}`;
}
