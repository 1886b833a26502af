"""The dev issuer's signing key and the JWTs it signs: access tokens, ID tokens, and their check.

The ES256 key is generated in memory at every start and never written anywhere, so every token
of a demo run is worthless once the demo stops.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import InvalidHeaderValueError
from joserfc.jwk import ECKey

from proxy.demo.directory import DemoUser

ALGORITHM: Final = "ES256"
_REGISTRY: Final = jws.JWSRegistry(algorithms=[ALGORITHM])


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
        self._key = ECKey.generate_key("P-256")
        # RFC 7638: the SHA-256 thumbprint of the public key names it.
        self._kid = self._key.thumbprint()
        public = self._key.as_dict(private=False)
        self._jwks = {"keys": [{**public, "kid": self._kid, "alg": ALGORITHM, "use": "sig"}]}
        self._live = _issued_by(issuer, jwt.JWTClaimsRegistry)
        self._any_age = _issued_by(issuer, _AnyExpiry)

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
        """The claims of a live access token this issuer signed; JoseError otherwise."""
        verified = self._verify_signature(token)
        if verified.header.get("typ") != "at+jwt":
            raise InvalidHeaderValueError("not an access token")
        self._live.validate(verified.claims)
        return verified.claims

    def verify_id_token_hint(self, token: str) -> dict[str, Any]:
        """The claims of an ID token this issuer signed, expired or not; JoseError otherwise.

        RP-Initiated Logout 1.0 2: "The OP SHOULD accept ID Tokens when the RP identified by the
        ID Token's aud claim and/or sid claim has a current session or had a recent session at the
        OP, even when the exp time has passed."
        """
        verified = self._verify_signature(token)
        self._any_age.validate(verified.claims)
        return verified.claims

    def _sign(self, payload: dict[str, Any], *, typ: str) -> str:
        header = {"alg": ALGORITHM, "kid": self._kid, "typ": typ}
        return jwt.encode(header, payload, self._key, registry=_REGISTRY)

    def _verify_signature(self, token: str) -> jwt.Token:
        """The header and claims of a token this key signed; JoseError otherwise."""
        return jwt.decode(token, self._key, registry=_REGISTRY)


def _issued_by(issuer: str, registry: type[jwt.JWTClaimsRegistry]) -> jwt.JWTClaimsRegistry:
    """`iss` is `issuer`; `sub`, `exp` and `iat` are present. No `aud`: only this issuer's own
    endpoints check its tokens, so whatever the audience, the token is theirs to accept."""
    present: jwt.ClaimsOption = {"essential": True}
    return registry(iss={"essential": True, "value": issuer}, sub=present, exp=present, iat=present)


class _AnyExpiry(jwt.JWTClaimsRegistry):
    """`exp` must be present (it is essential) but may have passed."""

    def validate_exp(self, value: object) -> None:
        del value
