// Test-only identities: the users and service clients every end-to-end test can rely on.
import { errors } from 'oidc-provider';

export const API_RESOURCE = 'https://api.idgate.test';
/** The assurance levels (`acr`) this provider signs in at: a password, or a password and more. */
export const ACR_PASSWORD = 'urn:idgate:test:password';
export const ACR_MFA = 'urn:idgate:test:mfa';
export const USER_GRANT = 'urn:idgate:test:user';
const API_SCOPE = 'api:read api:write';

export const USERS = new Map([
  ['alice', { email: 'alice@example.com', groups: ['engineering', 'admins'], username: 'alice.l' }],
  ['bob', { email: 'bob@example.com', groups: ['engineering'], username: 'bob.b' }],
  // carol has no groups: her tokens carry no `groups` claim at all, as with most real providers.
  ['carol', { email: 'carol@example.org', groups: [], username: 'carol.c' }],
]);

/** client_credentials clients; `claims` are added to every access token issued to them. */
export const SERVICES = new Map([
  ['service-a', { secret: 'service-a-secret', claims: { groups: ['services', 'deployers'] } }],
  ['service-b', { secret: 'service-b-secret', claims: {} }],
]);

/** The only client allowed the test-user grant, so no real client can mint user tokens. */
export const MINTER = { client_id: 'e2e-minter', client_secret: 'e2e-minter-secret' };

export function userClaims(username) {
  const { email, groups } = USERS.get(username);
  return { email, email_verified: true, ...(groups.length > 0 && { groups }) };
}

/**
 * findAccount for the browser flow: the same users, with email and groups claims, and with the
 * `profile` scope a `preferred_username` that differs from `sub` (as Keycloak's and glewlwyd's
 * usernames differ from their subject ids). Access tokens never carry it.
 */
export async function findAccount(_ctx, sub) {
  if (!USERS.has(sub)) return undefined;
  const preferred_username = USERS.get(sub).username;
  return { accountId: sub, claims: async () => ({ sub, preferred_username, ...userClaims(sub) }) };
}

export async function extraTokenClaims(_ctx, token) {
  if (token.accountId) return USERS.has(token.accountId) ? userClaims(token.accountId) : undefined;
  return SERVICES.get(token.clientId)?.claims;
}

/** Any https resource on *.idgate.test gets JWT tokens, so tests can ask for a wrong audience. */
export async function getResourceServerInfo(_ctx, resource) {
  const url = URL.parse(resource);
  if (url?.protocol !== 'https:' || !url.hostname.endsWith('.idgate.test')) {
    throw new errors.InvalidTarget('resource must be an https URL on *.idgate.test');
  }
  return {
    audience: resource,
    scope: API_SCOPE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg: 'RS256' } },
  };
}

/**
 * TEST-ONLY grant `urn:idgate:test:user` (username, resource): a JWT access token for a test user
 * without a browser, as if that user had signed in. Never register this on a real provider.
 */
export async function userGrant(ctx) {
  const { client, params, provider } = ctx.oidc;
  if (!USERS.has(params.username)) throw new errors.InvalidGrant('unknown test user');
  const resource = params.resource ?? API_RESOURCE;
  const token = new provider.AccessToken({
    accountId: params.username,
    client,
    gty: USER_GRANT,
    resourceServer: new provider.ResourceServer(
      resource,
      await getResourceServerInfo(ctx, resource),
    ),
    scope: API_SCOPE,
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    expires_in: token.expiration,
    scope: token.scope,
    token_type: token.tokenType,
  };
}
