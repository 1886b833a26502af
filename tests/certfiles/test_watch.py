"""Certificate files re-read when they change, the old material kept when the new is unusable."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from proxy.certfiles.watch import CertificateWatcher, WatchedContext
from proxy.config.model import TLSSettings
from proxy.config.tls_context import TLSFileError, build_server_context
from tests.support.certificate_events import Events
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.secret_volume import SecretVolume


def _files(issued: Issued) -> dict[str, bytes]:
    return {"tls.crt": issued.pem, "tls.key": issued.key_pem}


async def _watched(volume: SecretVolume) -> WatchedContext:
    tls = TLSSettings(cert_file=volume.path("tls.crt"), key_file=volume.path("tls.key"))
    return await WatchedContext.load(
        role="listener",
        name="tls",
        paths=(tls.cert_file, tls.key_file),
        build=lambda: build_server_context(tls),
    )


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def _issue(ca: CertificateAuthority, hours: float) -> Issued:
    now = datetime.datetime.now(datetime.UTC)
    return ca.issue(
        server=True, ips=("127.0.0.1",), not_after=now + datetime.timedelta(hours=hours)
    )


async def test_a_secret_volume_swap_is_seen_and_loaded(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """Swapping `..data` to a new directory (the kubelet's update) gives a new context."""
    first, second = _issue(ca, 1), _issue(ca, 2)
    volume = SecretVolume(tmp_path / "secret", _files(first))
    watched = await _watched(volume)
    before = watched.context

    assert await watched.refresh() is None
    volume.update(_files(second))

    assert await watched.refresh() is True
    assert watched.context is not before
    assert [v.not_after for v in watched.current.expiries] == [
        second.certificate.not_valid_after_utc.timestamp()
    ]


@pytest.mark.parametrize(
    "broken",
    ["garbage", "other_key", "expired", "key_missing"],
)
async def test_an_unusable_new_file_is_refused_and_the_old_context_kept(
    ca: CertificateAuthority, tmp_path: Path, broken: str
) -> None:
    """Unparsable, a key not the certificate's, expired, or a key gone: refused, old one kept."""
    first = _issue(ca, 1)
    volume = SecretVolume(tmp_path / "secret", _files(first))
    watched = await _watched(volume)
    before = watched.current
    other = _issue(ca, 1)
    files = {
        "garbage": {"tls.crt": b"not a certificate", "tls.key": first.key_pem},
        "other_key": {"tls.crt": other.pem, "tls.key": first.key_pem},
        "expired": _files(_issue(ca, -1)),
        "key_missing": {"tls.crt": other.pem},
    }[broken]
    volume.update(files)

    assert await watched.refresh() is False
    assert watched.current is before
    assert await watched.refresh() is None  # not tried again until a file changes once more

    volume.update(_files(other))
    assert await watched.refresh() is True


async def test_a_pair_written_in_two_steps_loads_once_both_are_there(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """A certificate written before its key is refused at first, then taken with the key."""
    first, second = _issue(ca, 1), _issue(ca, 2)
    cert_file, key_file = first.write(tmp_path, "server")
    tls = TLSSettings(cert_file=cert_file, key_file=key_file)
    watched = await WatchedContext.load(
        role="listener",
        name="tls",
        paths=(cert_file, key_file),
        build=lambda: build_server_context(tls),
    )
    cert_file.write_bytes(second.pem)
    assert await watched.refresh() is False
    key_file.write_bytes(second.key_pem)
    assert await watched.refresh() is True


async def test_loading_unusable_files_at_start_raises(tmp_path: Path) -> None:
    """With nothing to fall back on, an unusable file at start is an error naming its key."""
    cert_file = tmp_path / "tls.crt"
    cert_file.write_bytes(b"nothing")
    tls = TLSSettings(cert_file=cert_file, key_file=tmp_path / "tls.key")
    with pytest.raises(TLSFileError) as raised:
        await WatchedContext.load(
            role="listener", name="tls", paths=(cert_file,), build=lambda: build_server_context(tls)
        )
    assert raised.value.key == "cert_file"


async def test_the_watcher_polls_reports_reloads_and_the_soonest_expiry(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """Running, the watcher notices a swap within its poll interval and reports the new expiry."""
    first, second = _issue(ca, 5), _issue(ca, 1)
    volume = SecretVolume(tmp_path / "secret", _files(first))
    events = Events()
    watcher = CertificateWatcher(events, poll_seconds=0.01)
    watcher.add(await _watched(volume))
    assert events.expiries["listener"] == first.certificate.not_valid_after_utc.timestamp()
    polling = asyncio.get_running_loop().create_task(watcher.run())
    try:
        volume.update(_files(second))
        async with asyncio.timeout(5):
            await events.changed.wait()
    finally:
        polling.cancel()

    assert events.reloads == [("listener", True)]
    assert events.expiries["listener"] == second.certificate.not_valid_after_utc.timestamp()
