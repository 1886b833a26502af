"""A stand-in for a Kubernetes API server, for the `kubernetes` issuer kind's tests.

No real cluster runs where these tests run (no kubelet, no etcd), so this plays the few parts of
the API server idgate talks to, as Kubernetes documents them: HTTPS with a certificate of its own
CA (the cluster CA a pod finds in ca.crt), service-account issuer discovery
(`/.well-known/openid-configuration`, `/openid/v1/jwks`) and TokenReview
(`/apis/authentication.k8s.io/v1/tokenreviews`). Every one of them answers only a caller that
presents, as a Bearer token, what the pod's token file holds at that moment: the test rotates the
file, and a caller still sending the old token gets 401 like from a real API server. It signs
projected service-account tokens with its own key, and its TokenReview refuses the tokens of
service accounts the test deletes.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.config.model import KubernetesSettings
from tests.support.certificates import CertificateAuthority
from tests.support.issuer import SigningKey

#: What a pod's own token is for: the API server.
API_AUDIENCE = "https://kubernetes.default.svc"


@dataclass(kw_only=True)
class StandInApiServer:
    """What the stand-in serves; mutate it between requests to change what it does."""

    directory: Path
    key: SigningKey = field(default_factory=lambda: SigningKey(kid="cluster-1", alg="RS256"))
    issuer: str = "https://kubernetes.default.svc.cluster.local"
    """The service-account issuer (`--service-account-issuer`), as discovery states it."""
    advertised_jwks_uri: str | None = None
    """Discovery's `jwks_uri` (`--service-account-jwks-uri`); default: its own /openid/v1/jwks."""
    down: bool = False
    """Answer everything 503, as an API server that lost etcd does."""
    redirect_to: str | None = None
    """Answer every authenticated request with a redirect there (a compromised or misbehaving
    API server sending the caller elsewhere)."""
    deleted: set[str] = field(default_factory=set)
    """Service accounts (`namespace/name`) deleted since their tokens were issued."""
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Authorization header) of every request, in order."""
    reviews: list[dict[str, Any]] = field(default_factory=list)
    """The `spec` of every TokenReview it answered."""
    ca: CertificateAuthority = field(
        default_factory=lambda: CertificateAuthority.create("cluster CA")
    )

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    def settings(self, **overrides: Any) -> KubernetesSettings:
        """The issuer's `kubernetes` block pointing at this stand-in."""
        given = {"ca_file": self.ca_file, "token_file": self.token_file, **overrides}
        return KubernetesSettings(api_server=self.url, **given)

    def service_account_token(
        self,
        namespace: str = "payments",
        name: str = "frontend",
        *,
        audience: str | list[str] = "idgate",
        lifetime: int = 600,
        **claims: Any,
    ) -> str:
        """A projected service-account token as the API server issues one (Kubernetes 1.21+)."""
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": [audience] if isinstance(audience, str) else audience,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": f"{name}-{secrets.token_hex(3)}", "uid": secrets.token_hex(8)},
                "serviceaccount": {"name": name, "uid": secrets.token_hex(8)},
            },
            **claims,
        }
        return self.key.sign(payload)

    def rotate_pod_token(self) -> str:
        """What the kubelet does: a new token for idgate's own pod, written over the old one."""
        token = self.service_account_token("idgate", "idgate", audience=API_AUDIENCE)
        self.token_file.write_text(token)
        return token

    def authorizations(self, path: str) -> list[str | None]:
        return [authorization for seen, authorization in self.requests if seen == path]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/openid/v1/jwks", self._jwks)
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self._token_review)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        self.requests.append((request.path, authorization))
        if self.down:
            return web.json_response({"kind": "Status", "code": 503}, status=503)
        if authorization != f"Bearer {self.token_file.read_text().strip()}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if self.redirect_to is not None:
            raise web.HTTPFound(self.redirect_to)
        response: web.StreamResponse = await handler(request)
        return response

    async def _discovery(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": self.advertised_jwks_uri or self.url + "/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        del request
        return web.json_response({"keys": [self.key.jwk]})

    async def _token_review(self, request: web.Request) -> web.Response:
        spec = (await request.json())["spec"]
        self.reviews.append(spec)
        return web.json_response(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": spec,
                "status": self._review(spec["token"], spec.get("audiences") or [API_AUDIENCE]),
            },
            status=201,
        )

    def _review(self, token: str, audiences: list[str]) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self.key.private_key.public_key(),
                algorithms=[self.key.alg],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            return {"authenticated": False, "error": "invalid bearer token"}
        scope = claims["kubernetes.io"]
        if f"{scope['namespace']}/{scope['serviceaccount']['name']}" in self.deleted:
            return {"authenticated": False, "error": "service account has been deleted"}
        matching = [audience for audience in audiences if audience in claims["aud"]]
        if not matching:
            return {"authenticated": False, "error": "token audiences are invalid"}
        return {
            "authenticated": True,
            "audiences": matching,
            "user": {"username": claims["sub"], "groups": ["system:serviceaccounts"]},
        }


@dataclass(kw_only=True)
class OtherOrigin:
    """Another origin (same host, another port) serving an empty JWKS at every path, recording
    the `Authorization` header of every request it gets."""

    url: str
    authorizations: list[str | None]


async def serve_other_origin(aiohttp_server: AiohttpServer) -> OtherOrigin:
    authorizations: list[str | None] = []

    async def jwks(request: web.Request) -> web.Response:
        authorizations.append(request.headers.get("Authorization"))
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", jwks)
    server = await aiohttp_server(app)
    return OtherOrigin(url=str(server.make_url("/openid/v1/jwks")), authorizations=authorizations)


@asynccontextmanager
async def serve_api_server(directory: Path) -> AsyncIterator[StandInApiServer]:
    """The stand-in on 127.0.0.1 (an ephemeral port) with a fresh pod token and CA file."""
    server = StandInApiServer(directory=directory)
    certificate = server.ca.issue(common_name="kube-apiserver", ips=("127.0.0.1",), server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate.write(directory, "apiserver"))
    server.ca_file.write_bytes(server.ca.root.pem)
    server.rotate_pod_token()
    runner = web.AppRunner(server.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    server.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()
