"""Client certificates through a real `idgate serve` that terminates TLS itself (`tls:`), with
certificates made for the test: a CA, a server certificate for 127.0.0.1, workload certificates.

One idgate serves the module; its upstream is an echo server each test starts on a reserved port.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.upstream import EchoUpstream

SPIFFE_ID = "spiffe://idgate.test/ns/prod/sa/invoicer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificates:
    ca: CertificateAuthority
    """Issues idgate's server certificate and the client certificates it accepts."""
    directory: Path
    invoicer: Issued
    stranger: Issued
    """A certificate for the same SPIFFE ID from another CA."""
    device_ca: CertificateAuthority
    """Signs managed devices' certificates; idgate's listener trusts it too."""
    laptop: Issued

    def client(self, issued: Issued | None) -> ssl.SSLContext:
        """A client context that trusts idgate's certificate and presents `issued`, if any."""
        context = ssl.create_default_context(cadata=self.ca.root.pem.decode("ascii"))
        if issued is not None:
            name = issued.certificate.serial_number
            context.load_cert_chain(*issued.write(self.directory, f"client-{name}"))
        return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    ca = CertificateAuthority.create()
    return Certificates(
        ca=ca,
        directory=tmp_path_factory.mktemp("certificates"),
        invoicer=ca.issue(common_name="invoicer", uris=(SPIFFE_ID,)),
        stranger=CertificateAuthority.create("another CA").issue(uris=(SPIFFE_ID,)),
        device_ca=(device_ca := CertificateAuthority.create("device CA")),
        laptop=device_ca.issue(common_name="laptop-17", dns_names=("laptop-17.corp.example",)),
    )


@pytest.fixture(scope="module")
def gate(
    oidc_provider: OidcProvider,
    certificates: Certificates,
    upstream_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IdgateProcess]:
    """idgate serving HTTPS, asking for client certificates from the test CA."""
    workdir = tmp_path_factory.mktemp("idgate")
    cert_file, key_file = certificates.ca.issue(
        common_name="idgate", ips=("127.0.0.1",), server=True
    ).write(workdir, "server")
    client_ca_file = workdir / "clients-ca.pem"
    client_ca_file.write_bytes(certificates.ca.root.pem + certificates.device_ca.root.pem)
    device_ca_file = workdir / "device-ca.pem"
    device_ca_file.write_bytes(certificates.device_ca.root.pem)
    upstream = f"http://127.0.0.1:{upstream_port}"
    routes = [
        {
            "name": "invoices",
            "path": "/invoices",
            "upstream": upstream,
            "allow": {"spiffe_ids": [SPIFFE_ID]},
        },
        {
            "name": "managed",
            "path": "/managed",
            "upstream": upstream,
            "allow": {"certificate_issuers": [str(device_ca_file)]},
        },
    ]
    document = base_document(oidc_provider.issuer, routes) | {
        "tls": {
            "cert_file": str(cert_file),
            "key_file": str(key_file),
            "client_ca_file": str(client_ca_file),
        }
    }
    with running_idgate(workdir, document, ssl_context=certificates.client(None)) as process:
        yield process


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_client_certificate_reaches_the_spiffe_route(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    certificates: Certificates,
    http: aiohttp.ClientSession,
) -> None:
    """The workload's certificate opens the route; the upstream and the log name its SPIFFE ID."""
    async with http.get(
        f"{gate.url}/invoices/42", ssl=certificates.client(certificates.invoicer)
    ) as response:
        assert response.status == 200

    headers = upstream.last()["headers"]
    assert isinstance(headers, dict)
    assert headers["x-authenticated-user"] == SPIFFE_ID
    assert headers["x-forwarded-proto"] == "https"
    decision = await gate.wait_for_decision("/invoices/42")
    assert decision["source"] == "client_cert"
    assert decision["reason"] == "spiffe_id"


async def test_without_a_certificate_the_route_is_401(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    certificates: Certificates,
    http: aiohttp.ClientSession,
) -> None:
    """The TLS handshake succeeds without a certificate; the route then refuses the anonymous."""
    async with http.get(f"{gate.url}/invoices/43", ssl=certificates.client(None)) as response:
        assert response.status == 401

    assert upstream.calls == 0


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_certificate_from_another_ca_fails_the_handshake(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    certificates: Certificates,
    http: aiohttp.ClientSession,
    version: ssl.TLSVersion,
) -> None:
    """A certificate idgate cannot verify ends the connection before any HTTP is exchanged
    (TLS 1.2 fails the handshake itself; TLS 1.3 closes right after it)."""
    context = certificates.client(certificates.stranger)
    context.minimum_version = context.maximum_version = version

    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{gate.url}/invoices/44", ssl=context):
            pass

    assert upstream.calls == 0


async def test_only_certificates_of_the_device_ca_open_the_managed_route(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    certificates: Certificates,
    http: aiohttp.ClientSession,
) -> None:
    """A route for managed devices admits a certificate the device CA signed, and refuses one
    the listener also trusts but another CA signed."""
    async with http.get(
        f"{gate.url}/managed/x", ssl=certificates.client(certificates.laptop)
    ) as response:
        assert response.status == 200
    decision = await gate.wait_for_decision("/managed/x")
    assert decision["reason"] == "certificate"

    async with http.get(
        f"{gate.url}/managed/y", ssl=certificates.client(certificates.invoicer)
    ) as response:
        assert response.status == 403
