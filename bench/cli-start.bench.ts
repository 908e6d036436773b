/**
 * CLI cold start: `conformance --help` and `stripe402 --help`, each as a
 * fresh Node process, before (the TypeScript sources loaded through tsx, how
 * the commands ran before the packages were built) and after (the built
 * JavaScript that the packages ship). Runs alternate between the two so
 * that a busy machine slows both alike; the figure is the median wall time
 * of BENCH_ROUNDS runs (default 15) and the ratio is before/after in this
 * run. Needs the build (`npm run build`).
 *
 *   npx tsx bench/cli-start.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machineLine, runWhenScript, table } from './harness.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (file: string) => `${root}${file}`;

export interface CliStartRow {
  command: string;
  beforeMs: number;
  afterMs: number;
  ratio: number;
}

const COMMANDS = [
  { command: 'conformance --help', before: at('bin/conformance.js'), after: at('conformance/dist/cli.js') },
  { command: 'stripe402 --help', before: at('bin/stripe402.js'), after: at('reference/stripe402/dist/cli.js') },
  { command: 'stripe402 emulator --help', before: at('bin/stripe402.js'), after: at('reference/stripe402/dist/cli.js'), args: ['emulator'] },
];

function once(script: string, args: readonly string[]): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, [script, ...args, '--help'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`${script} ${args.join(' ')} --help exited ${result.status}: ${result.stderr.toString()}`);
  return elapsed;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

export async function main(): Promise<CliStartRow[]> {
  const rounds = Math.max(3, Number(process.env.BENCH_ROUNDS) || 15);
  for (const { after } of COMMANDS) {
    if (!existsSync(after)) throw new Error(`${after} is missing: run npm run build first`);
  }
  const rows: CliStartRow[] = [];
  for (const { command, before, after, args = [] } of COMMANDS) {
    // One warm-up of each fills the OS file cache, as a second run by a user would find it.
    once(before, args);
    once(after, args);
    const beforeTimes: number[] = [];
    const afterTimes: number[] = [];
    for (let i = 0; i < rounds; i++) {
      beforeTimes.push(once(before, args));
      afterTimes.push(once(after, args));
    }
    const beforeMs = median(beforeTimes);
    const afterMs = median(afterTimes);
    rows.push({ command, beforeMs, afterMs, ratio: beforeMs / afterMs });
  }
  console.log(machineLine());
  table([
    ['command', 'tsx (before)', 'built JS (after)', 'before/after'],
    ...rows.map((r) => [r.command, `${r.beforeMs.toFixed(0)} ms`, `${r.afterMs.toFixed(0)} ms`, `${r.ratio.toFixed(2)}x`]),
  ]);
  console.log(`median of ${rounds} alternating runs each`);
  return rows;
}

runWhenScript(import.meta.url, main);
