"""An in-process OpenID provider for tests, and the keys and tokens tests sign with.

`await serve_issuer(aiohttp_server)` starts a provider on 127.0.0.1 (port 0) that serves discovery
and a JWKS; tests switch its published keys, take it down (503), or replace its documents, and
count what was fetched. Nothing here is used by idgate itself.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pytest_aiohttp import AiohttpServer

from proxy.oidc.discovery import WELL_KNOWN_PATH

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@functools.cache
def _private_key(kind: str, name: str) -> PrivateKey:
    """One private key per (kind, name), generated once per test run (RSA generation is slow)."""
    del name  # only part of the cache key
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


_KIND_OF_ALG = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """A provider signing key: the private half signs tokens, the public half goes in the JWKS."""

    kid: str | None
    alg: str = "RS256"
    publish_alg: bool = True
    """Whether the published JWK names its `alg` (without it, the key type decides)."""

    @property
    def private_key(self) -> PrivateKey:
        return _private_key(_KIND_OF_ALG[self.alg], self.kid or "")

    @property
    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        extra: dict[str, Any] = {"use": "sig"}
        if self.kid is not None:
            extra["kid"] = self.kid
        if self.publish_alg:
            extra["alg"] = self.alg
        return {**public, **extra}

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """A token with exactly these claims: unlike `jwt.encode`, nothing is checked or added."""
        all_headers = {"kid": self.kid} if self.kid is not None else {}
        return jwt.PyJWS().encode(
            json.dumps(claims).encode(),
            self.private_key,
            algorithm=self.alg,
            headers={**all_headers, **(headers or {})},
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with any header and signature, as an attacker may send (pyjwt would refuse)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(signature)}"


def forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token keyed with `secret`, e.g. the provider's public key (algorithm confusion)."""
    unsigned = forge(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(mac)}"


@dataclass(kw_only=True)
class FakeIssuer:
    """What the fake provider serves; mutate it between requests to change its behaviour."""

    path: str = ""
    """Path component of the issuer URL (`/realms/acme`), discovery lives beneath it."""
    keys: list[SigningKey] = field(default_factory=list)
    extra_jwks: list[Any] = field(default_factory=list)
    """Raw JWKS entries published after `keys` (symmetric, encryption, broken ones)."""
    discovery_overrides: dict[str, Any] = field(default_factory=dict)
    discovery_body: bytes | None = None
    """Served verbatim instead of the discovery document."""
    stream_discovery: bool = False
    """Send `discovery_body` chunked, without a Content-Length."""
    down: bool = False
    """Answer 503 to everything."""
    hang: asyncio.Event | None = None
    """When set, discovery waits for this event before answering."""
    url: str = ""
    discovery_fetches: int = 0
    jwks_fetches: int = 0
    _fetched: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.path + WELL_KNOWN_PATH, self._discovery)
        app.router.add_get(self.path + "/jwks", self._jwks)
        return app

    @property
    def jwks_uri(self) -> str:
        return self.url + "/jwks"

    async def wait_for_jwks_fetches(self, count: int) -> None:
        async with self._fetched:
            await self._fetched.wait_for(lambda: self.jwks_fetches >= count)

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        self.discovery_fetches += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.down:
            return web.Response(status=503, text="provider-down-body")
        if self.discovery_body is not None:
            return await self._raw(request, self.discovery_body)
        document = {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.discovery_overrides,
        }
        return web.json_response(document)

    async def _raw(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if not self.stream_discovery:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 1 << 16):
            await response.write(body[start : start + (1 << 16)])
        await response.write_eof()
        return response

    async def _jwks(self, request: web.Request) -> web.Response:
        del request
        async with self._fetched:
            self.jwks_fetches += 1
            self._fetched.notify_all()
        if self.down:
            return web.Response(status=503, text="provider-down-body")
        return web.json_response({"keys": [key.jwk for key in self.keys] + self.extra_jwks})


async def serve_issuer(
    aiohttp_server: AiohttpServer, issuer: FakeIssuer | None = None
) -> FakeIssuer:
    """Start `issuer` (default: one RS256 key `k1`) on an ephemeral port; the fixture stops it."""
    issuer = issuer if issuer is not None else FakeIssuer(keys=[SigningKey(kid="k1")])
    server = await aiohttp_server(issuer.app())
    issuer.url = f"http://{server.host}:{server.port}{issuer.path}"
    return issuer


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
