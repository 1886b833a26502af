// TEST-ONLY admin endpoints under /__admin: rotate signing keys, sign arbitrary tokens, point the
// web client at a running idgate, revoke a user, switch token revocation on, off or to failing. Loopback-only like the rest of this provider;
// never deploy it.
import { randomUUID } from 'node:crypto';

import { USERS } from './accounts.mjs';
import { revokeUser } from './configuration.mjs';
import { generateSigningKey, saveKeys, signJwt } from './keys.mjs';

export const ADMIN_PATH = '/__admin';

class BadRequest extends Error {}

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new BadRequest('body must be JSON');
  }
  if (!isObject(body)) throw new BadRequest('body must be a JSON object');
  return body;
}

function stringList(value, name) {
  const list = value ?? [];
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) {
    throw new BadRequest(`${name} must be a list of strings`);
  }
  return list;
}

async function rebuild(host, changes) {
  try {
    await host.replace(changes);
  } catch (error) {
    const reason = error.error_description ?? error.message;
    throw new BadRequest(`oidc-provider rejected the change: ${reason}`);
  }
}

/** {keep_old = true} -> a new key signs from now on; old ones stay in the JWKS or are dropped. */
async function rotateKeys(host, { keep_old: keepOld = true }) {
  if (typeof keepOld !== 'boolean') throw new BadRequest('keep_old must be a boolean');
  const key = generateSigningKey();
  await rebuild(host, { keys: keepOld ? [key, ...host.state.keys] : [key] });
  if (host.state.keysFile) saveKeys(host.state.keysFile, host.state);
  return { kid: key.kid, published: host.state.keys.map(({ kid }) => kid) };
}

/**
 * {claims, key = "current" | "unpublished", typ = "at+jwt"} -> {token}: iss, iat, exp (+300 s)
 * and jti default from the provider; a claim given as null is left out, so tests can drop exp or
 * iss; `typ` is the JOSE header's (an ID token's is "JWT").
 */
function sign(host, { claims = {}, key = 'current', typ = 'at+jwt' }) {
  const keys = { current: host.state.keys[0], unpublished: host.state.unpublishedKey };
  if (!Object.hasOwn(keys, key)) throw new BadRequest('key must be "current" or "unpublished"');
  if (!isObject(claims)) throw new BadRequest('claims must be a JSON object');
  if (typeof typ !== 'string') throw new BadRequest('typ must be a string');
  const now = Math.floor(Date.now() / 1000);
  const defaults = { iss: host.state.issuer, iat: now, exp: now + 300, jti: randomUUID() };
  const payload = { ...defaults, ...claims };
  const present = Object.entries(payload).filter(([, value]) => value !== null);
  return { token: signJwt(keys[key], Object.fromEntries(present), typ) };
}

/** {redirect_uris, post_logout_redirect_uris, backchannel_logout_uri} for the "idgate" client. */
async function configureWebClient(host, body) {
  const backchannelLogoutUri = body.backchannel_logout_uri ?? undefined;
  if (backchannelLogoutUri !== undefined && typeof backchannelLogoutUri !== 'string') {
    throw new BadRequest('backchannel_logout_uri must be a string');
  }
  await rebuild(host, {
    web: {
      redirectUris: stringList(body.redirect_uris, 'redirect_uris'),
      postLogoutRedirectUris: stringList(
        body.post_logout_redirect_uris,
        'post_logout_redirect_uris',
      ),
      backchannelLogoutUri,
    },
  });
  return {};
}

/** How the revocation endpoint behaves: served, not offered at all, or offered but failing. */
const REVOCATION_MODES = new Set(['on', 'off', 'failing']);

/** {mode} -> {revocation_endpoint}: the endpoint discovery advertises from now on, or null. */
async function configureRevocation(host, { mode }) {
  if (!REVOCATION_MODES.has(mode)) throw new BadRequest('mode must be "on", "off" or "failing"');
  await rebuild(host, { revocation: mode });
  return { revocation_endpoint: mode === 'off' ? null : `${host.state.issuer}/token/revocation` };
}

/** {username} -> {grants, sessions}: how many of the user's grants and sessions were ended. */
async function revokeUserAccess(_host, { username }) {
  if (!USERS.has(username)) throw new BadRequest('username must name a test user');
  return revokeUser(username);
}

const ROUTES = new Map([
  ['POST /rotate-keys', rotateKeys],
  ['POST /sign', sign],
  ['PUT /web-client', configureWebClient],
  ['POST /revoke-user', revokeUserAccess],
  ['PUT /revocation', configureRevocation],
]);

/** Errors have the OAuth shape ({error, error_description}), like the provider's own. */
function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export async function handleAdmin(host, req, res) {
  const action = ROUTES.get(`${req.method} ${req.url.slice(ADMIN_PATH.length)}`);
  if (!action) {
    reply(res, 404, { error: 'not_found', error_description: 'no such admin endpoint' });
    return;
  }
  try {
    reply(res, 200, await action(host, await readJson(req)));
  } catch (error) {
    if (!(error instanceof BadRequest)) throw error;
    reply(res, 400, { error: 'invalid_request', error_description: error.message });
  }
}
