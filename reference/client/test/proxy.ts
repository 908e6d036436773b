/**
 * A tiny recording HTTP proxy for the client's tests: it forwards every
 * request to one upstream server, records what arrived (method, path,
 * headers, body) so a test can count round trips and check what the paid
 * retry carried, and can drop a response on purpose: the upstream handles
 * the request in full (and charges), then the client's connection is cut
 * before it hears the answer.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the proxy received it. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The upstream status, or undefined when the upstream was never answered. */
  status: number | undefined;
  /** Whether the proxy cut the connection instead of relaying the response. */
  dropped: boolean;
}

export interface RecordingProxy {
  url: string;
  requests: ProxiedRequest[];
  /** Cuts the connection after the upstream answered the next `times` requests matching `match`. */
  dropResponses(match: (request: ProxiedRequest) => boolean, times?: number): void;
  /** Answers the next `times` requests matching `match` with a redirect instead of forwarding them. */
  redirectRequests(match: (request: ProxiedRequest) => boolean, location: string, status?: number, times?: number): void;
  close(): Promise<void>;
}

export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const requests: ProxiedRequest[] = [];
  const drops: Array<{ match: (request: ProxiedRequest) => boolean; remaining: number }> = [];
  const redirects: Array<{ match: (request: ProxiedRequest) => boolean; remaining: number; location: string; status: number }> = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record: ProxiedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: { ...req.headers },
        body: Buffer.concat(chunks),
        status: undefined,
        dropped: false,
      };
      requests.push(record);
      const redirect = redirects.find((r) => r.remaining > 0 && r.match(record));
      if (redirect) {
        redirect.remaining--;
        record.status = redirect.status;
        res.writeHead(redirect.status, { location: redirect.location, 'content-length': '0' }).end();
        return;
      }
      const headers = { ...req.headers, host: target.host };
      const forward = httpRequest(
        { hostname: target.hostname, port: target.port, method: record.method, path: record.path, headers },
        (upstreamResponse) => {
          record.status = upstreamResponse.statusCode;
          const rule = drops.find((d) => d.remaining > 0 && d.match(record));
          if (rule) {
            rule.remaining--;
            record.dropped = true;
            // Let the upstream finish its work, then vanish without a word.
            upstreamResponse.resume();
            upstreamResponse.on('end', () => req.socket.destroy());
            return;
          }
          res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
          upstreamResponse.pipe(res);
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(record.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    dropResponses(match, times = 1) {
      drops.push({ match, remaining: times });
    },
    redirectRequests(match, location, status = 302, times = 1) {
      redirects.push({ match, remaining: times, location, status });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
