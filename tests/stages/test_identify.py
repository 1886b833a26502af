"""Identify through the whole app: client certificates, forwarded by a trusted proxy or presented
to idgate's own TLS listener, in their place between bearer tokens and sessions."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.config.model import (
    ClientCertificateSettings,
    ForwardedCertificateFormat,
    Policy,
    Route,
    Rule,
    TLSSettings,
)
from proxy.config.tls_context import server_context
from proxy.server.app import build_app
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey, serve_issuer
from tests.support.settings import make_settings, standard_routes
from tests.support.upstream import EchoUpstream, serve_echo

SPIFFE_ID = "spiffe://example.org/ns/prod/sa/invoicer"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
XFCC = ClientCertificateSettings(forwarded_header="X-Forwarded-Client-Cert")


def routes(upstream: str) -> tuple[Route, ...]:
    """The standard routes and /workloads: the invoicer by SPIFFE ID, or alice by bearer token."""
    workloads = Route(
        name="workloads",
        path="/workloads",
        upstream=upstream,
        policy=Policy(allow=Rule(spiffe_ids=frozenset({SPIFFE_ID}), users=frozenset({"alice"}))),
    )
    return (workloads, *standard_routes(upstream))


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture(scope="module")
def invoicer(ca: CertificateAuthority) -> Issued:
    return ca.issue(common_name="invoicer", uris=(SPIFFE_ID,))


@pytest.fixture
async def behind_proxy(aiohttp_server: AiohttpServer, start_gate: StartGate) -> Gate:
    """idgate whose peer (the test client on loopback) is a trusted proxy sending XFCC."""
    return await _gate(aiohttp_server, start_gate, trusted_proxies=LOOPBACK)


async def _gate(aiohttp_server: AiohttpServer, start_gate: StartGate, **overrides: Any) -> Gate:
    """A gate with the /workloads route, forwarding to an echo upstream of its own; XFCC unless
    `client_certificates` says otherwise."""
    upstream = await serve_echo(aiohttp_server)
    overrides.setdefault("client_certificates", XFCC)
    gate = await start_gate(routes=routes(upstream.url), **overrides)
    gate.upstream = upstream
    return gate


def xfcc(issued: Issued) -> dict[str, str]:
    return {"X-Forwarded-Client-Cert": f'Hash=0f1e;Cert="{issued.escaped_pem}"'}


async def test_forwarded_certificate_from_a_trusted_proxy_reaches_a_spiffe_route(
    behind_proxy: Gate, invoicer: Issued
) -> None:
    """The proxy's XFCC names the workload; its SPIFFE ID opens the route and is the user."""
    response = await behind_proxy.client.get("/workloads/invoices", headers=xfcc(invoicer))

    assert response.status == 200
    seen = behind_proxy.upstream.last()["headers"]
    assert isinstance(seen, dict)
    assert seen["x-authenticated-user"] == SPIFFE_ID


async def test_the_same_header_from_an_untrusted_peer_is_ignored(
    aiohttp_server: AiohttpServer, start_gate: StartGate, invoicer: Issued
) -> None:
    """Outside trusted_proxies the header identifies nobody: 401, the upstream is not called."""
    gate = await _gate(aiohttp_server, start_gate)

    response = await gate.client.get("/workloads/invoices", headers=xfcc(invoicer))

    assert response.status == 401
    assert gate.upstream.calls == 0


async def test_a_custom_header_name_from_an_untrusted_peer_is_ignored(
    aiohttp_server: AiohttpServer, start_gate: StartGate, invoicer: Issued
) -> None:
    """A header name accept does not know is still read only from trusted proxies."""
    custom = ClientCertificateSettings(
        forwarded_header="X-Workload-Cert", forwarded_format=ForwardedCertificateFormat.PEM
    )
    gate = await _gate(aiohttp_server, start_gate, client_certificates=custom)

    response = await gate.client.get(
        "/workloads/x", headers={"X-Workload-Cert": invoicer.escaped_pem}
    )

    assert response.status == 401


async def test_a_malformed_forwarded_header_is_a_bad_request(behind_proxy: Gate) -> None:
    """A header the proxy garbled is a 400 with no detail of the value, never a 500."""
    response = await behind_proxy.client.get(
        "/workloads/x", headers={"X-Forwarded-Client-Cert": 'Cert="-----BEGIN'}
    )

    assert response.status == 400
    assert (await response.json())["reason"] == "bad_request"
    assert behind_proxy.upstream.calls == 0


async def test_a_refused_certificate_is_not_rescued_by_falling_through(
    behind_proxy: Gate, ca: CertificateAuthority
) -> None:
    """A certificate naming two SPIFFE IDs is a 401 with the reason, not an anonymous request."""
    twice = ca.issue(uris=(SPIFFE_ID, "spiffe://example.org/ns/prod/sa/other"))

    response = await behind_proxy.client.get("/workloads/x", headers=xfcc(twice))

    assert response.status == 401
    body = await response.json()
    assert body["reason"] == "invalid_certificate"
    assert "several URIs" in body["error"]


async def test_a_bearer_token_comes_before_a_client_certificate(
    behind_proxy: Gate, invoicer: Issued
) -> None:
    """With both, the bearer token names the caller (identify order: bearer, certificate)."""
    headers = {**xfcc(invoicer), **behind_proxy.bearer("alice")}

    response = await behind_proxy.client.get("/workloads/x", headers=headers)

    assert response.status == 200
    seen = behind_proxy.upstream.last()["headers"]
    assert isinstance(seen, dict)
    assert seen["x-authenticated-user"] == "alice"


async def test_userinfo_says_the_identity_came_from_a_client_certificate(
    behind_proxy: Gate, invoicer: Issued
) -> None:
    """`/oauth2/userinfo` names the workload and the credential's source."""
    response = await behind_proxy.client.get("/oauth2/userinfo", headers=xfcc(invoicer))

    assert response.status == 200
    assert await response.json() == {
        "user": SPIFFE_ID,
        "email": None,
        "groups": [],
        "source": "client_cert",
        "issuer": None,
    }


# --- idgate's own TLS listener -------------------------------------------------------------------


@dataclass(kw_only=True)
class TLSGate:
    client: TestClient[Any, Any]
    upstream: EchoUpstream
    ca: CertificateAuthority
    directory: Path

    def presenting(self, issued: Issued | None) -> ssl.SSLContext:
        """A client context that trusts idgate's certificate and presents `issued`, if any."""
        context = ssl.create_default_context(cadata=self.ca.root.pem.decode("ascii"))
        if issued is not None:
            context.load_cert_chain(*issued.write(self.directory, "client"))
        return context


StartTLSGate = Callable[..., Awaitable[TLSGate]]


@pytest.fixture
def start_tls_gate(
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    ca: CertificateAuthority,
    tmp_path: Path,
) -> StartTLSGate:
    """Starts idgate serving HTTPS as `idgate serve` does (server certificate for 127.0.0.1,
    client certificates from `ca`), in front of an echo upstream; settings overrides apply."""

    async def start(**overrides: Any) -> TLSGate:
        cert_file, key_file = ca.issue(common_name="idgate", ips=("127.0.0.1",), server=True).write(
            tmp_path, "server"
        )
        client_ca_file = tmp_path / "clients-ca.pem"
        client_ca_file.write_bytes(ca.root.pem)
        tls = TLSSettings(cert_file=cert_file, key_file=key_file, client_ca_file=client_ca_file)
        issuer = await serve_issuer(aiohttp_server, FakeIssuer(keys=[SigningKey(kid="k1")]))
        upstream = await serve_echo(aiohttp_server)
        settings = make_settings(
            issuer.url, upstream.url, routes=routes(upstream.url), tls=tls, **overrides
        )
        app = build_app(settings, registry=CollectorRegistry())
        server = await aiohttp_server(app, ssl=server_context(tls))
        return TLSGate(
            client=await aiohttp_client(server), upstream=upstream, ca=ca, directory=tmp_path
        )

    return start


async def test_a_verified_client_certificate_reaches_the_spiffe_route(
    start_tls_gate: StartTLSGate, invoicer: Issued
) -> None:
    """The certificate the TLS handshake verified names the workload."""
    gate = await start_tls_gate()

    response = await gate.client.get("/workloads/invoices", ssl=gate.presenting(invoicer))

    assert response.status == 200
    seen = gate.upstream.last()["headers"]
    assert isinstance(seen, dict)
    assert seen["x-authenticated-user"] == SPIFFE_ID
    assert seen["x-forwarded-proto"] == "https"


async def test_a_tls_client_without_a_certificate_is_unauthenticated(
    start_tls_gate: StartTLSGate,
) -> None:
    """The certificate is optional at TLS level: without one the handshake works and it is 401."""
    gate = await start_tls_gate()

    response = await gate.client.get("/workloads/invoices", ssl=gate.presenting(None))

    assert response.status == 401
    assert gate.upstream.calls == 0


async def test_a_trusted_proxys_own_certificate_does_not_name_the_client(
    start_tls_gate: StartTLSGate, invoicer: Issued
) -> None:
    """From a trusted proxy with client_certificates set, only its header counts, not its own
    certificate: a request it forwards without the header is anonymous."""
    gate = await start_tls_gate(trusted_proxies=LOOPBACK, client_certificates=XFCC)

    response = await gate.client.get("/workloads/invoices", ssl=gate.presenting(invoicer))

    assert response.status == 401
    assert gate.upstream.calls == 0
