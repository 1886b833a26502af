"""The dev issuer's token endpoint (RFC 6749 3.2): authorization_code with PKCE, refresh_token
and client_credentials. Every client authenticates with client_secret_basic."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

from aiohttp import web

from proxy.demo.directory import DemoClient
from proxy.demo.grants import Grants, RefreshGrant, pkce_matches
from proxy.demo.tokens import TokenMint, user_claims

USER_TOKEN_SECONDS: Final = 600
SERVICE_TOKEN_SECONDS: Final = 3600
SERVICE_SCOPE: Final = "api"
_MAX_FORM_BYTES: Final = 16 * 1024

_log = logging.getLogger("idgate.demo.issuer")


def oauth_error(error: str, description: str, *, status: int = 400) -> web.Response:
    """RFC 6749 5.2: a JSON object with `error` and a human-readable `error_description`."""
    response = web.json_response({"error": error, "error_description": description}, status=status)
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        # RFC 6749 5.2 invalid_client: the server "MUST include the WWW-Authenticate response
        # header field indicating the supported HTTP authentication scheme".
        response.headers["WWW-Authenticate"] = 'Basic realm="idgate demo issuer"'
    return response


class TokenEndpoint:
    def __init__(
        self,
        *,
        mint: TokenMint,
        grants: Grants,
        clients: Mapping[str, DemoClient],
        audiences: tuple[str, ...],
    ) -> None:
        """`audiences`: the `aud` of every access token (the demo API)."""
        self._mint = mint
        self._grants = grants
        self._clients = clients
        self._audiences = audiences

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is None or request.content_length > _MAX_FORM_BYTES:
            return oauth_error("invalid_request", "send a form body of at most 16 KiB")
        form = await request.post()
        params = {name: value for name, value in form.items() if isinstance(value, str)}
        client = self._authenticate(request.headers.get("Authorization", ""))
        if client is None:
            return oauth_error("invalid_client", "client_secret_basic failed", status=401)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._authorization_code(client, params)
        if grant_type == "refresh_token":
            return self._refresh_token(client, params)
        if grant_type == "client_credentials":
            return self._client_credentials(client)
        return oauth_error(
            "unsupported_grant_type", "use authorization_code, refresh_token or client_credentials"
        )

    def _authenticate(self, authorization: str) -> DemoClient | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        # RFC 6749 2.3.1: the client identifier and password are each form-urlencoded, then used
        # as the Basic username and password.
        user, _, password = decoded.partition(":")
        client = self._clients.get(unquote_plus(user))
        if client is None or not hmac.compare_digest(
            unquote_plus(password).encode(), client.secret.encode()
        ):
            return None
        return client

    def _authorization_code(self, client: DemoClient, params: Mapping[str, str]) -> web.Response:
        grant = self._grants.redeem_code(params.get("code", ""))
        # RFC 6749 4.1.3: the server MUST "ensure that the authorization code was issued to the
        # authenticated confidential client" and that redirect_uri is "identical" to the one of
        # the authorization request; RFC 7636 4.6 adds the code_verifier check.
        if (
            grant is None
            or grant.client_id != client.client_id
            or params.get("redirect_uri") != grant.redirect_uri
            or not pkce_matches(params.get("code_verifier", ""), grant.code_challenge)
        ):
            return oauth_error("invalid_grant", "unknown, used, expired or mismatched code")
        refresh = RefreshGrant(
            client_id=client.client_id, scope=grant.scope, user=grant.user, sid=grant.sid
        )
        _log.info("demo issuer: %s signed in to %s", grant.user.username, client.client_id)
        return self._user_tokens(refresh, nonce=grant.nonce)

    def _refresh_token(self, client: DemoClient, params: Mapping[str, str]) -> web.Response:
        grant = self._grants.redeem_refresh_token(params.get("refresh_token", ""))
        # RFC 6749 6: the server MUST "validate the refresh token" and that it "was issued to the
        # authenticated client".
        if grant is None or grant.client_id != client.client_id:
            return oauth_error("invalid_grant", "unknown, used, revoked or mismatched token")
        return self._user_tokens(grant, nonce=None)

    def _client_credentials(self, client: DemoClient) -> web.Response:
        if not client.client_credentials:
            return oauth_error("unauthorized_client", "this client may not use client_credentials")
        access_token = self._mint.access_token(
            subject=client.client_id,
            client_id=client.client_id,
            audiences=self._audiences,
            scope=SERVICE_SCOPE,
            lifetime=SERVICE_TOKEN_SECONDS,
            claims={"groups": list(client.service_groups)},
        )
        return _tokens(
            {
                "access_token": access_token,
                "expires_in": SERVICE_TOKEN_SECONDS,
                "scope": SERVICE_SCOPE,
            }
        )

    def _user_tokens(self, grant: RefreshGrant, *, nonce: str | None) -> web.Response:
        """Access, ID and (rotated) refresh token for the grant's user and sign-in."""
        user = grant.user
        profile = {name: value for name, value in user_claims(user).items() if name != "sub"}
        access_token = self._mint.access_token(
            subject=user.username,
            client_id=grant.client_id,
            audiences=self._audiences,
            scope=grant.scope,
            lifetime=USER_TOKEN_SECONDS,
            claims=profile,
        )
        id_token = self._mint.id_token(
            user=user,
            client_id=grant.client_id,
            nonce=nonce,
            sid=grant.sid,
            lifetime=USER_TOKEN_SECONDS,
        )
        return _tokens(
            {
                "access_token": access_token,
                "expires_in": USER_TOKEN_SECONDS,
                "scope": grant.scope,
                "id_token": id_token,
                "refresh_token": self._grants.issue_refresh_token(grant),
            }
        )


def _tokens(body: dict[str, Any]) -> web.Response:
    # RFC 6749 5.1: "The authorization server MUST include the HTTP "Cache-Control" response
    # header field [RFC2616] with a value of "no-store" in any response containing tokens".
    response = web.json_response({"token_type": "Bearer", **body})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
