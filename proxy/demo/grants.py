"""What the dev issuer remembers between requests: one-time codes and refresh tokens, in memory.

Codes live a minute and are taken out when redeemed, so a second redemption finds nothing.
Refresh tokens rotate: each use returns a new one and retires the old (RFC 9700 4.14.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from cachetools import TTLCache

from proxy.demo.directory import DemoUser

# RFC 6749 4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
CODE_SECONDS: Final = 60
REFRESH_SECONDS: Final = 12 * 3600
_MAX_GRANTS: Final = 100_000
# RFC 7636 4.1: code-verifier = 43*128unreserved; unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeGrant:
    """What an authorization code was issued for: the code is worth nothing to anyone else."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    user: DemoUser
    sid: str
    """The sign-in's session id at the issuer (ID token `sid`); logout ends it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshGrant:
    client_id: str
    scope: str
    user: DemoUser
    sid: str


class Grants:
    def __init__(self) -> None:
        self._codes: TTLCache[str, CodeGrant] = TTLCache(maxsize=_MAX_GRANTS, ttl=CODE_SECONDS)
        self._refresh: TTLCache[str, RefreshGrant] = TTLCache(
            maxsize=_MAX_GRANTS, ttl=REFRESH_SECONDS
        )

    def issue_code(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(32)
        self._codes[code] = grant
        return code

    def redeem_code(self, code: str) -> CodeGrant | None:
        """The code's grant, at most once (RFC 6749 4.1.2: "The client MUST NOT use the
        authorization code more than once")."""
        return self._codes.pop(code, None)

    def issue_refresh_token(self, grant: RefreshGrant) -> str:
        token = secrets.token_urlsafe(32)
        self._refresh[token] = grant
        return token

    def redeem_refresh_token(self, token: str) -> RefreshGrant | None:
        """The token's grant, at most once: the caller issues the replacement."""
        return self._refresh.pop(token, None)

    def end_session(self, sid: str) -> int:
        """Revoke every refresh token of one sign-in; how many there were."""
        ended = [token for token, grant in self._refresh.items() if grant.sid == sid]
        for token in ended:
            del self._refresh[token]
        return len(ended)


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge."""
    if not _VERIFIER.match(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=")
    return hmac.compare_digest(computed, challenge.encode("ascii"))
