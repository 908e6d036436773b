/**
 * Top-up locks (PROC-7): concurrent top-ups for one account make one charge.
 * Two layers. An in-process table queues the requests of this process, so
 * they wake as soon as the holder releases instead of polling; that alone is
 * the lock for PGlite, which only one process can open. For PostgreSQL and
 * Redis the holder of the in-process lock then takes the shared lock in the
 * store (a row or a key with an expiry and a random token), polling with
 * short, growing sleeps. Every lock expires after its TTL, so a holder that
 * dies or hangs cannot block an account for ever, and release checks the
 * token, so a holder whose lock expired cannot release its successor's.
 */

import { randomUUID } from 'node:crypto';
import { LedgerUnavailableError } from './types.ts';
import { sleep } from './shared.ts';

/** The top-up lock was not granted within the ledger's lock wait; the server answers 503 like any ledger fault. */
export class TopUpLockTimeoutError extends LedgerUnavailableError {
  override name = 'TopUpLockTimeoutError';
  constructor(message = 'timed out waiting for the top-up lock of this account') {
    super(message);
  }
}

interface LocalHolder {
  token: object;
  expiresAt: number;
  /** Waiters to wake when the lock is released; carried over to the next holder. */
  waiters: Set<() => void>;
}

/** An async mutex per key, with expiry, for one process. */
export class LocalLocks {
  readonly #holders = new Map<string, LocalHolder>();

  /** Takes the lock of `key` for `ttlMs`, waiting until `deadline` (epoch ms) at most. */
  async acquire(key: string, ttlMs: number, deadline: number): Promise<object> {
    for (;;) {
      const now = Date.now();
      const holder = this.#holders.get(key);
      if (holder === undefined || holder.expiresAt <= now) {
        const token = {};
        this.#holders.set(key, { token, expiresAt: now + ttlMs, waiters: holder?.waiters ?? new Set() });
        return token;
      }
      if (now >= deadline) throw new TopUpLockTimeoutError();
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          holder.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, Math.min(holder.expiresAt, deadline) - now));
        holder.waiters.add(wake);
      });
    }
  }

  release(key: string, token: object): void {
    const holder = this.#holders.get(key);
    if (holder === undefined || holder.token !== token) return;
    this.#holders.delete(key);
    for (const wake of [...holder.waiters]) wake();
  }
}

/** The store-side half of a lock shared by processes. */
export interface SharedLock {
  /** Takes the lock with this token if it is free or expired; true when taken. */
  tryAcquire(token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if it still holds this token. */
  release(token: string): Promise<void>;
}

export interface LockRequest {
  local: LocalLocks;
  key: string;
  ttlMs: number;
  waitMs: number;
  /** Absent for PGlite: the in-process lock is the whole lock. */
  shared?: SharedLock;
}

const FIRST_POLL_MS = 2;
const LONGEST_POLL_MS = 50;

export async function withLock<T>(request: LockRequest, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + request.waitMs;
  const localToken = await request.local.acquire(request.key, request.ttlMs, deadline);
  try {
    const shared = request.shared;
    if (shared === undefined) return await fn();
    const token = randomUUID();
    let pause = FIRST_POLL_MS;
    while (!(await shared.tryAcquire(token, request.ttlMs))) {
      const left = deadline - Date.now();
      if (left <= 0) throw new TopUpLockTimeoutError();
      // Jitter keeps processes polling one account from falling into step.
      await sleep(Math.min(left, pause * (0.5 + Math.random())));
      pause = Math.min(pause * 2, LONGEST_POLL_MS);
    }
    try {
      return await fn();
    } finally {
      // A failed release is not the caller's failure: the lock expires by its TTL.
      await shared.release(token).catch(() => undefined);
    }
  } finally {
    request.local.release(request.key, localToken);
  }
}
