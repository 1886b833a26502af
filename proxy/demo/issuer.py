"""A development-only OpenID provider for `idgate demo`: never run it for anything real.

It signs in the demo users (alice, bob, carol) with a button each, no password, and serves what
idgate needs of a provider: discovery, JWKS, authorization (code + PKCE S256 only, registered
redirect URIs only), the token endpoint (proxy/demo/token_endpoint.py), userinfo, and
RP-Initiated Logout. Keys and grants live in memory and die with the process.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from joserfc.errors import JoseError
from yarl import URL

from proxy.demo.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    UnsafeRedirect,
    parse_authorization_request,
    respond,
)
from proxy.demo.directory import USERS, DemoClient, DemoUser
from proxy.demo.grants import CodeGrant, Grants
from proxy.demo.pages import message_page, sign_in_page
from proxy.demo.token_endpoint import TokenEndpoint
from proxy.demo.tokens import ALGORITHM, TokenMint, user_claims

_log = logging.getLogger("idgate.demo.issuer")

DISCOVERY_PATH: Final = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerSettings:
    url: str
    """The issuer identifier (`iss`): `http://127.0.0.1:PORT`, no trailing slash."""
    clients: tuple[DemoClient, ...]
    audiences: tuple[str, ...]
    """`aud` of every access token: the demo API. Never idgate's client, which is the audience
    of ID tokens, and idgate refuses those as bearer tokens."""
    users: tuple[DemoUser, ...] = USERS


class DevIssuer:
    def __init__(self, settings: IssuerSettings) -> None:
        self._url = settings.url
        self._users = settings.users
        self._clients = {client.client_id: client for client in settings.clients}
        self._users_by_name = {user.username: user for user in settings.users}
        self._mint = TokenMint(issuer=settings.url)
        self._grants = Grants()
        self._token_endpoint = TokenEndpoint(
            mint=self._mint,
            grants=self._grants,
            clients=self._clients,
            audiences=settings.audiences,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(DISCOVERY_PATH, self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/authorize", self._sign_in)
        app.router.add_post("/token", self._token_endpoint.handle)
        app.router.add_route("*", "/userinfo", self._userinfo)
        app.router.add_get("/end_session", self._end_session)
        app.router.add_post("/end_session", self._end_session)
        app.on_startup.append(self._announce)
        return app

    async def _announce(self, app: web.Application) -> None:
        del app
        _log.warning(
            "DEV-ONLY OpenID issuer at %s: demo users %s sign in without a password and its keys "
            "live in memory; never use it for anything real",
            self._url,
            ", ".join(self._users_by_name),
        )

    async def _discovery(self, request: web.Request) -> web.Response:
        del request
        base = self._url
        return web.json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "end_session_endpoint": f"{base}/end_session",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [ALGORITHM],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(self._mint.jwks())

    async def _authorize(self, request: web.Request) -> web.Response:
        """GET: the sign-in page for a valid authorization request."""
        checked = self._check_request(request.query)
        if isinstance(checked, web.Response):
            return checked
        return sign_in_page(checked, self._users)

    async def _sign_in(self, request: web.Request) -> web.Response:
        """POST from the sign-in page: the request again, and the user whose button was pressed."""
        params = _strings(await request.post())
        checked = self._check_request(params)
        if isinstance(checked, web.Response):
            return checked
        user = self._users_by_name.get(params.get("user", ""))
        if user is None:
            return message_page(status=400, heading="Unknown user", message="Pick a demo user.")
        code = self._grants.issue_code(
            CodeGrant(
                client_id=checked.client.client_id,
                redirect_uri=checked.redirect_uri,
                code_challenge=checked.code_challenge,
                nonce=checked.nonce,
                scope=checked.scope,
                user=user,
                sid=secrets.token_urlsafe(16),
            )
        )
        return _redirect(
            respond(checked.redirect_uri, state=checked.state, issuer=self._url, code=code)
        )

    def _check_request(self, params: Mapping[str, str]) -> AuthorizationRequest | web.Response:
        try:
            return parse_authorization_request(params, self._clients)
        except UnsafeRedirect as error:
            return message_page(status=400, heading="Invalid sign-in request", message=str(error))
        except AuthorizationError as error:
            return _redirect(error.location(self._url))

    async def _userinfo(self, request: web.Request) -> web.Response:
        """OIDC Core 5.3: the claims of the user an access token with scope openid names."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = None
        if scheme.lower() == "bearer" and token:
            try:
                claims = self._mint.verify_access_token(token)
            except JoseError:
                claims = {}
            if "openid" in str(claims.get("scope", "")).split():
                user = self._users_by_name.get(claims["sub"])
        if user is None:
            # RFC 6750 3.1: invalid_token "The resource SHOULD respond with the HTTP 401".
            return web.json_response(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return web.json_response(user_claims(user), headers={"Cache-Control": "no-store"})

    async def _end_session(self, request: web.Request) -> web.Response:
        """RP-Initiated Logout 1.0: end the sign-in the hint names, then return to the client only
        at a post_logout_redirect_uri registered for it."""
        params = _strings(request.query if request.method == "GET" else await request.post())
        client = self._clients.get(params.get("client_id", ""))
        if "client_id" in params and client is None:
            return _logout_refused("unknown client_id")
        hint = params.get("id_token_hint")
        if hint is not None:
            # 2: "The OP MUST validate that it was the issuer of the ID Token."
            try:
                claims = self._mint.verify_id_token_hint(hint)
            except JoseError:
                return _logout_refused("id_token_hint is not an ID token of this issuer")
            hinted = self._clients.get(str(claims.get("aud")))
            # 2: "When both client_id and id_token_hint are present, the OP MUST verify that the
            # Client Identifier matches the one used when issuing the ID Token."
            if hinted is None or client not in (None, hinted):
                return _logout_refused("client_id does not match the id_token_hint")
            client = hinted
            ended = self._grants.end_session(str(claims.get("sid")))
            _log.info("demo issuer: %s signed out, %d refresh tokens revoked", claims["sub"], ended)
        target = params.get("post_logout_redirect_uri")
        if target is None:
            return message_page(
                status=200, heading="Signed out", message="You are signed out of the demo issuer."
            )
        # 3: "The value MUST have been previously registered with the OP", compared exactly.
        if client is None or target not in client.post_logout_redirect_uris:
            return _logout_refused("post_logout_redirect_uri is not registered for this client")
        location = URL(target)
        if "state" in params:
            location = location.extend_query(state=params["state"])
        return _redirect(str(location))


def _strings(source: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a query or form (a form's file uploads are not parameters)."""
    return {name: value for name, value in source.items() if isinstance(value, str)}


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _logout_refused(why: str) -> web.Response:
    return message_page(status=400, heading="Sign-out refused", message=f"{why}.")
