"""The authorization request (RFC 6749 4.1.1 with RFC 7636 PKCE), checked before any sign-in.

Two kinds of refusal: a request that names no registered client and redirect URI is answered on
the issuer's own page, never redirected; any other problem goes back to the client's redirect URI
as an OAuth error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from yarl import URL

from proxy.demo.directory import DemoClient

# RFC 7636 4.2: the S256 challenge is BASE64URL(SHA256(verifier)): 43 characters, no padding.
_S256_CHALLENGE: Final = re.compile(r"[A-Za-z0-9_-]{43}\Z")


class UnsafeRedirect(Exception):
    """RFC 6749 4.1.2.1: with a missing, invalid or mismatching redirect URI or client, "the
    authorization server SHOULD inform the resource owner of the error and MUST NOT automatically
    redirect the user-agent to the invalid redirection URI"."""


class AuthorizationError(Exception):
    """An error the client hears about at its (registered) redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(
        self, error: str, description: str, *, redirect_uri: str, state: str | None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self, issuer: str) -> str:
        return respond(
            self.redirect_uri,
            state=self.state,
            issuer=issuer,
            error=self.error,
            error_description=self.description,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRequest:
    client: DemoClient
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str

    def form_fields(self) -> dict[str, str]:
        """The request as the sign-in form carries it back to POST /authorize."""
        fields = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


def parse_authorization_request(
    params: Mapping[str, str], clients: Mapping[str, DemoClient]
) -> AuthorizationRequest:
    """The checked request; UnsafeRedirect or AuthorizationError otherwise."""
    client = clients.get(params.get("client_id", ""))
    if client is None:
        raise UnsafeRedirect("unknown client_id")
    redirect_uri = params.get("redirect_uri", "")
    # Exact string comparison of registered URIs, as RFC 9700 2.1 requires ("the authorization
    # server MUST ensure that the two URIs are equal").
    if redirect_uri not in client.redirect_uris:
        raise UnsafeRedirect("redirect_uri is not registered for this client")
    state = params.get("state")

    def refuse(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(error, description, redirect_uri=redirect_uri, state=state)

    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    scope = params.get("scope", "")
    if "openid" not in scope.split():
        raise refuse("invalid_scope", "scope must include openid")
    # RFC 7636 4.4.1: "If the server requires Proof Key for Code Exchange (PKCE) by OAuth public
    # clients and the client does not send the "code_challenge" in the request, the authorization
    # endpoint MUST return the authorization error response with the "error" value set to
    # "invalid_request"." This issuer requires it of every client, and S256 only.
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not _S256_CHALLENGE.match(challenge):
        raise refuse("invalid_request", "PKCE with code_challenge_method=S256 is required")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=params.get("nonce"),
        code_challenge=challenge,
    )


def respond(redirect_uri: str, *, state: str | None, issuer: str, **params: str) -> str:
    """`redirect_uri` with the response parameters added to its query (RFC 6749 4.1.2), `state`
    echoed, and the issuer named (RFC 9207 2) so a client can tell which provider answered."""
    response = dict(params)
    if state is not None:
        response["state"] = state
    response["iss"] = issuer
    return str(URL(redirect_uri).extend_query(response))
