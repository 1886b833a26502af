"""The signed identity assertion (`X-Authenticated-Assertion`) and the keys that verify it.

SPEC: "a short-lived JWT signed by idgate (its keys at `/oauth2/jwks`) that names the user, groups,
audience = the route". The ES256 keys are derived from the session secrets, so every worker and
every replica sharing the config signs and publishes the same keys with no key file, and rotating
the session secret rotates them. The newest secret signs; the older ones stay published so
assertions signed just before a rotation still verify.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey
from joserfc.util import urlsafe_b64encode

from proxy.config.model import Route, Secret
from proxy.identity.principal import CredentialSource, Principal
from proxy.keyderive import derive_key

ALGORITHM: Final = "ES256"
_HKDF_INFO: Final = b"idgate assertion signing key v1"
#: Order n of the P-256 base point (SEC 2, secp256r1).
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: FIPS 186-4 B.4.1 ("Key Pair Generation Using Extra Random Bits"): take N + 64 bits, then
#: d = (c mod (n - 1)) + 1, which keeps the bias towards small scalars below 2**-64.
_SCALAR_BYTES: Final = (256 + 64) // 8
#: An assertion is re-signed once this share of its lifetime has passed (less than 60% left).
_REUSE_SHARE: Final = 0.4
#: Assertions kept for reuse (identity and route); past it the least recently used goes.
_CACHE_SIZE: Final = 10_000
#: Compact JSON as RFC 7515 serialises it; one encoder, since json.dumps builds a new one for
#: every call with options.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: RFC 7518 3.4: "ECDSA using P-256 and SHA-256"; the object holds no state, so one serves all.
_ES256: Final = ec.ECDSA(hashes.SHA256())
#: RFC 7518 3.4: R and S each as a 32-byte big-endian octet sequence for P-256.
_P256_INTEGER_BYTES: Final = 32

_CacheKey = tuple[str, str | None, frozenset[str], CredentialSource, str | None, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Signed:
    token: str
    expires_at: int
    reuse_until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class _SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    jwk: dict[str, Any]
    header_segment: bytes
    """The encoded protected header (RFC 7515 7.1), the same for every assertion of this key."""


def _signing_key(secret: Secret) -> _SigningKey:
    material = derive_key(secret, _HKDF_INFO, _SCALAR_BYTES)
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    jwk = ECKey.import_key(private)
    # RFC 7638: the SHA-256 thumbprint of the public key names it.
    kid = jwk.thumbprint()
    public = jwk.as_dict(private=False)
    return _SigningKey(
        kid=kid,
        private=private,
        jwk={**public, "kid": kid, "alg": ALGORITHM, "use": "sig"},
        header_segment=_segment({"typ": "JWT", "alg": ALGORITHM, "kid": kid}),
    )


def _segment(value: dict[str, Any]) -> bytes:
    return urlsafe_b64encode(_JSON.encode(value).encode())


class AssertionSigner:
    """Signs assertions with the newest secret's key; publishes every secret's public key."""

    def __init__(
        self,
        secrets: Sequence[Secret],
        *,
        issuer: str,
        lifetime_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one session secret is needed to sign assertions")
        if lifetime_seconds <= 0:
            raise ValueError("assertion lifetime must be positive")
        keys = {key.kid: key for key in map(_signing_key, secrets)}
        self._current = next(iter(keys.values()))
        self._jwks: dict[str, Any] = {"keys": [key.jwk for key in keys.values()]}
        self._issuer = issuer
        self._lifetime = lifetime_seconds
        self._clock = clock
        # Each entry says itself until when it may be reused: one past it is signed anew on its
        # next use, and one never asked for again is pushed out by the bound.
        self._cache: OrderedDict[_CacheKey, _Signed] = OrderedDict()

    def jwks(self) -> dict[str, Any]:
        """The JWK Set for `/oauth2/jwks`: public parts only, newest key first. Do not mutate."""
        return self._jwks

    def sign(self, principal: Principal, route: Route) -> str:
        """An assertion for this identity at this route, reused for the first part of its life."""
        key: _CacheKey = (
            principal.user,
            principal.email,
            principal.groups,
            principal.source,
            principal.issuer,
            route.name,
        )
        now = self._clock()
        cached = self._cache.get(key)
        if (
            cached is not None
            and now < cached.reuse_until
            and cached.expires_at <= principal.expires_at
        ):
            self._cache.move_to_end(key)
            return cached.token
        issued_at = int(now)
        expires_at = int(min(issued_at + self._lifetime, principal.expires_at))
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": route.name,
            "sub": principal.user,
            "groups": sorted(principal.groups),
            "iat": issued_at,
            "exp": expires_at,
            "idgate_src": principal.source.value,
        }
        if principal.email is not None:
            claims["email"] = principal.email
        if principal.issuer is not None:
            claims["idgate_issuer"] = principal.issuer
        token = _compact_jws(self._current, claims)
        self._cache[key] = _Signed(
            token=token,
            expires_at=expires_at,
            reuse_until=issued_at + (expires_at - issued_at) * _REUSE_SHARE,
        )
        self._cache.move_to_end(key)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return token


def _compact_jws(key: _SigningKey, claims: dict[str, Any]) -> str:
    """RFC 7515 7.1 compact serialization, signed with ES256 (RFC 7518 3.4).

    Built here rather than by `jwt.encode`: the header never changes, and joserfc's generic path
    (header checks, key lookup, claim conversion, and in its ES256 the key's wrapping and the
    signature's re-encoding through hex) cost as much again as the signature itself, on every new
    identity's first request. pyjwt verifies these assertions in the tests.
    """
    signing_input = key.header_segment + b"." + _segment(claims)
    r, s = decode_dss_signature(key.private.sign(signing_input, _ES256))
    # RFC 7518 3.4: "the JWS Signature value [is] the concatenation of the two octet sequences
    # [R || S]", each "a 32-octet sequence" for ES256, in big-endian order.
    signature = r.to_bytes(_P256_INTEGER_BYTES, "big") + s.to_bytes(_P256_INTEGER_BYTES, "big")
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")
