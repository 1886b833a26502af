"""The authorization code flow with PKCE (RFC 6749 4.1, RFC 7636), refresh, userinfo, logout URL
and token revocation (RFC 7009).

The only module that imports authlib, and only for protocol pieces (random values, the S256
challenge, URL and form encoding); HTTP goes through the shared aiohttp session. Whatever the
provider sends is untrusted: bodies are size-bounded before parsing and every failure becomes a
FlowError with a fixed code, whose message never quotes a body, a token or the client secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_qs, add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7009.parameters import prepare_revoke_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from proxy.config.model import OIDCSettings
from proxy.oidc.bounded import ResponseTooLarge, read_bounded
from proxy.oidc.client_auth import basic_authorization
from proxy.oidc.discovery import ProviderMetadata

MAX_RESPONSE_BYTES: Final = 1 << 18
# 43 characters of [A-Za-z0-9] carry 256 bits, double RFC 6749 10.10's floor of 128 for `state`.
_RANDOM_CHARS: Final = 43
# RFC 7636 4.1: code_verifier = high-entropy cryptographic random STRING ... "with a minimum
# length of 43 characters and a maximum length of 128 characters".
_VERIFIER_CHARS: Final = 64
#: Longer `expires_in` values (some 68 years) are no lifetime but a provider bug.
_MAX_EXPIRES_IN: Final = 1 << 31


class FlowFailure(StrEnum):
    """FlowError codes: RFC 6749 5.2 and RFC 6750 3.1 error codes, and idgate's own."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_SCOPE = "invalid_scope"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (an RFC 6750 error code, not a credential)
    """The userinfo endpoint refused the access token."""
    UNSUPPORTED_TOKEN_TYPE = "unsupported_token_type"  # noqa: S105 (an RFC 7009 error code)
    """The revocation endpoint does not revoke this kind of token."""
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    """Unreachable, too slow, or a 5xx."""
    INVALID_RESPONSE = "invalid_response"
    """An answer that is not what the protocol says: bad JSON, too large, unknown error code."""
    UNSUPPORTED = "unsupported"
    """The provider's metadata does not offer the endpoint this step needs."""


_TOKEN_ERRORS: Final = frozenset(
    {
        FlowFailure.INVALID_REQUEST,
        FlowFailure.INVALID_CLIENT,
        FlowFailure.INVALID_GRANT,
        FlowFailure.UNAUTHORIZED_CLIENT,
        FlowFailure.UNSUPPORTED_GRANT_TYPE,
        FlowFailure.INVALID_SCOPE,
    }
)
# RFC 7009 2.2.1: the error response is RFC 6749 5.2's, with one more code.
_REVOCATION_ERRORS: Final = _TOKEN_ERRORS | {FlowFailure.UNSUPPORTED_TOKEN_TYPE}


class TokenKind(StrEnum):
    """RFC 7009 2.1 `token_type_hint` values (RFC 7009 4.1.2)."""

    ACCESS_TOKEN = "access_token"  # noqa: S105 (a token type name, not a credential)
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a token type name, not a credential)


class FlowError(Exception):
    """A step of the flow failed; `error` is a FlowFailure, the message is safe to log."""

    def __init__(self, error: FlowFailure, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep (bound to it) until the callback."""

    url: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSet:
    """What the token endpoint issued; None for what it did not send."""

    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    expires_at: float | None
    """Unix time the access token expires, from `expires_in`."""


class CodeFlow:
    """The provider's authorization, token, userinfo, end-session and revocation endpoints, for
    one client."""

    def __init__(
        self,
        oidc: OIDCSettings,
        metadata: ProviderMetadata,
        http: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (Unix time) turns `expires_in` into `TokenSet.expires_at`."""
        self._oidc = oidc
        self._metadata = metadata
        self._http = http
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=oidc.http_timeout_seconds)

    def authorization_request(
        self,
        *,
        redirect_uri: str,
        max_age: int | None = None,
        acr_values: Sequence[str] = (),
    ) -> AuthorizationRequest:
        """A fresh sign-in: the authorization URL (code, PKCE S256), its state, nonce, verifier.

        `max_age` and `acr_values` (OIDC Core 3.1.2.1) ask for a recent or stronger sign-in; the
        user can edit them in the URL, so the ID token's `auth_time` and `acr` are what count.
        The same holds for `oidc.authorization_params` (Google's `hd` is a hint, not a check)."""
        endpoint = _required(self._metadata.authorization_endpoint, "authorization_endpoint")
        state, nonce = generate_token(_RANDOM_CHARS), generate_token(_RANDOM_CHARS)
        verifier = generate_token(_VERIFIER_CHARS)
        # The operator's `authorization_params` first, so a step-up's acr_values replaces theirs;
        # the config refuses every name idgate sets below.
        extra = dict(self._oidc.authorization_params)
        if acr_values:
            extra["acr_values"] = " ".join(acr_values)
        url: str = prepare_grant_uri(
            endpoint,
            self._oidc.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=list(self._oidc.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **({"prompt": " ".join(self._oidc.prompt)} if self._oidc.prompt else {}),
            **({"max_age": str(max_age)} if max_age is not None else {}),
            **extra,
        )
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def push_authorization_request(self, authorization: AuthorizationRequest) -> None:
        """Send `authorization`'s parameters to the PAR endpoint (RFC 9126 2.1) as the client;
        FlowError `unsupported` without the endpoint, a code (or `invalid_response`) for a
        refusal. RFC 9126 2.1: the server validates it "in the same way as at the authorization
        endpoint", so an answer proves the client's credentials and the redirect URI. Only
        `idgate check --online` uses it; sign-in sends the browser with the plain request."""
        endpoint = self._metadata.raw.get("pushed_authorization_request_endpoint")
        if not isinstance(endpoint, str):
            raise FlowError(
                FlowFailure.UNSUPPORTED,
                "the provider's metadata has no pushed_authorization_request_endpoint",
            )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        parameters = parse_qsl(urlsplit(authorization.url).query)
        self._authenticate(headers)  # a public client's client_id is among the parameters
        status, body = await self._send(
            "POST",
            endpoint,
            headers=headers,
            data=urlencode(parameters).encode("ascii"),
            what="PAR endpoint",
        )
        # RFC 9126 2.2: "the authorization server MUST respond with HTTP status code 201".
        if status != 201:
            raise _oauth_error(status, body, what="PAR endpoint", known=_TOKEN_ERRORS)

    async def exchange(self, code: str, *, code_verifier: str, redirect_uri: str) -> TokenSet:
        """The tokens for an authorization code (RFC 6749 4.1.3); the ID token is required."""
        document = await self._token_request(
            "authorization_code", code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        tokens = _token_set(document, now=self._clock(), kept_refresh_token=None)
        # OIDC Core 3.1.3.3: the successful Token Response of an authentication request carries
        # "id_token: ID Token value associated with the authenticated session."
        if tokens.id_token is None:
            raise FlowError(FlowFailure.INVALID_RESPONSE, "token response has no id_token")
        return tokens

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token (RFC 6749 6); FlowError `invalid_grant` once revoked.

        A response without a refresh token keeps the one presented: RFC 6749 6 lets the provider
        issue a new one ("MAY"), and when it does the old one "MUST" be discarded.
        """
        document = await self._token_request("refresh_token", refresh_token=refresh_token)
        return _token_set(document, now=self._clock(), kept_refresh_token=refresh_token)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims (OIDC Core 5.3) as a JSON object with a string `sub`.

        OIDC Core 5.3.4: that `sub` "MUST be verified to exactly match the sub Claim in the ID
        Token"; the caller holds the ID token and does so.
        """
        endpoint = _required(self._metadata.userinfo_endpoint, "userinfo_endpoint")
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        status, body = await self._send("GET", endpoint, headers=headers, what="userinfo")
        # RFC 6750 3.1: invalid_token "The resource SHOULD respond with the HTTP 401".
        if status == 401:
            raise FlowError(FlowFailure.INVALID_TOKEN, "userinfo refused the access token")
        if status != 200:
            raise FlowError(FlowFailure.INVALID_RESPONSE, f"userinfo answered HTTP {status}")
        claims = _json_object(body, "userinfo")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise FlowError(FlowFailure.INVALID_RESPONSE, "userinfo response has no sub")
        return claims

    def end_session_url(
        self, *, id_token_hint: str | None, post_logout_redirect_uri: str
    ) -> str | None:
        """The RP-Initiated Logout 1.0 URL, or None when the provider does not offer it."""
        endpoint = self._metadata.end_session_endpoint
        if endpoint is None:
            return None
        params = [
            ("id_token_hint", id_token_hint),
            ("client_id", self._oidc.client_id),
            ("post_logout_redirect_uri", post_logout_redirect_uri),
        ]
        url: str = add_params_to_uri(endpoint, [(k, v) for k, v in params if v is not None])
        return url

    async def revoke(self, token: str, *, kind: TokenKind) -> None:
        """Revoke `token` at the provider (RFC 7009 2.1); FlowError `unsupported` without the
        endpoint, `provider_unavailable` when unreachable or slow, a code for a refusal.

        The client authenticates as at the token endpoint: RFC 7009 2.1 "The client also includes
        its authentication credentials as described in Section 2.3. of [RFC6749]."
        """
        endpoint = _required(self._metadata.revocation_endpoint, "revocation_endpoint")
        headers = {"Accept": "application/json"}
        form, _ = prepare_revoke_token_request(token, kind.value, headers=headers)
        if self._authenticate(headers):
            form = add_params_to_qs(form, [("client_id", self._oidc.client_id)])
        status, body = await self._send(
            "POST", endpoint, headers=headers, data=form.encode("ascii"), what="revocation endpoint"
        )
        # RFC 7009 2.2: "The authorization server responds with HTTP status code 200 if the token
        # has been revoked successfully or if the client submitted an invalid token." The body is
        # of no interest.
        if status != 200:
            raise _oauth_error(status, body, what="revocation endpoint", known=_REVOCATION_ERRORS)

    def _authenticate(self, headers: dict[str, str]) -> bool:
        """Add client_secret_basic to `headers`; True for a public client, which must send its
        `client_id` in the form instead."""
        secret = self._oidc.client_secret
        if secret is None:
            return True
        headers["Authorization"] = basic_authorization(self._oidc.client_id, secret)
        return False

    async def _token_request(self, grant_type: str, **parameters: str) -> dict[str, Any]:
        endpoint = _required(self._metadata.token_endpoint, "token_endpoint")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if self._authenticate(headers):
            # RFC 6749 4.1.3: client_id "REQUIRED, if the client is not authenticating with the
            # authorization server"; PKCE is then what binds the code to this client.
            parameters["client_id"] = self._oidc.client_id
        form: str = prepare_token_request(grant_type, **parameters)
        status, body = await self._send(
            "POST", endpoint, headers=headers, data=form.encode("ascii"), what="token endpoint"
        )
        if status == 200:
            return _json_object(body, "token endpoint")
        raise _oauth_error(status, body, what="token endpoint", known=_TOKEN_ERRORS)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        what: str,
        data: bytes | None = None,
    ) -> tuple[int, bytes]:
        """The status and bounded body of one call; transport failures are provider_unavailable."""
        try:
            async with self._http.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                if response.status >= 500:
                    raise FlowError(
                        FlowFailure.PROVIDER_UNAVAILABLE, f"{what} answered HTTP {response.status}"
                    )
                return response.status, await _read_bounded(response, what)
        except TimeoutError as error:
            raise FlowError(
                FlowFailure.PROVIDER_UNAVAILABLE,
                f"{what} did not answer within {self._oidc.http_timeout_seconds:g}s",
            ) from error
        except aiohttp.ClientError as error:
            raise FlowError(
                FlowFailure.PROVIDER_UNAVAILABLE, f"{what} unreachable: {type(error).__name__}"
            ) from error


def _required(endpoint: str | None, name: str) -> str:
    if endpoint is None:
        raise FlowError(FlowFailure.UNSUPPORTED, f"the provider's metadata has no {name}")
    return endpoint


async def _read_bounded(response: aiohttp.ClientResponse, what: str) -> bytes:
    try:
        return await read_bounded(response, MAX_RESPONSE_BYTES)
    except ResponseTooLarge:
        raise FlowError(
            FlowFailure.INVALID_RESPONSE, f"{what} sent more than {MAX_RESPONSE_BYTES} bytes"
        ) from None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise FlowError(FlowFailure.INVALID_RESPONSE, f"{what} did not send JSON") from error
    if not isinstance(document, dict):
        raise FlowError(FlowFailure.INVALID_RESPONSE, f"{what} did not send a JSON object")
    return document


def _oauth_error(status: int, body: bytes, *, what: str, known: frozenset[str]) -> FlowError:
    # RFC 6749 5.2: the error response is a JSON object whose `error` is one of a fixed list;
    # only that code is kept (it may become a metric label), never `error_description`.
    try:
        code = _json_object(body, what).get("error")
    except FlowError:
        code = None
    if isinstance(code, str) and code in known:
        return FlowError(FlowFailure(code), f"{what} refused: {code}")
    return FlowError(
        FlowFailure.INVALID_RESPONSE, f"{what} answered HTTP {status} without a known error"
    )


def _token_set(
    document: Mapping[str, Any], *, now: float, kept_refresh_token: str | None
) -> TokenSet:
    return TokenSet(
        access_token=_token(document, "access_token"),
        refresh_token=_token(document, "refresh_token") or kept_refresh_token,
        id_token=_token(document, "id_token"),
        expires_at=_expires_at(document.get("expires_in"), now),
    )


def _token(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FlowError(FlowFailure.INVALID_RESPONSE, f"token response {name} is not a string")
    return value


def _expires_at(expires_in: Any, now: float) -> float | None:
    # RFC 6749 5.1: expires_in "The lifetime in seconds of the access token"; some providers send
    # it as a string of digits.
    if expires_in is None:
        return None
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise FlowError(FlowFailure.INVALID_RESPONSE, "token response expires_in is not seconds")
    if not 0 <= expires_in <= _MAX_EXPIRES_IN:
        raise FlowError(FlowFailure.INVALID_RESPONSE, "token response expires_in is not seconds")
    return now + expires_in
