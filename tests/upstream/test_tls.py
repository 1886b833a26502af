"""Per-route upstream TLS: an internal CA, a client certificate that rotates, the server name,
the upstream's SPIFFE ID. Against an HTTPS upstream that requires a client certificate.

The async tests run on asyncio's own event loop and on uvloop's (tests/support/loops.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.certfiles.watch import CertificateWatcher
from proxy.config.model import UpstreamTLS
from proxy.errors import UpstreamError, UpstreamIdentityMismatch
from proxy.upstream import Origin, UpstreamPool, UpstreamTLSContexts, request_head
from tests.support.certificate_events import Events
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.loops import on_each_loop
from tests.support.secret_volume import SecretVolume
from tests.support.tls_upstream import https_upstream

UPSTREAM_ID = "spiffe://idgate.test/ns/prod/sa/ledger"


async def _get(pool: UpstreamPool, origin: Origin, path: str = "/") -> int:
    response = await pool.exchange(
        origin, request_head("GET", path, "upstream.internal", ()), None, timeout_seconds=5
    )
    try:
        assert response.status == 200
        assert response.content_length is not None
        return int(await response.read_exactly(response.content_length))
    finally:
        response.release()


def _client_files(issued: Issued, upstream_ca: CertificateAuthority) -> dict[str, bytes]:
    return {"tls.crt": issued.pem, "tls.key": issued.key_pem, "ca.crt": upstream_ca.root.pem}


def _tls(volume: SecretVolume, **changes: object) -> UpstreamTLS:
    settings: dict[str, object] = {
        "ca_file": volume.path("ca.crt"),
        "cert_file": volume.path("tls.crt"),
        "key_file": volume.path("tls.key"),
    }
    return UpstreamTLS(**(settings | changes))  # type: ignore[arg-type]


@on_each_loop
async def test_a_rotated_client_certificate_is_presented_from_the_next_connection(
    tmp_path: Path,
) -> None:
    """idgate verifies the upstream with the route's CA, presents its client certificate, and
    after a Secret volume swap presents the new one on new connections, no request failing."""
    clients = CertificateAuthority.create("workloads")
    first, second = clients.issue(common_name="idgate-1"), clients.issue(common_name="idgate-2")
    async with https_upstream(tmp_path, client_ca=clients) as upstream:
        volume = SecretVolume(tmp_path / "secret", _client_files(first, upstream.ca))
        events = Events()
        watcher = CertificateWatcher(events)
        pool = UpstreamPool(tls_contexts=UpstreamTLSContexts(watcher))
        origin = Origin("https", "127.0.0.1", upstream.port, _tls(volume))
        try:
            assert await _get(pool, origin) == first.certificate.serial_number
            volume.update(_client_files(second, upstream.ca))
            await watcher.poll()
            assert events.reloads == [("upstream", True)]
            assert await _get(pool, origin) == second.certificate.serial_number
            assert events.expiries["upstream_client"] == (
                second.certificate.not_valid_after_utc.timestamp()
            )

            volume.update({"tls.crt": b"broken", "tls.key": b"", "ca.crt": upstream.ca.root.pem})
            await watcher.poll()
            assert events.reloads[-1] == ("upstream", False)
            assert await _get(pool, origin) == second.certificate.serial_number
        finally:
            await pool.close()


@on_each_loop
async def test_an_idle_connection_made_before_a_rotation_is_not_reused(tmp_path: Path) -> None:
    """Keep-alive would hold the old client certificate for as long as traffic flows; after a
    rotation the next request goes on a new connection with the new one."""
    clients = CertificateAuthority.create("workloads")
    first, second = clients.issue(common_name="idgate-1"), clients.issue(common_name="idgate-2")
    async with https_upstream(tmp_path, client_ca=clients) as upstream:
        volume = SecretVolume(tmp_path / "secret", _client_files(first, upstream.ca))
        watcher = CertificateWatcher(Events())
        pool = UpstreamPool(tls_contexts=UpstreamTLSContexts(watcher))
        origin = Origin("https", "127.0.0.1", upstream.port, _tls(volume))
        try:
            assert await _get(pool, origin, "/keep-alive") == first.certificate.serial_number
            assert await _get(pool, origin, "/keep-alive") == first.certificate.serial_number
            volume.update(_client_files(second, upstream.ca))
            await watcher.poll()
            assert await _get(pool, origin, "/keep-alive") == second.certificate.serial_number
        finally:
            await pool.close()


@on_each_loop
async def test_without_the_route_ca_an_internal_upstream_is_a_502(tmp_path: Path) -> None:
    """The system trust store does not know an internal CA: the handshake fails, 502."""
    clients = CertificateAuthority.create("workloads")
    async with https_upstream(tmp_path, client_ca=clients) as upstream:
        cert_file, key_file = clients.issue(common_name="idgate").write(tmp_path, "client")
        pool = UpstreamPool()
        origin = Origin(
            "https", "127.0.0.1", upstream.port, UpstreamTLS(cert_file=cert_file, key_file=key_file)
        )
        try:
            with pytest.raises(UpstreamError):
                await _get(pool, origin)
        finally:
            await pool.close()


@pytest.mark.parametrize(
    ("server_name", "works"), [("upstream.internal", True), ("other.internal", False)]
)
@on_each_loop
async def test_the_server_name_is_what_the_certificate_must_name(
    tmp_path: Path, server_name: str, works: bool
) -> None:
    """`server_name` replaces the URL's host in SNI and in the certificate check."""
    clients = CertificateAuthority.create("workloads")
    async with https_upstream(tmp_path, client_ca=clients) as upstream:
        volume = SecretVolume(tmp_path / "secret", _client_files(clients.issue(), upstream.ca))
        pool = UpstreamPool()
        origin = Origin("https", "localhost", upstream.port, _tls(volume, server_name=server_name))
        try:
            if works:
                assert await _get(pool, origin) > 0
            else:
                with pytest.raises(UpstreamError):
                    await _get(pool, origin)
        finally:
            await pool.close()


@pytest.mark.parametrize("presented", [(UPSTREAM_ID,), ("spiffe://idgate.test/ns/prod/sa/x",), ()])
@on_each_loop
async def test_the_upstream_must_present_the_expected_spiffe_id(
    tmp_path: Path, presented: tuple[str, ...]
) -> None:
    """With `spiffe_id`, an upstream whose certificate names another workload (or none) is
    refused after the handshake, before the request is sent."""
    clients = CertificateAuthority.create("workloads")
    async with https_upstream(tmp_path, client_ca=clients, uris=presented) as upstream:
        volume = SecretVolume(tmp_path / "secret", _client_files(clients.issue(), upstream.ca))
        pool = UpstreamPool()
        origin = Origin("https", "127.0.0.1", upstream.port, _tls(volume, spiffe_id=UPSTREAM_ID))
        try:
            if presented == (UPSTREAM_ID,):
                assert await _get(pool, origin) > 0
            else:
                with pytest.raises(UpstreamIdentityMismatch):
                    await _get(pool, origin)
        finally:
            await pool.close()


@on_each_loop
async def test_insecure_skip_verify_accepts_any_upstream_certificate(tmp_path: Path) -> None:
    """The explicitly insecure option connects to an upstream whose CA idgate does not know."""
    clients = CertificateAuthority.create("workloads")
    async with https_upstream(tmp_path, client_ca=clients) as upstream:
        cert_file, key_file = clients.issue(common_name="idgate").write(tmp_path, "client")
        tls = UpstreamTLS(cert_file=cert_file, key_file=key_file, insecure_skip_verify=True)
        pool = UpstreamPool()
        try:
            assert await _get(pool, Origin("https", "127.0.0.1", upstream.port, tls)) > 0
        finally:
            await pool.close()
