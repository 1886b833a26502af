// Signing keys for the test provider: generated in memory at start, never written anywhere.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

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
