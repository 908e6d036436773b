/**
 * Creates a new PGlite data directory (initdb) in a short-lived child
 * process. initdb runs a WebAssembly build of its own whose memory a
 * process keeps once it has grown: a server that creates its embedded
 * ledger itself stays near 800 MB resident for good (a worker thread gives
 * back only part of it), against about 200 MB when it opens a directory
 * that already exists. The child runs plain JavaScript (no TypeScript
 * loader needed), importing PGlite from where this module resolves it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const INIT_SOURCE = `
const [pglite, dir] = process.argv.slice(-2);
const { PGlite } = await import(pglite);
const db = new PGlite(dir);
await db.waitReady;
await db.close();
`;

/** Runs initdb for `dir` in a child process unless it holds a database already. */
export async function initPgliteDirectory(dir: string): Promise<void> {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return;
  const child = spawn(process.execPath, ['--input-type=module', '-e', INIT_SOURCE, import.meta.resolve('@electric-sql/pglite'), dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-2_000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`creating the PGlite data directory failed (exit ${code}): ${stderr.trim()}`);
}
