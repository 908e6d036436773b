/**
 * Start-up policy of the standalone server (CID-2): live keys never run on
 * a missing, short or generated server secret; test mode generates one,
 * keeps it in the data directory and reuses it, so client ids survive a
 * restart.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveServerSecret, startServer } from './standalone.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'stripe402-standalone-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the server secret', () => {
  it('is refused when shorter than 32 bytes, in any mode', () => {
    expect(() => resolveServerSecret('x'.repeat(31), false, tempDir(), () => {})).toThrow(/32 bytes/);
    expect(() => resolveServerSecret('x'.repeat(31), true, tempDir(), () => {})).toThrow(/32 bytes/);
  });

  it('must be given with a live key', () => {
    expect(() => resolveServerSecret(undefined, true, tempDir(), () => {})).toThrow(/live Stripe key needs STRIPE402_SERVER_SECRET/);
  });

  it('is generated once in test mode, kept private in the data directory, and reused', () => {
    const dir = tempDir();
    const messages: string[] = [];
    const first = resolveServerSecret(undefined, false, dir, (entry) => messages.push(entry.msg));
    expect(Buffer.byteLength(first)).toBeGreaterThanOrEqual(32);
    const file = path.join(dir, 'server-secret');
    expect(readFileSync(file, 'utf8').trim()).toBe(first);
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(resolveServerSecret(undefined, false, dir, (entry) => messages.push(entry.msg))).toBe(first);
    expect(messages[0]).toMatch(/generated a server secret/);
  });

  it('stops startServer before anything opens when a live key has no secret', async () => {
    await expect(
      startServer({ stripeSecretKey: 'sk_live_notreal', stripePublishableKey: 'pk_live_notreal', dataDir: tempDir(), ledger: 'pglite:memory', log: false, port: 0 }),
    ).rejects.toThrow(/STRIPE402_SERVER_SECRET/);
  });

  it('refuses a test secret key paired with a live publishable key', async () => {
    await expect(
      startServer({ stripeSecretKey: 'sk_test_x', stripePublishableKey: 'pk_live_x', serverSecret: 'y'.repeat(32), dataDir: tempDir(), log: false, port: 0 }),
    ).rejects.toThrow(/both be live or both be test/);
  });
});
