// Test-only identities: the users and service clients every end-to-end test can rely on.
import { errors } from 'oidc-provider';

export const API_RESOURCE = 'https://api.idgate.test';
/** The assurance levels (`acr`) this provider signs in at: a password, or a password and more. */
export const ACR_PASSWORD = 'urn:idgate:test:password';
export const ACR_MFA = 'urn:idgate:test:mfa';
export const USER_GRANT = 'urn:idgate:test:user';
const API_SCOPE = 'api:read api:write';
/** As an Entra ID / AD user in many groups would be: 1,500 long-named groups. */
const MANY_GROUPS = Array.from(
  { length: 1500 },
  (_, index) => `sg-contoso-app-${String(index).padStart(4, '0')}-readers`,
);

export const USERS = new Map([
  ['alice', { email: 'alice@example.com', groups: ['engineering', 'admins'], username: 'alice.l' }],
  ['bob', { email: 'bob@example.com', groups: ['engineering'], username: 'bob.b' }],
  // carol has no groups: her tokens carry no `groups` claim at all, as with most real providers.
  ['carol', { email: 'carol@example.org', groups: [], username: 'carol.c' }],
  // many-groups's groups are served at userinfo only, as providers that keep groups out of tokens
  // do (an ID token carrying them would be past idgate's 16 KiB token bound): they make a session
  // too large for the cookie store's 8 cookies.
  [
    'many-groups',
    {
      email: 'many-groups@example.com',
      groups: MANY_GROUPS,
      username: 'many-groups.m',
      groupsAtUserinfoOnly: true,
    },
  ],
]);

/** client_credentials clients; `claims` are added to every access token issued to them. */
export const SERVICES = new Map([
  ['service-a', { secret: 'service-a-secret', claims: { groups: ['services', 'deployers'] } }],
  ['service-b', { secret: 'service-b-secret', claims: {} }],
]);

/** The only client allowed the test-user grant, so no real client can mint user tokens. */
export const MINTER = { client_id: 'e2e-minter', client_secret: 'e2e-minter-secret' };

/** A user's claims for `use`: "userinfo", "id_token" (oidc-provider's names) or "access_token". */
export function userClaims(username, use) {
  const { email, groups, groupsAtUserinfoOnly } = USERS.get(username);
  const withGroups = groups.length > 0 && (use === 'userinfo' || !groupsAtUserinfoOnly);
  return { email, email_verified: true, ...(withGroups && { groups }) };
}

/**
 * findAccount for the browser flow: the same users, with email and groups claims, and with the
 * `profile` scope a `preferred_username` that differs from `sub` (as Keycloak's and glewlwyd's
 * usernames differ from their subject ids). Access tokens never carry it.
 */
export async function findAccount(_ctx, sub) {
  if (!USERS.has(sub)) return undefined;
  const preferred_username = USERS.get(sub).username;
  return {
    accountId: sub,
    claims: async (use) => ({ sub, preferred_username, ...userClaims(sub, use) }),
  };
}

export async function extraTokenClaims(_ctx, token) {
  if (token.accountId) {
    return USERS.has(token.accountId) ? userClaims(token.accountId, 'access_token') : undefined;
  }
  return SERVICES.get(token.clientId)?.claims;
}

/**
 * Any https resource on *.idgate.test is an API, so tests can ask for a wrong audience. Its access
 * tokens are JWTs, or with `format` "opaque" random strings that only introspection explains.
 */
export function resourceServers(format) {
  return async function getResourceServerInfo(_ctx, resource) {
    const url = URL.parse(resource);
    if (url?.protocol !== 'https:' || !url.hostname.endsWith('.idgate.test')) {
      throw new errors.InvalidTarget('resource must be an https URL on *.idgate.test');
    }
    return {
      audience: resource,
      scope: API_SCOPE,
      accessTokenFormat: format,
      accessTokenTTL: 300,
      ...(format === 'jwt' && { jwt: { sign: { alg: 'RS256' } } }),
    };
  };
}

/**
 * TEST-ONLY grant `urn:idgate:test:user` (username, resource): an access token for a test user
 * without a browser, as if that user had signed in. Never register this on a real provider.
 */
export const userGrant = (getResourceServerInfo) => async function grantUserToken(ctx) {
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
};
