"""The dev issuer's signing key and the JWTs it signs: access tokens, ID tokens, and their check.

The ES256 key is generated in memory at every start and never written anywhere, so every token
of a demo run is worthless once the demo stops.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.demo.directory import DemoUser

ALGORITHM: Final = "ES256"
_REQUIRED: Final = ("iss", "sub", "exp", "iat")


def user_claims(user: DemoUser) -> dict[str, Any]:
    """The profile claims of `user`, as ID tokens, access tokens and userinfo carry them."""
    return {
        "sub": user.username,
        "preferred_username": user.username,
        "name": user.name,
        "email": user.email,
        "email_verified": True,
        "groups": list(user.groups),
    }


class TokenMint:
    """Signs this run's tokens with one in-memory key; publishes the public half as a JWKS."""

    def __init__(self, *, issuer: str) -> None:
        self.issuer = issuer
        self._key = ec.generate_private_key(ec.SECP256R1())
        public: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        # RFC 7638 3: the required members in lexicographic order, no whitespace, SHA-256.
        members = {name: public[name] for name in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
        digest = hashlib.sha256(canonical).digest()
        self._kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        self._jwks = {"keys": [{**members, "kid": self._kid, "alg": ALGORITHM, "use": "sig"}]}

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def access_token(
        self,
        *,
        subject: str,
        client_id: str,
        audiences: tuple[str, ...],
        scope: str,
        lifetime: int,
        claims: dict[str, Any],
    ) -> str:
        """An RFC 9068 JWT access token: `claims` (profile, groups) beside the standard ones."""
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "sub": subject,
            "aud": list(audiences),
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        # RFC 9068 2.1: "Resource servers MUST verify that the typ header value is at+jwt".
        return self._sign(payload, typ="at+jwt")

    def id_token(
        self, *, user: DemoUser, client_id: str, nonce: str | None, sid: str, lifetime: int
    ) -> str:
        """An ID token for `client_id` (OIDC Core 2), with the sign-in's nonce and session id."""
        now = int(time.time())
        payload = {
            **user_claims(user),
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime,
            "sid": sid,
        }
        if nonce is not None:
            payload["nonce"] = nonce
        return self._sign(payload, typ="JWT")

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a live access token this issuer signed; PyJWTError otherwise."""
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            raise jwt.InvalidTokenError("not an access token")
        return self._decode(token, verify_exp=True)

    def verify_id_token_hint(self, token: str) -> dict[str, Any]:
        """The claims of an ID token this issuer signed, expired or not; PyJWTError otherwise.

        RP-Initiated Logout 1.0 2: "The OP SHOULD accept ID Tokens when the RP identified by the
        ID Token's aud claim and/or sid claim has a current session or had a recent session at the
        OP, even when the exp time has passed."
        """
        return self._decode(token, verify_exp=False)

    def _sign(self, payload: dict[str, Any], *, typ: str) -> str:
        return jwt.encode(
            payload, self._key, algorithm=ALGORITHM, headers={"kid": self._kid, "typ": typ}
        )

    def _decode(self, token: str, *, verify_exp: bool) -> dict[str, Any]:
        """Only this issuer's own endpoints call this: whatever the audience, the token is ours."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=[ALGORITHM],
            issuer=self.issuer,
            options={"require": list(_REQUIRED), "verify_aud": False, "verify_exp": verify_exp},
        )
        return claims
