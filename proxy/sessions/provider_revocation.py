"""Sign-out revokes the session's tokens at the provider (RFC 7009), best effort.

Without it a signed-out session's refresh token stays good at the provider until it expires: a
copy of it (a stolen cookie, a Redis dump) keeps minting access tokens. By the time this runs the
session is already gone from idgate, so a failure only leaves the provider's grant alive: it is
logged (the reason, never a token), counted in `idgate_token_revocations_total{result}`, and the
sign-out goes on. Both tokens go out at once, so the wait is at most one `oidc.http_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Final

from proxy.observability.metrics import Metrics
from proxy.oidc.flow import CodeFlow, FlowError, FlowFailure, TokenKind
from proxy.sessions.model import SessionRecord

_log = logging.getLogger("idgate.logout")


class RevocationResult(StrEnum):
    """The `result` label of `idgate_token_revocations_total`, one per token."""

    REVOKED = "revoked"
    """The provider answered 200: revoked, or a token it no longer knew (RFC 7009 2.2)."""
    UNSUPPORTED = "unsupported"
    """The provider's metadata has no `revocation_endpoint`: the token lives on until it expires."""
    REFUSED = "refused"
    """An error answer (RFC 7009 2.2.1), or an answer that is not one the protocol allows."""
    UNAVAILABLE = "unavailable"
    """Unreachable, slower than `oidc.http_timeout`, a 5xx, or no provider metadata loaded."""


_RESULT_OF: Final = {
    FlowFailure.UNSUPPORTED: RevocationResult.UNSUPPORTED,
    FlowFailure.PROVIDER_UNAVAILABLE: RevocationResult.UNAVAILABLE,
}


async def revoke_session_tokens(
    flow: CodeFlow | None, record: SessionRecord, *, metrics: Metrics
) -> None:
    """Revoke the refresh and access tokens of an ended session; never raises a FlowError.

    `flow` is None when the provider's metadata is not loaded (nothing can be revoked then).
    """
    # RFC 7009 2.1: "If the particular token is a refresh token and the authorization server
    # supports the revocation of access tokens, then the authorization server SHOULD also
    # invalidate all access tokens based on the same authorization grant". Not every provider
    # does, so the access token is revoked on its own too.
    tokens = [
        (kind, token)
        for kind, token in (
            (TokenKind.REFRESH_TOKEN, record.refresh_token),
            (TokenKind.ACCESS_TOKEN, record.access_token),
        )
        if token
    ]
    if flow is None:
        results = [RevocationResult.UNAVAILABLE for _ in tokens]
        if tokens:
            _log.warning("session tokens not revoked: the provider's metadata is not loaded")
    else:
        results = await asyncio.gather(*(_revoke(flow, token, kind) for kind, token in tokens))
    for result in results:
        metrics.token_revocations.labels(result=result.value).inc()


async def _revoke(flow: CodeFlow, token: str, kind: TokenKind) -> RevocationResult:
    try:
        await flow.revoke(token, kind=kind)
    except FlowError as error:
        result = _RESULT_OF.get(error.error, RevocationResult.REFUSED)
        # A provider without the endpoint is configuration, counted but not worth a line each.
        if result is not RevocationResult.UNSUPPORTED:
            # FlowError messages name the endpoint and an error code, never a token.
            _log.warning("revoking the session's %s at the provider failed: %s", kind, error)
        return result
    return RevocationResult.REVOKED
