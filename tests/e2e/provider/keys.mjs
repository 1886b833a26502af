// Signing keys for the test provider: generated in memory at start, and written nowhere unless a
// keys file is given (--keys-file), which lets a restarted provider sign with the same keys.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** A fresh RS256 private JWK with a random kid. */
export function generateSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A compact RS256 JWS over `payload`, for tokens the endpoints never issue (expired, foreign);
 * `typ` is the JOSE header's, an access token's (RFC 9068) unless told otherwise.
 */
export function signJwt(jwk, payload, typ = 'at+jwt') {
  const input = `${encode({ alg: 'RS256', typ, kid: jwk.kid })}.${encode(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key: jwk, format: 'jwk' });
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * {keys, unpublishedKey} from `path` if it exists, else fresh ones (written there when a path is
 * given). keys[0] signs; unpublishedKey is never in the JWKS.
 */
export function loadOrCreateKeys(path) {
  if (path && existsSync(path)) {
    const { keys, unpublishedKey } = JSON.parse(readFileSync(path, 'utf8'));
    return { keys, unpublishedKey };
  }
  const created = { keys: [generateSigningKey()], unpublishedKey: generateSigningKey() };
  if (path) saveKeys(path, created);
  return created;
}

/** Private keys: readable by this user only. TEST-ONLY, in a test's temporary directory. */
export function saveKeys(path, { keys, unpublishedKey }) {
  writeFileSync(path, JSON.stringify({ keys, unpublishedKey }), { mode: 0o600 });
}
