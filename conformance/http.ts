/**
 * The conformance suite's HTTP transport: node:http(s) used directly rather
 * than fetch, because a black-box tester must send what fetch refuses or
 * normalises away: a header field line repeated, a raw request target with
 * dot segments or duplicate slashes, HEAD, and a payment value byte for byte.
 */
import http from 'node:http';
import https from 'node:https';

/** A request as the suite means it, path included verbatim. */
export interface RawRequest {
  method: string;
  /** The request target exactly as sent: path and query, never normalised. */
  path: string;
  /** A header given as an array is sent as that many field lines. */
  headers?: Record<string, string | string[]>;
  body?: string;
}

/** A response with the body read as UTF-8 text. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  durationMs: number;
}

/** Why a request got no HTTP response at all. */
export type TransportFailure = 'unreachable' | 'timeout' | 'connection';

/** A request that ended without an HTTP response. */
export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** One keep-alive connection pool to the target's origin. */
export class HttpTransport {
  private readonly agent: http.Agent;
  private readonly module: typeof http | typeof https;

  constructor(
    readonly origin: URL,
    readonly timeoutMs: number,
  ) {
    const secure = origin.protocol === 'https:';
    this.module = secure ? https : http;
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: 256 })
      : new http.Agent({ keepAlive: true, maxSockets: 256 });
  }

  /** Sends one request; retries once only when a reused keep-alive socket was closed before any byte came back. */
  async request(request: RawRequest): Promise<RawResponse> {
    try {
      return await this.once(request);
    } catch (error) {
      if (error instanceof StaleSocketError) return this.once(request);
      throw error;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private once(request: RawRequest): Promise<RawResponse> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { ...request.headers };
      if (request.body !== undefined) headers['content-length'] = Buffer.byteLength(request.body);
      const req = this.module.request({
        protocol: this.origin.protocol,
        hostname: this.origin.hostname.replace(/^\[|\]$/g, ''),
        port: this.origin.port || undefined,
        method: request.method,
        path: request.path,
        headers,
        agent: this.agent,
        timeout: this.timeoutMs,
      });
      req.on('timeout', () => {
        req.destroy(new TransportError('timeout', `no response within ${this.timeoutMs} ms`));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof TransportError) return reject(error);
        if (req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
          return reject(new StaleSocketError());
        }
        if (error.code && UNREACHABLE_CODES.has(error.code)) {
          return reject(new TransportError('unreachable', `cannot connect to ${this.origin.origin} (${error.code})`, { cause: error }));
        }
        reject(new TransportError('connection', `the connection failed: ${error.code ?? error.message}`, { cause: error }));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(new TransportError('connection', `the response was cut short: ${error.message}`)));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            durationMs: performance.now() - started,
          });
        });
      });
      if (request.body !== undefined) req.write(request.body);
      req.end();
    });
  }
}

class StaleSocketError extends Error {}
