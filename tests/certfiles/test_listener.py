"""The listener's certificate, key and client CAs rotate under a running server, no restart."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

from aiohttp import web
from cryptography import x509

from proxy.certfiles.listener import rotating_server_context
from proxy.certfiles.watch import WatchedContext
from proxy.config.model import TLSSettings
from proxy.config.tls_context import build_server_context
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.loops import on_each_loop
from tests.support.secret_volume import SecretVolume


async def _peer(request: web.Request) -> web.Response:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    serial = x509.load_der_x509_certificate(der).serial_number if der else 0
    return web.Response(text=str(serial))


class Server:
    """An aiohttp server on the rotating context of a Secret volume's files."""

    def __init__(self, volume: SecretVolume, *, client_ca: bool, crl: bool = False) -> None:
        self.tls = TLSSettings(
            cert_file=volume.path("tls.crt"),
            key_file=volume.path("tls.key"),
            client_ca_file=volume.path("ca.crt") if client_ca else None,
            client_crl_file=volume.path("ca.crl") if crl else None,
        )
        self.port = 0
        self.watched: WatchedContext | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Server:
        tls = self.tls
        self.watched = await WatchedContext.load(
            role="listener",
            name="tls",
            paths=tuple(
                p
                for p in (tls.cert_file, tls.key_file, tls.client_ca_file, tls.client_crl_file)
                if p
            ),
            build=lambda: build_server_context(tls),
        )
        app = web.Application()
        app.router.add_get("/", _peer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", 0, ssl_context=rotating_server_context(self.watched)
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def refresh(self) -> bool | None:
        assert self.watched is not None
        return await self.watched.refresh()


def _client(ca: CertificateAuthority, presented: Issued | None, directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.root.pem.decode("ascii"))
    if presented is not None:
        context.load_cert_chain(
            *presented.write(directory, f"c{presented.certificate.serial_number}")
        )
    return context


async def _get(
    port: int, context: ssl.SSLContext
) -> tuple[int, bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """One request on a new connection: the served certificate's serial and the response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    served = x509.load_der_x509_certificate(der).serial_number
    try:
        response = await _request(reader, writer)
    except BaseException:
        writer.close()
        raise
    return served, response, reader, writer


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: idgate.test\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head.split(b"\r\n")[0] + b" " + await reader.readexactly(length)


def _server_files(ca: CertificateAuthority, hours: float = 1) -> tuple[Issued, dict[str, bytes]]:
    now = datetime.datetime.now(datetime.UTC)
    issued = ca.issue(
        server=True, ips=("127.0.0.1",), not_after=now + datetime.timedelta(hours=hours)
    )
    return issued, {"tls.crt": issued.pem, "tls.key": issued.key_pem, "ca.crt": ca.root.pem}


@on_each_loop
async def test_requests_running_through_a_rotation_all_succeed(tmp_path: Path) -> None:
    """While clients keep connecting, a swapped certificate serves new handshakes from the
    reload on; no request fails, and a connection opened before goes on with the old one."""
    ca = CertificateAuthority.create()
    first, files = _server_files(ca)
    volume = SecretVolume(tmp_path / "secret", files)
    client = _client(ca, None, tmp_path)
    async with Server(volume, client_ca=False) as server:
        served, response, reader, writer = await _get(server.port, client)
        assert served == first.certificate.serial_number
        assert response == b"HTTP/1.1 200 OK 0"

        second, files = _server_files(ca, hours=2)
        seen: list[int] = []

        async def keep_requesting(done: asyncio.Event) -> None:
            while not done.is_set():
                serial, answer, _, w = await _get(server.port, client)
                w.close()
                assert answer == b"HTTP/1.1 200 OK 0"
                seen.append(serial)

        done = asyncio.Event()
        clients = [asyncio.ensure_future(keep_requesting(done)) for _ in range(4)]
        volume.update(files)
        assert await server.refresh() is True
        after, _, _, w = await _get(server.port, client)
        w.close()
        done.set()
        await asyncio.gather(*clients)

        assert after == second.certificate.serial_number
        assert set(seen) <= {first.certificate.serial_number, second.certificate.serial_number}
        # The connection from before the rotation still answers.
        assert await _request(reader, writer) == b"HTTP/1.1 200 OK 0"
        writer.close()


async def test_a_rotated_client_ca_verifies_new_clients(tmp_path: Path) -> None:
    """Replacing the client-CA file: certificates of the new CA are accepted from the next
    handshake on, and those of the old one refused."""
    ca, new_ca = (
        CertificateAuthority.create("old clients"),
        CertificateAuthority.create("new clients"),
    )
    server_ca = CertificateAuthority.create("server")
    _, files = _server_files(server_ca)
    volume = SecretVolume(tmp_path / "secret", files | {"ca.crt": ca.root.pem})
    old_client, new_client = ca.issue(common_name="old"), new_ca.issue(common_name="new")
    async with Server(volume, client_ca=True) as server:
        _, response, _, writer = await _get(server.port, _client(server_ca, old_client, tmp_path))
        writer.close()
        assert response == f"HTTP/1.1 200 OK {old_client.certificate.serial_number}".encode()

        volume.update(files | {"ca.crt": new_ca.root.pem})
        assert await server.refresh() is True

        _, response, _, writer = await _get(server.port, _client(server_ca, new_client, tmp_path))
        writer.close()
        assert response == f"HTTP/1.1 200 OK {new_client.certificate.serial_number}".encode()
        refused = _client(server_ca, old_client, tmp_path)
        try:
            _, response, _, writer = await _get(server.port, refused)
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
            pass
        else:
            writer.close()
            raise AssertionError(f"the old CA's client got {response!r}")


async def _refused(port: int, context: ssl.SSLContext) -> bool:
    try:
        _, _, _, writer = await _get(port, context)
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        return True
    writer.close()
    return False


async def test_a_revoked_client_certificate_identifies_no_one(tmp_path: Path) -> None:
    """With `client_crl_file`, a certificate the CRL revokes fails the handshake; a CRL updated
    on disk revokes from the next handshake on; a stale CRL is refused and the old one kept."""
    clients, server_ca = CertificateAuthority.create("clients"), CertificateAuthority.create("s")
    _, files = _server_files(server_ca)
    revoked, kept = clients.issue(common_name="revoked"), clients.issue(common_name="kept")
    files |= {"ca.crt": clients.root.pem, "ca.crl": clients.crl(revoked)}
    volume = SecretVolume(tmp_path / "secret", files)
    async with Server(volume, client_ca=True, crl=True) as server:
        assert await _refused(server.port, _client(server_ca, revoked, tmp_path))
        assert not await _refused(server.port, _client(server_ca, kept, tmp_path))

        volume.update(files | {"ca.crl": clients.crl(revoked, kept)})
        assert await server.refresh() is True
        assert await _refused(server.port, _client(server_ca, kept, tmp_path))

        stale = clients.crl(next_update=-datetime.timedelta(minutes=1))
        volume.update(files | {"ca.crl": stale})
        assert await server.refresh() is False
        assert await _refused(server.port, _client(server_ca, kept, tmp_path))
