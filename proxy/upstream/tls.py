"""Per-route upstream TLS: the current client context for each `upstream_tls`, and the SPIFFE
ID check after the handshake.

A context is built the first time a route's upstream is reached and then watched: a new
connection takes whatever context is current, so a rotated client certificate or CA is used
from the next connection on, and pooled connections made with the old one go on until they end.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from cryptography import x509

from proxy.certfiles.watch import CertificateWatcher, WatchedContext
from proxy.config.model import UpstreamTLS
from proxy.config.tls_context import TLSFileError, build_client_context
from proxy.errors import UpstreamError, UpstreamIdentityMismatch

_log = logging.getLogger("idgate.upstream")


class UpstreamTLSContexts:
    """One watched client context per distinct `upstream_tls`; the default one for None."""

    def __init__(
        self, watcher: CertificateWatcher | None = None, *, default: ssl.SSLContext | None = None
    ) -> None:
        self._watcher = watcher
        self._default = default
        self._watched: dict[UpstreamTLS, asyncio.Future[WatchedContext]] = {}

    async def context(self, tls: UpstreamTLS | None) -> ssl.SSLContext:
        """The context a new connection uses now. Raises UpstreamError (502) when the route's
        files were unusable from the start (the config check passed, the files changed since)."""
        if tls is None:
            if self._default is None:
                self._default = await asyncio.to_thread(ssl.create_default_context)
            return self._default
        loading = self._watched.get(tls)
        if loading is None:
            loading = self._watched[tls] = asyncio.ensure_future(self._load(tls))
        try:
            return (await asyncio.shield(loading)).context
        except TLSFileError as error:
            self._watched.pop(tls, None)  # tried again by the next request
            raise UpstreamError("upstream TLS files unusable") from error

    def current(self, tls: UpstreamTLS | None) -> ssl.SSLContext | None:
        """The context a connection made now would use, if it is loaded already."""
        if tls is None:
            return self._default
        loading = self._watched.get(tls)
        if loading is None or not loading.done() or loading.cancelled() or loading.exception():
            return None
        return loading.result().context

    async def _load(self, tls: UpstreamTLS) -> WatchedContext:
        paths = tuple(path for path in (tls.ca_file, tls.cert_file, tls.key_file) if path)
        watched = await WatchedContext.load(
            role="upstream",
            # The files name it in the log: several routes may share one `upstream_tls`.
            name=f"upstream_tls ({', '.join(map(str, paths))})",
            paths=paths,
            build=lambda: build_client_context(tls),
        )
        if self._watcher is not None and paths:
            self._watcher.add(watched)
        return watched

    def close(self) -> None:
        for loading in self._watched.values():
            if loading.done() and not loading.cancelled() and loading.exception() is None:
                if self._watcher is not None:
                    self._watcher.remove(loading.result())
            else:
                loading.cancel()
        self._watched.clear()


def server_name(tls: UpstreamTLS | None, host: str) -> str:
    """The SNI sent and the name checked: `server_name` if set, else the URL's host."""
    return tls.server_name if tls is not None and tls.server_name is not None else host


def check_spiffe_id(ssl_object: object, expected: str) -> None:
    """Raise UpstreamIdentityMismatch unless the peer's certificate has the URI SAN `expected`.

    SPIFFE X.509-SVID 2: "An X.509 SVID MUST contain exactly one URI SAN"; a certificate with
    several is not an SVID and is refused too.
    """
    der = (
        ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
    )
    found: list[str] = []
    if der:
        try:
            names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            )
        except (ValueError, x509.ExtensionNotFound):
            pass
        else:
            found = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    if found != [expected]:
        _log.warning(
            "upstream certificate names %s, the route expects %s: connection closed",
            found or "no URI SAN",
            expected,
        )
        raise UpstreamIdentityMismatch("upstream is not the expected workload")
