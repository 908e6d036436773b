/**
 * Request buffering: whatever shape a caller gives fetch, the buffered
 * request re-sends the same method, headers and bytes every time. Checked
 * over real HTTP against a server that records what arrived, comparing a
 * plain fetch of the original with two sends of the buffered copy.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestBodyTooLargeError } from '../errors.ts';
import { bufferRequest, toInit } from '../request.ts';

interface Seen {
  method: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let base: string;
let seen: Seen[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks) });
    res.end('ok');
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** What the server saw, minus the headers that legitimately differ between sends. */
function comparable(s: Seen) {
  const headers = { ...s.headers };
  for (const name of ['host', 'connection', 'content-length', 'transfer-encoding', 'payment']) delete headers[name];
  // A multipart boundary is chosen when the body is serialized; the bytes must match up to it.
  const boundary = /boundary=(.+)$/.exec(String(headers['content-type'] ?? ''))?.[1];
  const body = boundary ? s.body.toString('latin1').replaceAll(boundary, 'BOUNDARY') : s.body.toString('latin1');
  if (boundary) headers['content-type'] = String(headers['content-type']).replace(boundary, 'BOUNDARY');
  return { method: s.method, headers, body };
}

/** Sends the original with plain fetch, then the buffered copy twice (once with a payment header); all three must match. */
async function roundTrip(make: () => [RequestInfo | URL, RequestInit | undefined]) {
  seen = [];
  const [input, init] = make();
  await (await fetch(input, init)).text();
  const [input2, init2] = make();
  const buffered = await bufferRequest(input2, init2);
  await (await fetch(buffered.url, toInit(buffered, undefined, 'manual'))).text();
  await (await fetch(buffered.url, toInit(buffered, 'eyJ4IjoxfQ==', 'manual'))).text();
  expect(seen).toHaveLength(3);
  const [original, first, second] = seen.map(comparable);
  expect(first).toEqual(original);
  expect(second).toEqual(original);
  expect(seen[2]!.headers['payment']).toBe('eyJ4IjoxfQ==');
  return original!;
}

describe('a buffered request re-sends exactly what fetch would send', () => {
  it('for a string body with headers given as a plain object', async () => {
    const sent = await roundTrip(() => [`${base}/a`, { method: 'POST', body: '{"q":1}', headers: { 'content-type': 'application/json', 'x-trace': 't1' } }]);
    expect(sent).toMatchObject({ method: 'POST', body: '{"q":1}', headers: { 'x-trace': 't1', 'content-type': 'application/json' } });
  });

  it('for bytes with headers given as a Headers instance, repeated values included', async () => {
    const sent = await roundTrip(() => {
      const headers = new Headers({ 'x-one': '1' });
      headers.append('x-multi', 'a');
      headers.append('x-multi', 'b');
      return [`${base}/b`, { method: 'PUT', body: new Uint8Array([0, 1, 2, 255]), headers }];
    });
    expect(sent.headers['x-multi']).toBe('a, b');
    expect(Buffer.from(sent.body, 'latin1')).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('for URLSearchParams with headers given as pairs', async () => {
    const sent = await roundTrip(() => [`${base}/c`, { method: 'POST', body: new URLSearchParams({ a: '1', b: 'x y' }), headers: [['x-pair', 'p']] }]);
    expect(sent.body).toBe('a=1&b=x+y');
    expect(sent.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
  });

  it('for a Blob, keeping its type', async () => {
    const sent = await roundTrip(() => [`${base}/d`, { method: 'POST', body: new Blob(['blob body'], { type: 'text/x-blob' }) }]);
    expect(sent).toMatchObject({ body: 'blob body', headers: { 'content-type': 'text/x-blob' } });
  });

  it('for FormData, with the same boundary on every send', async () => {
    const form = () => {
      const f = new FormData();
      f.set('field', 'value');
      f.set('file', new Blob(['file content'], { type: 'text/plain' }), 'a.txt');
      return f;
    };
    seen = [];
    const buffered = await bufferRequest(`${base}/e`, { method: 'POST', body: form() });
    await (await fetch(buffered.url, toInit(buffered, undefined, 'manual'))).text();
    await (await fetch(buffered.url, toInit(buffered, 'eA==', 'manual'))).text();
    expect(seen[1]!.body.equals(seen[0]!.body)).toBe(true);
    expect(seen[1]!.headers['content-type']).toBe(seen[0]!.headers['content-type']);
    expect(seen[0]!.body.toString()).toContain('file content');
  });

  it('for a Request object carrying its own method, headers and body', async () => {
    const sent = await roundTrip(() => [new Request(`${base}/f`, { method: 'PATCH', body: 'from a request', headers: { 'x-req': 'r' } }), undefined]);
    expect(sent).toMatchObject({ method: 'PATCH', body: 'from a request', headers: { 'x-req': 'r' } });
  });

  it('for a Request object whose init overrides the method and headers', async () => {
    const sent = await roundTrip(() => [new Request(`${base}/g`, { headers: { 'x-old': 'o' } }), { method: 'DELETE', headers: { 'x-new': 'n' } }]);
    expect(sent.method).toBe('DELETE');
    expect(sent.headers['x-new']).toBe('n');
    expect(sent.headers['x-old']).toBeUndefined();
  });

  it('for a stream body, read once', async () => {
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('chunk one, '));
          controller.enqueue(new TextEncoder().encode('chunk two'));
          controller.close();
        },
      });
    seen = [];
    const buffered = await bufferRequest(`${base}/h`, { method: 'POST', body: stream(), duplex: 'half' } as RequestInit);
    await (await fetch(buffered.url, toInit(buffered, undefined, 'manual'))).text();
    await (await fetch(buffered.url, toInit(buffered, 'eA==', 'manual'))).text();
    expect(seen.map((s) => s.body.toString())).toEqual(['chunk one, chunk two', 'chunk one, chunk two']);
  });
});

describe('the body cap', () => {
  it('a stream longer than the cap is refused with a typed error', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    await expect(bufferRequest(`${base}/i`, { method: 'POST', body: endless, duplex: 'half' } as RequestInit, 10_000)).rejects.toBeInstanceOf(
      RequestBodyTooLargeError,
    );
    expect(pulled).toBeLessThan(20);
  });

  it('a body exactly at the cap is accepted', async () => {
    const buffered = await bufferRequest(`${base}/j`, { method: 'POST', body: new Uint8Array(4096) }, 4096);
    expect(buffered.body?.byteLength).toBe(4096);
  });
});
