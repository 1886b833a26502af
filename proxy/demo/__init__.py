"""`idgate demo`: try idgate on one machine with no setup. Development only, never for production.

    run.py             the command: helpers up, config written and loaded, `serve()`
                       (proxy/server/serve.py)
    config.py          the demo's idgate config (routes, audiences), read by the real loader
    banner.py          what is printed once everything answers
    issuer.py          DEV-ONLY OpenID provider: discovery, JWKS, sign-in page, userinfo, logout
    authorization.py   the authorization request and its two kinds of refusal
    token_endpoint.py  authorization_code + PKCE, refresh_token, client_credentials
    grants.py          one-time codes and rotating refresh tokens, in memory
    tokens.py          the in-memory ES256 key and the JWTs it signs
    directory.py       the demo users and OAuth clients
    upstream.py        echoes what idgate sent and verifies the signed assertion
    pages.py           the HTML layout and the issuer's pages

Nothing outside this package imports it except the CLI, lazily: `idgate serve` never loads it.
"""
