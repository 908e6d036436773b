/**
 * The conformance CLI end to end: against the reference server on the
 * project's emulator it passes every check at every level, writes a JSON
 * report that validates, a well-formed JUnit file and a badge; usage errors
 * exit 2, an unreachable target exits 3, --list and --only do what they say,
 * and a failed property prints a replay command that reproduces it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePaymentHeader, validateConformanceReport, type ConformanceReport } from '@stripe402/core';
import { main, type CommandIO } from '../command.ts';
import { exitCodeOf, listChecks, runConformance, selectChecks } from '../runner.ts';
import { startProxy, startReferenceTarget, type ReferenceTarget } from './harness.ts';
import { parseXml } from './xml.ts';

function captureIO(): CommandIO & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    progress: false,
    color: false,
    stdout: (text: string) => {
      io.out += text;
    },
    stderr: (text: string) => {
      io.err += text;
    },
  };
  return io;
}

let target: ReferenceTarget;
let dir: string;

beforeAll(async () => {
  target = await startReferenceTarget();
  dir = mkdtempSync(path.join(tmpdir(), 'stripe402-conformance-cli-'));
});

afterAll(async () => {
  await target?.close();
  rmSync(dir, { recursive: true, force: true });
});

const backend = () => ['--stripe-url', target.stripeUrl, '--stripe-key', target.stripeKey, '--server-secret', target.serverSecret, '--failing-route', '/api/fail'];

describe('the conformance CLI', () => {
  /** One `--level all` run against the reference server, shared by the tests that judge it. */
  let fullRun: Promise<{ code: number; out: string; report: ConformanceReport; elapsed: number }> | undefined;
  const runAll = () =>
    (fullRun ??= (async () => {
      const io = captureIO();
      const started = performance.now();
      const code = await main(
        ['--target', target.url, ...backend(), '--level', 'all', '--json', path.join(dir, 'all.json'), '--junit', path.join(dir, 'all.xml'), '--badge', path.join(dir, 'badge.svg')],
        io,
      );
      const elapsed = performance.now() - started;
      console.log(`conformance --level all against the reference server: ${Math.round(elapsed)} ms`);
      return { code, out: io.out, elapsed, report: JSON.parse(readFileSync(path.join(dir, 'all.json'), 'utf8')) as ConformanceReport };
    })());

  it('passes every required check at every level against the reference server, exits 0, in under a minute', async () => {
    const { code, out, report, elapsed } = await runAll();
    // A skip is allowed only where the rule does not bind a server that implements everything (AUTH-4 binds servers without card authentication).
    const problems = report.checks
      .filter((c) => (c.status === 'failed' && c.severity === 'must') || (c.status === 'skipped' && c.skipKind !== 'not-applicable'))
      .map((c) => `${c.id}: ${c.actual ?? c.reason}`);
    expect(problems).toEqual([]);
    expect(report.unverified).toEqual([]);
    expect(code).toBe(0);
    expect(report.checks.map((c) => c.id)).toEqual(listChecks().map((c) => c.id));
    expect(report.levelReached).toBe('extensions');
    expect(out).toContain(`${report.summary.passed} passed, ${report.summary.failed} failed, ${report.summary.notApplicable} skipped`);
    expect(elapsed).toBeLessThan(60_000);
  }, 180_000);

  it('finds the reference server meeting every SHOULD of the spec too', async () => {
    const { report } = await runAll();
    expect(report.checks.filter((c) => c.status === 'failed').map((c) => `${c.id} (${c.severity}): ${c.actual}`)).toEqual([]);
  }, 180_000);

  it('writes a JSON report that validates, a well-formed JUnit file and a badge for that run', async () => {
    const { report } = await runAll();
    expect(validateConformanceReport(report).ok).toBe(true);
    const xml = parseXml(readFileSync(path.join(dir, 'all.xml'), 'utf8'));
    expect(xml.name).toBe('testsuites');
    const sections = new Set(report.checks.map((c) => c.section));
    expect(xml.children.map((s) => s.attributes.name?.split('.')[0])).toEqual([...sections]);
    expect(xml.children.flatMap((s) => s.children).length).toBe(report.checks.length);
    parseXml(readFileSync(path.join(dir, 'badge.svg'), 'utf8'));
    const endpoint = JSON.parse(readFileSync(path.join(dir, 'badge.json'), 'utf8'));
    expect(endpoint).toEqual({ schemaVersion: 1, label: 'stripe402 v1', message: `extensions · ${report.startedAt.slice(0, 10)}`, color: expect.any(String) });
  }, 180_000);

  it('runs only the checks whose ids start with an --only prefix', async () => {
    const json = path.join(dir, 'only.json');
    const code = await main(['--target', `${target.url}/api/joke`, '--only', '3/rejects', '7', '--json', json], captureIO());
    const report = JSON.parse(readFileSync(json, 'utf8')) as ConformanceReport;
    const ids = report.checks.map((c) => c.id);
    expect(code).toBe(0);
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.every((id) => id.startsWith('3/rejects') || id.startsWith('7/'))).toBe(true);
    expect(ids).toEqual(selectChecks('core', ['3/rejects', '7']).map((c) => c.id));
  }, 60_000);

  it('reports a check the backend cannot support as unverified, says why, claims no level of a partial run and exits 1', async () => {
    const report = await runConformance({ target: target.url, level: 'ledger', only: ['8/spend-deducts-amount', '11'], seed: 1 });
    const conservation = report.checks.find((c) => c.id === '11/money-is-conserved')!;
    expect(conservation).toMatchObject({ status: 'skipped', skipKind: 'unverified' });
    expect(conservation.reason).toContain('--stripe-key');
    expect(report.unverified).toEqual(['11/money-is-conserved']);
    expect(report.checks.find((c) => c.id === '11/concurrent-spends-never-overdraw')!.status).toBe('passed');
    expect(report).toMatchObject({ partial: true, levelReached: 'none' });
    expect(exitCodeOf(report)).toBe(1);
  }, 60_000);

  it('prints every check id with its level and requirement for --list', async () => {
    const io = captureIO();
    expect(await main(['--list'], io)).toBe(0);
    const lines = io.out.trim().split('\n');
    expect(lines.length).toBe(listChecks().length);
    for (const [i, check] of listChecks().entries()) {
      expect(lines[i]).toMatch(new RegExp(`^${check.id}\\s+${check.level}\\s+${check.severity}\\s+${check.requirement}\\s`));
    }
  });

  it('exits 2 on usage errors and when no check matches', async () => {
    const cases: string[][] = [
      [],
      ['--target', 'not a url'],
      ['--target', target.url, '--level', 'platinum'],
      ['--target', target.url, '--runs', 'many'],
      ['--target', target.url, '--card', 'visa'],
      ['--target', target.url, '--no-such-flag'],
      ['--target', target.url, '--only', '99'],
      ['--target', target.url, '--path', '1:2'],
    ];
    for (const args of cases) {
      const io = captureIO();
      expect({ args, code: await main(args, io) }).toEqual({ args, code: 2 });
      expect(io.err).not.toBe('');
    }
  });

  it('runs from the package bin entry, which exits with the command\'s code', () => {
    const bin = new URL('../../bin/conformance.js', import.meta.url).pathname;
    const list = spawnSync(process.execPath, [bin, '--list'], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    expect(list.stdout.trim().split('\n').length).toBe(listChecks().length);
    const usage = spawnSync(process.execPath, [bin, '--level', 'core'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--target');
  }, 60_000);

  it('exits 3 when the target is unreachable', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const io = captureIO();
    expect(await main(['--target', `http://127.0.0.1:${port}/api/joke`], io)).toBe(3);
    expect(io.err).toContain('unreachable');
  });

  it('prints the seed, path, shrunk counterexample and a replay command of a failed property, and the replay fails the same way', async () => {
    // A proxy that drops every payment header the strict codec rejects: the server then answers
    // those requests with a plain challenge instead of invalid_payment.
    const proxy = await startProxy(target.url, (headers) => {
      if (typeof headers.payment === 'string' && !decodePaymentHeader(headers.payment).ok) delete headers.payment;
      return headers;
    });
    try {
      const io = captureIO();
      const json = path.join(dir, 'property.json');
      const code = await main(['--target', `${proxy.url}/api/joke`, '--only', '10/invalid-input-never-served', '--seed', '4242', '--runs', '10', '--json', json], io);
      expect(code).toBe(1);
      const failed = (JSON.parse(readFileSync(json, 'utf8')) as ConformanceReport).checks[0]!;
      expect(failed.status).toBe('failed');
      expect(failed.property).toMatchObject({ seed: 4242, path: expect.stringMatching(/^\d+(:\d+)*$/), counterexample: expect.any(String) });
      expect(io.out).toContain('Seed: 4242');
      expect(io.out).toContain(`Counterexample: ${failed.property!.counterexample}`);
      expect(io.out).toContain(`Replay: ${failed.property!.replay}`);

      const replayArgs = [...failed.property!.replay!.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(2);
      const replayJson = path.join(dir, 'replay.json');
      expect(await main([...replayArgs, '--json', replayJson], captureIO())).toBe(1);
      const replayed = (JSON.parse(readFileSync(replayJson, 'utf8')) as ConformanceReport).checks[0]!;
      expect(replayed.property?.counterexample).toBe(failed.property!.counterexample);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
