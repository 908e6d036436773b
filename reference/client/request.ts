/**
 * Turns whatever a caller hands to `fetch` (a URL or a Request, headers as
 * a Headers instance, a plain object or pairs, a body as a string, bytes,
 * URLSearchParams, Blob, FormData or a stream) into one replayable request:
 * the body is read once into memory, up to a cap, so that the paid retry
 * sends exactly the same method, headers and bytes as the first attempt.
 */
import { RequestBodyTooLargeError } from './errors.ts';

/** The default cap on a buffered request body: 32 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/** A request that can be sent any number of times. */
export interface ReplayableRequest {
  /** The absolute URL. */
  url: URL;
  /** The method, upper case for the standard methods (as fetch normalizes it). */
  method: string;
  /** Every header of the original request, including the content type fetch derives from the body. */
  headers: Headers;
  /** The body bytes, or null. */
  body: Uint8Array | null;
  /** The caller's abort signal, if any. */
  signal: AbortSignal | undefined;
  /** The caller's redirect mode. */
  redirect: RequestRedirect;
  /** The remaining init fields fetch understands (credentials, cache, mode, keepalive, ...). */
  extra: RequestInit;
}

/** Reads a request once into a `ReplayableRequest`. Throws like fetch on an invalid request. */
export async function bufferRequest(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  maxBodyBytes: number = DEFAULT_MAX_BODY_BYTES,
): Promise<ReplayableRequest> {
  const options: RequestInit & { duplex?: 'half' } = { ...init };
  // A stream body needs duplex 'half' to build a Request; fetch would ask the same of the caller.
  if (isStream(options.body)) options.duplex = 'half';
  const request = new Request(input, options);
  const body = request.body ? await readCapped(request.body, maxBodyBytes) : null;
  const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined) ?? undefined;
  const extra: RequestInit = {};
  if (init?.credentials !== undefined) extra.credentials = init.credentials;
  if (init?.cache !== undefined) extra.cache = init.cache;
  if (init?.mode !== undefined) extra.mode = init.mode;
  if (init?.keepalive !== undefined) extra.keepalive = init.keepalive;
  if (init?.referrer !== undefined) extra.referrer = init.referrer;
  if (init?.referrerPolicy !== undefined) extra.referrerPolicy = init.referrerPolicy;
  if (init?.integrity !== undefined) extra.integrity = init.integrity;
  return {
    url: new URL(request.url),
    method: request.method,
    headers: new Headers(request.headers),
    body,
    signal,
    redirect: request.redirect,
    extra,
  };
}

/** The init to send a replayable request with, plus or minus a `payment` header. */
export function toInit(request: ReplayableRequest, payment: string | undefined, redirect: RequestRedirect): RequestInit {
  const headers = new Headers(request.headers);
  if (payment === undefined) headers.delete('payment');
  else headers.set('payment', payment);
  const init: RequestInit = { ...request.extra, method: request.method, headers, redirect };
  if (request.body !== null) init.body = request.body.slice();
  if (request.signal) init.signal = request.signal;
  return init;
}

async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new RequestBodyTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function isStream(body: unknown): boolean {
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return true;
  // Node streams and async generators: fetch in Node accepts them as bodies, also with duplex 'half'.
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body;
}
