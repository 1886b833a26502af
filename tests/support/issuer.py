"""An in-process OpenID provider for tests, and the keys and tokens tests sign with.

`await serve_issuer(aiohttp_server)` starts a provider on 127.0.0.1 (port 0) that serves discovery,
a JWKS, a token endpoint (authorization code with PKCE, refresh), userinfo and token revocation
(RFC 7009); tests switch its
published keys, take it down (503), replace its documents, revoke its refresh tokens, and count
what was fetched. `issuer.authorize(url)` plays the browser's visit to the authorization endpoint
and returns the code. Nothing here is used by idgate itself.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import JWKRegistry, Key
from pytest_aiohttp import AiohttpServer

from proxy.errors import InvalidToken
from proxy.oidc.discovery import WELL_KNOWN_PATH
from proxy.reasons import TokenFailure

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
    owner: str = ""
    """Keys of different owners are different keys even under one kid (two issuers' `k1`)."""

    @property
    def private_key(self) -> PrivateKey:
        return _private_key(_KIND_OF_ALG[self.alg], f"{self.owner}\0{self.kid or ''}")

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


@dataclass(frozen=True, slots=True)
class StaticKeys:
    """A KeySource over signing keys' public halves, for checks that need no JWKS fetch."""

    keys: tuple[SigningKey, ...]

    async def key_for(self, kid: str | None, alg: str) -> Key:
        for key in self.keys:
            if key.kid == kid and key.alg == alg:
                return JWKRegistry.import_key(key.jwk)
        raise InvalidToken(TokenFailure.UNKNOWN_KEY)


def s256(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), written out independently."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """What the authorization endpoint bound a code to."""

    redirect_uri: str
    code_challenge: str
    nonce: str | None


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
    client_id: str = "idgate"
    client_secret: str | None = None
    """With a secret, /token requires client_secret_basic (RFC 6749 2.3.1); without, `client_id`."""
    subject: str = "alice"
    userinfo_claims: dict[str, Any] = field(default_factory=dict)
    """Served by /userinfo beside `sub`."""
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    """Added to the ID token of every code exchange (`auth_time`, `acr`, `amr`...)."""
    token_body: bytes | None = None
    """Served verbatim (JSON, with `token_status`) by /token instead of tokens."""
    token_status: int = 200
    stream_token_body: bool = False
    """Send `token_body` chunked, without a Content-Length."""
    token_hang: asyncio.Event | None = None
    """When set, /token waits for this event before answering."""
    issue_refresh_tokens: bool = True
    """False: like a provider that grants no offline_access."""
    refresh_revoked: bool = False
    """Refuse every refresh token with `invalid_grant`."""
    rotate_refresh_tokens: bool = False
    """Answer a refresh with a new refresh token (and forget the old one)."""
    expires_in: Any = 300
    """`expires_in` of issued tokens, sent as is (None leaves it out)."""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    """Every /token form received, with its `Authorization` header under `authorization`."""
    issued_id_tokens: list[str] = field(default_factory=list)
    """Every ID token /token answered with, oldest first."""
    offer_revocation: bool = True
    """Advertise `revocation_endpoint` (/revoke) in discovery."""
    revocation_status: int = 200
    """Any other status answers /revoke with `revocation_body` and revokes nothing."""
    revocation_body: bytes = b""
    revocation_hang: asyncio.Event | None = None
    """When set, /revoke waits for this event before answering."""
    revocation_requests: list[dict[str, str]] = field(default_factory=list)
    """Every /revoke form received, with its `Authorization` header under `authorization`."""
    _grants: dict[str, Grant] = field(default_factory=dict)
    _refresh_tokens: set[str] = field(default_factory=set)
    _access_tokens: set[str] = field(default_factory=set)
    _fetched: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.path + WELL_KNOWN_PATH, self._discovery)
        app.router.add_get(self.path + "/jwks", self._jwks)
        app.router.add_post(self.path + "/token", self._token)
        app.router.add_get(self.path + "/userinfo", self._userinfo)
        app.router.add_post(self.path + "/revoke", self._revoke)
        return app

    def authorize(self, url: str) -> str:
        """The code the authorization endpoint would redirect back with, for this request URL."""
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == self.client_id
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self._grants[code] = Grant(
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            nonce=query.get("nonce"),
        )
        return code

    def id_token(self, **claims: Any) -> str:
        """An ID token for `subject` to `client_id`, signed with the first key; claims override."""
        now = int(time.time())
        base = {"iss": self.url, "aud": self.client_id, "sub": self.subject, "iat": now}
        merged = {**base, "exp": now + 300, **claims}
        return self.keys[0].sign(
            {name: value for name, value in merged.items() if value is not None}
        )

    def logout_token(self, *, sub: str, jti: str) -> str:
        """A back-channel logout token for `sub` to `client_id` (OIDC Back-Channel Logout 2.4)."""
        return self.keys[0].sign(
            {
                "iss": self.url,
                "aud": self.client_id,
                "iat": int(time.time()),
                "jti": jti,
                "sub": sub,
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            }
        )

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
            return await self._raw(request, self.discovery_body, stream=self.stream_discovery)
        document = {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "id_token_signing_alg_values_supported": ["RS256"],
            **({"revocation_endpoint": self.url + "/revoke"} if self.offer_revocation else {}),
            **self.discovery_overrides,
        }
        return web.json_response(document)

    async def _raw(
        self, request: web.Request, body: bytes, *, stream: bool, status: int = 200
    ) -> web.StreamResponse:
        if not stream:
            return web.Response(status=status, body=body, content_type="application/json")
        response = web.StreamResponse(status=status)
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

    async def _token(self, request: web.Request) -> web.StreamResponse:
        if self.token_hang is not None:
            await self.token_hang.wait()
        if self.down:
            return web.Response(status=503, text="provider-down-body")
        form = {name: str(value) for name, value in (await request.post()).items()}
        self.token_requests.append(
            {**form, "authorization": request.headers.get("Authorization", "")}
        )
        if self.token_body is not None:
            return await self._raw(
                request, self.token_body, stream=self.stream_token_body, status=self.token_status
            )
        if not self._client_authenticated(request, form):
            return _oauth_error("invalid_client", status=401)
        if form.get("grant_type") == "authorization_code":
            return self._exchange(form)
        if form.get("grant_type") == "refresh_token":
            return self._refresh(form)
        return _oauth_error("unsupported_grant_type")

    def _client_authenticated(self, request: web.Request, form: dict[str, str]) -> bool:
        authorization = request.headers.get("Authorization")
        if self.client_secret is None:
            return authorization is None and form.get("client_id") == self.client_id
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme != "Basic":
            return False
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return (unquote_plus(user), unquote_plus(password)) == (self.client_id, self.client_secret)

    def _exchange(self, form: dict[str, str]) -> web.Response:
        grant = self._grants.pop(form.get("code", ""), None)
        if (
            grant is None
            or form.get("redirect_uri") != grant.redirect_uri
            or s256(form.get("code_verifier", "")) != grant.code_challenge
        ):
            return _oauth_error("invalid_grant")
        refresh_token = secrets.token_urlsafe(16) if self.issue_refresh_tokens else None
        if refresh_token is not None:
            self._refresh_tokens.add(refresh_token)
        id_token = self.id_token(nonce=grant.nonce, **self.id_token_claims)
        self.issued_id_tokens.append(id_token)
        return self._tokens(refresh_token=refresh_token, id_token=id_token)

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is refused at userinfo from now on."""
        self._access_tokens.clear()

    def _refresh(self, form: dict[str, str]) -> web.Response:
        presented = form.get("refresh_token", "")
        if self.refresh_revoked or presented not in self._refresh_tokens:
            return _oauth_error("invalid_grant")
        if not self.rotate_refresh_tokens:
            return self._tokens(refresh_token=None, id_token=None)
        self._refresh_tokens.discard(presented)
        rotated = secrets.token_urlsafe(16)
        self._refresh_tokens.add(rotated)
        return self._tokens(refresh_token=rotated, id_token=None)

    def _tokens(self, *, refresh_token: str | None, id_token: str | None) -> web.Response:
        access_token = secrets.token_urlsafe(16)
        self._access_tokens.add(access_token)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh_token,
            "id_token": id_token,
        }
        present = {name: value for name, value in body.items() if value is not None}
        return web.json_response(present, headers={"Cache-Control": "no-store"})

    async def _revoke(self, request: web.Request) -> web.Response:
        if self.revocation_hang is not None:
            await self.revocation_hang.wait()
        form = {name: str(value) for name, value in (await request.post()).items()}
        self.revocation_requests.append(
            {**form, "authorization": request.headers.get("Authorization", "")}
        )
        if self.revocation_status != 200:
            return web.Response(
                status=self.revocation_status,
                body=self.revocation_body,
                content_type="application/json",
            )
        if not self._client_authenticated(request, form):
            return _oauth_error("invalid_client", status=401)
        # RFC 7009 2.2: 200 for a revoked token and for one the server does not know alike.
        self._refresh_tokens.discard(form.get("token", ""))
        self._access_tokens.discard(form.get("token", ""))
        return web.Response(status=200)

    @property
    def live_refresh_tokens(self) -> frozenset[str]:
        """The refresh tokens /token would still take (unless `refresh_revoked`)."""
        return frozenset(self._refresh_tokens)

    async def _userinfo(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._access_tokens:
            return web.Response(
                status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return web.json_response({"sub": self.subject, **self.userinfo_claims})


def _oauth_error(error: str, *, status: int = 400) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": "details-the-provider-wrote"}, status=status
    )


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
