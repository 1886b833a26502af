"""The benchmark's token issuer: one RSA key, its JWKS document, and RS256 access tokens.

Tokens carry what a provider's access token carries for a service (iss, aud, sub, groups, exp,
iat, jti), signed with RS256 as most providers do. Thousands of distinct tokens are minted across
every core before the clock starts, so minting never competes with a server under test.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GROUP: Final = "engineering"
"""The group the benchmark route allows."""
OTHER_GROUP: Final = "contractors"
TOKEN_LIFETIME_SECONDS: Final = 6 * 3600


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    issuer: str
    audience: str
    kid: str = "bench-1"
    key: rsa.RSAPrivateKey = field(default_factory=_new_key, repr=False)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid}
        return {"keys": [jwk | {"n": _b64(numbers.n), "e": _b64(numbers.e)}]}

    def claims(self, subject: str, **overrides: Any) -> dict[str, Any]:
        """Valid claims for `subject`; an override of None leaves that claim out."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "groups": [GROUP],
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        claims |= overrides
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: Mapping[str, Any], *, key: rsa.RSAPrivateKey | None = None) -> str:
        return jwt.encode(
            dict(claims), key or self.key, algorithm="RS256", headers={"kid": self.kid}
        )

    def token(self, subject: str = "bench-user", **overrides: Any) -> str:
        return self.sign(self.claims(subject, **overrides))

    def unsigned(self, subject: str = "bench-user") -> str:
        """The same claims under `alg: none`: every server must refuse it."""
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        parts = [json.dumps(part).encode() for part in (header, self.claims(subject))]
        return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts) + "."

    def mint_many(self, count: int, *, prefix: str, processes: int) -> list[str]:
        """`count` distinct valid tokens (subjects `{prefix}-{n}`), minted on `processes` cores."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        batches = [range(start, count, processes) for start in range(processes)]
        with ProcessPoolExecutor(processes) as pool:
            minted = pool.map(
                _mint_batch,
                [pem] * processes,
                [self.claims("template")] * processes,
                [self.kid] * processes,
                [prefix] * processes,
                batches,
            )
            return [token for batch in minted for token in batch]


def _mint_batch(
    pem: bytes, template: Mapping[str, Any], kid: str, prefix: str, numbers: Sequence[int]
) -> list[str]:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    headers = {"kid": kid}
    return [
        jwt.encode(
            {**template, "sub": f"{prefix}-{n}", "jti": uuid.uuid4().hex},
            key,
            algorithm="RS256",
            headers=headers,
        )
        for n in numbers
    ]
