/**
 * Client identity (spec section 6): the client id is the lower-case hex
 * HMAC-SHA256 of the card fingerprint, keyed with the server secret. Key and
 * message order matter; vectors/client_id_hmac_sha256.json pins them.
 * Uses Web Crypto only, so it runs in any JavaScript runtime.
 */

/** The shortest server secret allowed, in UTF-8 bytes (CID-2). */
export const SERVER_SECRET_MIN_BYTES = 32;

const CLIENT_ID_PATTERN = /^[0-9a-f]{64}$/;
const utf8 = new TextEncoder();

/** Whether a value is a well-formed client id: 64 lower-case hex characters (CID-3). */
export function isClientId(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_ID_PATTERN.test(value);
}

/** Whether a server secret is long enough (CID-2). */
export function isStrongServerSecret(secret: string): boolean {
  return utf8.encode(secret).byteLength >= SERVER_SECRET_MIN_BYTES;
}

/**
 * clientId = lowercase hex( HMAC-SHA256( key = UTF-8(serverSecret),
 * message = UTF-8(fingerprint) ) ) (CID-1). The secret length is the
 * caller's policy (a server refuses short secrets at start-up), so that the
 * derivation itself can be tested with any key.
 */
export async function deriveClientId(serverSecret: string, fingerprint: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    utf8.encode(serverSecret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, utf8.encode(fingerprint)));
  let hex = '';
  for (const byte of mac) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
