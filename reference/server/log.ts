/**
 * Structured logs: one JSON object per line. Client ids are bearer
 * credentials and PaymentMethod ids name cards, so both are redacted to a
 * short prefix before anything is written (SEC-2).
 */

export type LogEntry = Record<string, unknown> & { msg: string };
export type LogSink = (entry: LogEntry) => void;

/** The first 8 characters and an ellipsis: enough to correlate lines, not enough to spend. */
export function redact(id: string | undefined | null): string | undefined {
  if (!id) return undefined;
  return id.length <= 8 ? '…' : `${id.slice(0, 8)}…`;
}

/**
 * Redacts every client id (64 hex characters) and PaymentMethod id in free
 * text, such as an SDK error message headed for the log.
 */
export function scrub(text: string): string {
  return text.replace(/\b[0-9a-f]{64}\b/g, (id) => redact(id)!).replace(/\bpm_[A-Za-z0-9_]+/g, (id) => redact(id)!);
}

/** Writes JSON lines to a stream (stdout by default), with a timestamp and a level. */
export function jsonLogger(write: (line: string) => void = (line) => process.stdout.write(line)): LogSink {
  return (entry) => {
    write(JSON.stringify({ time: new Date().toISOString(), level: 'info', ...entry }) + '\n');
  };
}

/** Discards everything (tests, benchmarks). */
export const silentLogger: LogSink = () => {};
