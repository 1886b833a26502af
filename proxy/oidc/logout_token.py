"""Logout tokens, checked as OpenID Connect Back-Channel Logout 1.0 section 2.6 requires.

A logout token is provider-signed like an ID token, but built so that neither can pass for the
other: it names an event instead of a nonce. A token is accepted once: its `jti` is remembered for
the replay window, and a token issued longer ago than that window is refused, so no replay can
outlive the memory of it. The memory is bounded; only provider-signed tokens ever enter it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cachetools import TTLCache

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.oidc.provider_jwt import KeySource, decode_provider_jwt
from proxy.reasons import TokenFailure

BACKCHANNEL_LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"

# RFC 8725 3.11 explicit typing: `logout+jwt` (Back-Channel Logout 2.4); providers that predate it
# send `JWT` or nothing. Anything else (`at+jwt`, ...) is another kind of token.
_ACCEPTED_TYPES: Final = frozenset({"logout+jwt", "jwt"})
_REQUIRED: Final = ("iat", "jti", "events")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutRequest:
    """Whose sessions to end: the provider session `sid`, or every session of the user `sub`."""

    sid: str | None
    sub: str | None


class LogoutTokenVerifier:
    """Provider-signed logout tokens to LogoutRequests, each accepted at most once."""

    def __init__(
        self,
        oidc: OIDCSettings,
        keys: KeySource,
        *,
        clock: Callable[[], float] = time.time,
        replay_window_seconds: float = 300.0,
        max_remembered: int = 10_000,
    ) -> None:
        """Tokens issued over `replay_window_seconds` ago (Unix time by `clock`) are refused."""
        self._oidc = oidc
        self._keys = keys
        self._clock = clock
        self._window = replay_window_seconds
        # A token issued up to `leeway` in the future stays acceptable that much longer.
        self._seen: TTLCache[str, bool] = TTLCache(
            max_remembered, replay_window_seconds + 2 * oidc.leeway_seconds, timer=clock
        )

    async def verify(self, token: str) -> LogoutRequest:
        """Whose sessions the token ends; raises InvalidToken (or ProviderUnavailable)."""
        # 2.6 (4): "Validate the iss, aud, iat, and exp Claims in the same way they are validated
        # in ID Tokens."
        claims = await decode_provider_jwt(
            token,
            oidc=self._oidc,
            keys=self._keys,
            audiences=(self._oidc.client_id,),
            required=_REQUIRED,
            check_header=_check_type,
        )
        request = _logout_request(claims)
        self._check_fresh(claims["iat"])
        self._check_first_use(claims["jti"])
        return request

    def _check_fresh(self, issued_at: float) -> None:
        if issued_at < self._clock() - self._window - self._oidc.leeway_seconds:
            raise InvalidToken(TokenFailure.EXPIRED, "logout token issued too long ago")

    def _check_first_use(self, jti: str) -> None:
        # 2.6 (8): "Optionally verify that another Logout Token with the same jti value has not
        # been recently received." Checked and recorded with no await in between: one task only.
        if jti in self._seen:
            raise InvalidToken(TokenFailure.REPLAYED, "logout token already used")
        self._seen[jti] = True


def _check_type(header: Mapping[str, Any]) -> None:
    typ = header.get("typ")
    if typ is None:
        return
    # RFC 7515 4.1.9: media types compare case-insensitively, with "application/" omittable.
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") not in _ACCEPTED_TYPES:
        raise InvalidToken(TokenFailure.MALFORMED, "not a logout token (typ)")


def _logout_request(claims: dict[str, Any]) -> LogoutRequest:
    # 2.6 (6): "Verify that the Logout Token contains an events Claim whose value is JSON object
    # containing the member name http://schemas.openid.net/event/backchannel-logout." 2.4: "The
    # corresponding member value MUST be a JSON object".
    events = claims["events"]
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise InvalidToken(TokenFailure.MALFORMED, "logout token has no back-channel logout event")
    # 2.6 (7): "Verify that the Logout Token does not contain a nonce Claim." (2.4: it is
    # prohibited "to prevent misuse of a Logout Token as an ID Token").
    if "nonce" in claims:
        raise InvalidToken(TokenFailure.MALFORMED, "logout token carries a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not isinstance(sid, str | None) or not isinstance(sub, str | None):
        raise InvalidToken(TokenFailure.MALFORMED, "logout token sid or sub is not a string")
    # 2.6 (5): "Verify that the Logout Token contains a sub Claim, a sid Claim, or both."
    if not sid and not sub:
        raise InvalidToken(TokenFailure.MISSING_CLAIM, "logout token names neither sid nor sub")
    return LogoutRequest(sid=sid or None, sub=sub or None)
