// One oidc-provider instance from the current state (keys, web client); rebuilt whole on change.
import { Provider } from 'oidc-provider';
// Not a public export; package.json pins the exact version this path exists in.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

import {
  ACR_MFA,
  ACR_PASSWORD,
  MINTER,
  SERVICES,
  USER_GRANT,
  extraTokenClaims,
  findAccount,
  getResourceServerInfo,
  userGrant,
} from './accounts.mjs';
import { indexingAdapter, revokeAccount } from './revocation.mjs';

/** One store for every instance, so sessions, grants and refresh tokens survive a key rotation. */
const memory = createMemoryAdapter();
const adapter = indexingAdapter(memory);

/** TEST-ONLY: end every grant and session of a user (see revocation.mjs). */
export const revokeUser = (accountId) => revokeAccount(memory, accountId);

/** Placeholder until a test sets the real callback: a web client needs a redirect URI. */
const UNCONFIGURED_REDIRECT_URI = 'http://127.0.0.1/oauth2/callback';

/** The confidential browser client "idgate": code + PKCE, refresh tokens, both logouts. */
function webClient({ redirectUris, postLogoutRedirectUris, backchannelLogoutUri }) {
  return {
    client_id: 'idgate',
    client_secret: 'idgate-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: redirectUris.length > 0 ? redirectUris : [UNCONFIGURED_REDIRECT_URI],
    post_logout_redirect_uris: postLogoutRedirectUris,
    ...(backchannelLogoutUri && {
      backchannel_logout_uri: backchannelLogoutUri,
      backchannel_logout_session_required: true,
    }),
  };
}

function serviceClients() {
  return [...SERVICES].map(([clientId, { secret }]) => ({
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }));
}

/**
 * TEST-ONLY: the dev login page has no second factor, so a sign-in counts as multi-factor exactly
 * when the authorization request's `acr_values` asked for ACR_MFA (a real provider would prompt
 * for it there), and as a password sign-in otherwise. The resulting `acr` and `amr` go into the
 * ID token, so a test that edits `acr_values` in the URL gets what it asked for.
 */
function recordAssurance(provider) {
  const finish = provider.interactionFinished.bind(provider);
  provider.interactionFinished = async (req, res, result, options) => {
    if (!result.login) return finish(req, res, result, options);
    const { params } = await provider.interactionDetails(req, res);
    const mfa = String(params.acr_values ?? '').split(' ').includes(ACR_MFA);
    const login = {
      ...result.login,
      acr: mfa ? ACR_MFA : ACR_PASSWORD,
      amr: mfa ? ['pwd', 'otp'] : ['pwd'],
    };
    return finish(req, res, { ...result, login }, options);
  };
}

/**
 * A ready provider for `state` ({issuer, keys, cookieKeys, web}); throws if oidc-provider rejects
 * any client, which it otherwise would only do at that client's first request.
 */
export async function buildProvider({ issuer, keys, cookieKeys, web, revocation }) {
  const clients = [
    webClient(web),
    { ...MINTER, grant_types: [USER_GRANT], response_types: [], redirect_uris: [] },
    ...serviceClients(),
  ];
  const provider = new Provider(issuer, {
    adapter,
    // oidc-provider signs with the first matching key, so keys[0] is the current signing key.
    jwks: { keys },
    cookies: { keys: cookieKeys },
    clients,
    findAccount,
    extraTokenClaims,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
      profile: ['preferred_username'],
    },
    scopes: ['openid', 'offline_access'],
    acrValues: [ACR_PASSWORD, ACR_MFA],
    // Put email and groups in the ID token too, as Keycloak, Okta and Entra ID do.
    conformIdTokenClaims: false,
    // A refresh token for every client allowed the grant, as Keycloak issues them. oidc-provider's
    // default keeps OIDC Core 11 to the letter: offline_access is dropped, and no refresh token
    // issued, unless the authorization request also says prompt=consent.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    clientBasedCORS: () => false,
    // Back-channel logouts go to idgate on loopback, which oidc-provider's SSRF guard (a
    // dispatcher refusing special-use addresses) would refuse: test-only, so without the guard.
    fetch: (url, { dispatcher: _ssrfGuard, ...options }) => globalThis.fetch(url, options),
    pkce: { required: () => true },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      // Token revocation (RFC 7009) at /token/revocation, unless a test turned it off (see
      // REVOCATION_MODES in admin.mjs); "failing" keeps it advertised but host.mjs answers 503.
      revocation: { enabled: revocation !== 'off' },
      resourceIndicators: { enabled: true, getResourceServerInfo },
    },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      ClientCredentials: 300,
      Grant: 3600,
      IdToken: 300,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
  });
  recordAssurance(provider);
  provider.registerGrantType(USER_GRANT, userGrant, ['username', 'resource']);
  provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));
  provider.on('backchannel.error', (_ctx, error, client) => {
    console.error(`oidc-provider back-channel logout to ${client.clientId} failed:`, error.message);
  });
  await Promise.all(clients.map(({ client_id: clientId }) => provider.Client.find(clientId)));
  return provider;
}
