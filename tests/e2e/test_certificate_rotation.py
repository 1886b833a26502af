"""Certificates rotating under a real `idgate serve`, in front of a real nginx that requires a
client certificate (`ssl_verify_client on`) and hands the verified serial to the echo upstream.

idgate's listener certificate, its client CA and its client certificate for nginx each sit in a
Kubernetes Secret volume layout (tests/support/secret_volume.py) and are swapped while requests
run: no request fails, idgate is not restarted, and each client checks the serial it was served.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from proxy.demo.ports import free_loopback_ports
from tests.e2e.conftest import OidcProvider
from tests.e2e.gateways import Gateway, nginx_serving
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.secret_volume import SecretVolume
from tests.support.upstream import EchoUpstream

LEDGER_ID = "spiffe://idgate.test/ns/prod/sa/ledger"
IMPOSTOR_ID = "spiffe://idgate.test/ns/prod/sa/impostor"


@dataclass(kw_only=True)
class World:
    """The CAs, the Secret volumes idgate reads, nginx, and idgate itself."""

    listener_ca: CertificateAuthority
    """Issues idgate's listener certificates; the test clients trust it."""
    clients_ca: CertificateAuthority
    """The client CA idgate trusts at first."""
    workloads_ca: CertificateAuthority
    """Issues idgate's client certificates for nginx; nginx trusts it."""
    listener: SecretVolume
    upstream_client: SecretVolume
    nginx: Gateway
    impostor_port: int
    idgate: IdgateProcess
    directory: Path

    def client(self, presented: Issued | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.listener_ca.root.pem.decode("ascii"))
        if presented is not None:
            name = f"client-{presented.certificate.serial_number}"
            context.load_cert_chain(*presented.write(self.directory, name))
        return context


def _server(ca: CertificateAuthority, *uris: str) -> Issued:
    return ca.issue(common_name="server", ips=("127.0.0.1",), uris=uris, server=True)


def _nginx_site(
    directory: Path,
    world_ports: tuple[int, int],
    upstream_port: int,
    nginx_ca: CertificateAuthority,
    workloads_ca: CertificateAuthority,
) -> Path:
    """Two TLS servers that require a client certificate of `workloads_ca`: the ledger (the
    SPIFFE ID idgate expects) and an impostor (another ID from the same CA)."""
    trusted = directory / "workloads-ca.pem"
    trusted.write_bytes(workloads_ca.root.pem)
    servers = []
    for port, (name, spiffe_id) in zip(
        world_ports, (("ledger", LEDGER_ID), ("impostor", IMPOSTOR_ID)), strict=True
    ):
        cert_file, key_file = _server(nginx_ca, spiffe_id).write(directory, f"nginx-{name}")
        servers.append(
            f"""
server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert_file};
    ssl_certificate_key {key_file};
    ssl_client_certificate {trusted};
    ssl_verify_client on;
    location / {{
        proxy_pass http://127.0.0.1:{upstream_port};
        proxy_set_header X-Client-Serial $ssl_client_serial;
        proxy_set_header X-Client-Subject $ssl_client_s_dn;
    }}
}}"""
        )
    site = directory / "site.conf"
    site.write_text("\n".join(servers), encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def world(
    oidc_provider: OidcProvider, upstream_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("rotation")
    (directory / "nginx").mkdir()
    (directory / "idgate").mkdir()
    listener_ca = CertificateAuthority.create("listener CA")
    clients_ca = CertificateAuthority.create("clients CA")
    workloads_ca = CertificateAuthority.create("workloads CA")
    nginx_ca = CertificateAuthority.create("nginx CA")
    ledger_port, impostor_port = free_loopback_ports(2)
    site = _nginx_site(
        directory, (ledger_port, impostor_port), upstream_port, nginx_ca, workloads_ca
    )
    first_server = _server(listener_ca)
    listener = SecretVolume(
        directory / "listener",
        {
            "tls.crt": first_server.pem,
            "tls.key": first_server.key_pem,
            "ca.crt": clients_ca.root.pem,
        },
    )
    first_client = workloads_ca.issue(common_name="idgate-1")
    upstream_client = SecretVolume(
        directory / "upstream-client",
        {"tls.crt": first_client.pem, "tls.key": first_client.key_pem, "ca.crt": nginx_ca.root.pem},
    )
    upstream_tls = {
        "ca_file": str(upstream_client.path("ca.crt")),
        "cert_file": str(upstream_client.path("tls.crt")),
        "key_file": str(upstream_client.path("tls.key")),
        "spiffe_id": LEDGER_ID,
    }
    routes: list[dict[str, Any]] = [
        {
            "name": "ledger",
            "path": "/ledger",
            "upstream": f"https://127.0.0.1:{ledger_port}",
            "upstream_tls": upstream_tls,
            "public": True,
        },
        {
            "name": "impostor",
            "path": "/impostor",
            "upstream": f"https://127.0.0.1:{impostor_port}",
            "upstream_tls": upstream_tls,
            "public": True,
        },
    ]
    document = base_document(oidc_provider.issuer, routes) | {
        "tls": {
            "cert_file": str(listener.path("tls.crt")),
            "key_file": str(listener.path("tls.key")),
            "client_ca_file": str(listener.path("ca.crt")),
            "poll_interval": "50ms",
        }
    }
    client_context = ssl.create_default_context(cadata=listener_ca.root.pem.decode("ascii"))
    with (
        nginx_serving(directory / "nginx", site, port=ledger_port) as nginx,
        running_idgate(directory / "idgate", document, ssl_context=client_context) as idgate,
    ):
        yield World(
            listener_ca=listener_ca,
            clients_ca=clients_ca,
            workloads_ca=workloads_ca,
            listener=listener,
            upstream_client=upstream_client,
            nginx=nginx,
            impostor_port=impostor_port,
            idgate=idgate,
            directory=directory,
        )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: each one sees the certificate served at its handshake.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


@dataclass(frozen=True, slots=True)
class Served:
    listener_serial: int
    """The serial of idgate's certificate in this request's handshake."""
    upstream_saw: int
    """The serial of the client certificate idgate presented to nginx."""


async def _get(
    world: World, presented: Issued | None = None, path: str = "/ledger/books"
) -> Served:
    """One request on a new connection, as raw HTTP/1.1: the handshake's certificate is read
    from the very connection the answer came on."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", world.idgate.port, ssl=world.client(presented)
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    return Served(
        listener_serial=x509.load_der_x509_certificate(der).serial_number,
        # nginx writes the DER serial's bytes in hex: a leading zero byte stays.
        upstream_saw=int(json.loads(body)["headers"]["x-client-serial"], 16),
    )


async def _reloads(world: World, role: str, result: str) -> float:
    return await world.idgate.metric("idgate_certificate_reloads_total", role=role, result=result)


async def _wait_for_log(world: World, start: str, after: int) -> None:
    """Until idgate logs a line starting with `start` (after the mark `after`), or fail."""
    await world.idgate.wait_for_entry(
        lambda entry: str(entry.get("msg", "")).startswith(start), after=after
    )


async def test_listener_client_ca_and_upstream_certificate_rotate_under_load(
    world: World, upstream: EchoUpstream
) -> None:
    """Requests keep running while all three are swapped; none fails, and from the reload on
    clients are served the new listener certificate, nginx sees the new client certificate,
    and clients of the new client CA are accepted."""
    before = await _get(world)
    new_server = _server(world.listener_ca)
    new_client = world.workloads_ca.issue(common_name="idgate-2")
    new_clients_ca = CertificateAuthority.create("new clients CA")
    newcomer = new_clients_ca.issue(common_name="newcomer")
    listener_reloads = await _reloads(world, "listener", "success")
    upstream_reloads = await _reloads(world, "upstream", "success")
    mark = world.idgate.log_mark()
    served: list[Served] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def keep_requesting() -> None:
        made = 0
        while not stop.is_set() or made < 5:  # some before the swap, some across, some after
            made += 1
            try:
                served.append(await _get(world))
            except Exception as error:  # noqa: BLE001 (every failure is reported below)
                failures.append(error)

    clients = [asyncio.ensure_future(keep_requesting()) for _ in range(3)]
    try:
        world.listener.update(
            {
                "tls.crt": new_server.pem,
                "tls.key": new_server.key_pem,
                "ca.crt": world.clients_ca.root.pem + new_clients_ca.root.pem,
            }
        )
        world.upstream_client.update(
            {
                "tls.crt": new_client.pem,
                "tls.key": new_client.key_pem,
                "ca.crt": (world.upstream_client.path("ca.crt")).read_bytes(),
            }
        )
        await _wait_for_log(world, "certificates reloaded: tls", mark)
        await _wait_for_log(world, "certificates reloaded: upstream_tls", mark)
        after = await _get(world)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert failures == []
    assert len(served) >= 15
    assert await _reloads(world, "listener", "success") == listener_reloads + 1
    assert await _reloads(world, "upstream", "success") == upstream_reloads + 1
    assert before.upstream_saw != new_client.certificate.serial_number
    assert after == Served(
        listener_serial=new_server.certificate.serial_number,
        upstream_saw=new_client.certificate.serial_number,
    )
    assert (await _get(world, newcomer)).listener_serial == new_server.certificate.serial_number
    expiry = await world.idgate.metric(
        "idgate_certificate_expiry_timestamp_seconds", role="upstream_client"
    )
    assert expiry == new_client.certificate.not_valid_after_utc.timestamp()


async def test_a_broken_rotation_keeps_the_certificate_in_use(
    world: World, upstream: EchoUpstream
) -> None:
    """A new listener certificate whose key is another's is refused and counted; the one in
    use keeps serving."""
    current = await _get(world)
    failures = await _reloads(world, "listener", "failure")
    mark = world.idgate.log_mark()
    served_cert = world.listener.path("tls.crt").read_bytes()
    other = _server(world.listener_ca)
    world.listener.update(
        {
            "tls.crt": served_cert,
            "tls.key": other.key_pem,
            "ca.crt": world.listener.path("ca.crt").read_bytes(),
        }
    )
    await _wait_for_log(world, "certificate reload refused", mark)

    assert (await _get(world)).listener_serial == current.listener_serial
    assert await _reloads(world, "listener", "failure") == failures + 1


async def test_an_upstream_presenting_another_spiffe_id_is_a_502(
    world: World, upstream: EchoUpstream, http: aiohttp.ClientSession
) -> None:
    """nginx's impostor server holds a valid certificate of the trusted CA for another SPIFFE
    ID: idgate answers 502, sends it nothing, and counts it."""
    async with http.get(f"{world.idgate.url}/impostor/books", ssl=world.client()) as response:
        assert response.status == 502

    assert upstream.calls == 0
    assert (
        await world.idgate.metric("idgate_upstream_identity_mismatches_total", route="impostor")
        == 1
    )
