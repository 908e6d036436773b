/**
 * The client-id stores: the JSON file store keeps ids per (origin,
 * currency) across instances, writes atomically with owner-only
 * permissions (a client id is a bearer credential), and refuses to guess
 * through a corrupt file.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonFileClientIdStore } from '../file-store.ts';
import { MemoryClientIdStore } from '../store.ts';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stripe402-store-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the memory store', () => {
  it('keeps one id per origin and currency and refuses malformed ids', async () => {
    const store = new MemoryClientIdStore();
    await store.set('https://a.com', 'usd', ID_A);
    await store.set('https://a.com', 'jpy', ID_B);
    expect(await store.get('https://a.com', 'usd')).toBe(ID_A);
    expect(await store.get('https://a.com', 'jpy')).toBe(ID_B);
    expect(await store.get('https://b.com', 'usd')).toBeUndefined();
    await expect(store.set('https://a.com', 'usd', 'not-an-id')).rejects.toThrow(TypeError);
    await store.delete('https://a.com', 'usd');
    expect(await store.get('https://a.com', 'usd')).toBeUndefined();
  });
});

describe('the JSON file store', () => {
  it('persists ids so that a new instance on the same file reads them', async () => {
    const path = join(dir, 'persist', 'clients.json');
    await new JsonFileClientIdStore(path).set('https://a.com', 'usd', ID_A);
    const again = new JsonFileClientIdStore(path);
    expect(await again.get('https://a.com', 'usd')).toBe(ID_A);
    expect(await again.get('https://a.com', 'eur')).toBeUndefined();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ version: 1, clients: { 'https://a.com': { usd: ID_A } } });
  });

  it('writes the file with mode 0600 in a 0700 directory and leaves no temporary file behind', async () => {
    const path = join(dir, 'modes', 'nested', 'clients.json');
    const store = new JsonFileClientIdStore(path);
    await store.set('https://a.com', 'usd', ID_A);
    await store.set('https://b.com', 'usd', ID_B);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'modes', 'nested'))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(dir, 'modes', 'nested'))).toEqual(['clients.json']);
  });

  it('keeps every id when one instance stores many at once', async () => {
    const path = join(dir, 'concurrent.json');
    const store = new JsonFileClientIdStore(path);
    const origins = Array.from({ length: 20 }, (_, i) => `https://host${i}.example.com`);
    await Promise.all(origins.map((origin) => store.set(origin, 'usd', ID_A)));
    const reread = new JsonFileClientIdStore(path);
    for (const origin of origins) expect(await reread.get(origin, 'usd')).toBe(ID_A);
  });

  it('forgets an id and drops the origin once it has none', async () => {
    const path = join(dir, 'delete.json');
    const store = new JsonFileClientIdStore(path);
    await store.set('https://a.com', 'usd', ID_A);
    await store.delete('https://a.com', 'usd');
    expect(JSON.parse(await readFile(path, 'utf8')).clients).toEqual({});
  });

  it('refuses a file that is not a client-id file instead of overwriting it', async () => {
    const path = join(dir, 'corrupt.json');
    await writeFile(path, '{ not json');
    const store = new JsonFileClientIdStore(path);
    await expect(store.get('https://a.com', 'usd')).rejects.toThrow(/not a stripe402 client-id file/);
    await expect(store.set('https://a.com', 'usd', ID_A)).rejects.toThrow(/not a stripe402 client-id file/);
    expect(await readFile(path, 'utf8')).toBe('{ not json');
  });

  it('ignores a malformed id found in the file', async () => {
    const path = join(dir, 'malformed.json');
    await writeFile(path, JSON.stringify({ version: 1, clients: { 'https://a.com': { usd: 'XYZ' } } }));
    expect(await new JsonFileClientIdStore(path).get('https://a.com', 'usd')).toBeUndefined();
  });
});
