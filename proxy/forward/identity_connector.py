"""The WebSocket client's connector: the upstream's SPIFFE ID checked before the handshake request.

idgate's HTTP client checks a route's `upstream_tls.spiffe_id` between the TLS handshake and the
request (proxy/upstream/pool.py). aiohttp's client, used for WebSockets, has no public hook
there: its connection-created trace carries no transport, and a client middleware runs around
connect and send together. It checks its own certificate pin (`ssl=Fingerprint`) right after
`_wrap_create_connection` returns, so the check sits at that same point, in an override of a
private method: should a newer aiohttp rename it, tests/forward/test_upstream_tls.py fails (an
impostor would receive the handshake request).
"""

from __future__ import annotations

import ssl
import weakref
from typing import Any

import aiohttp

from proxy.errors import UpstreamIdentityMismatch
from proxy.upstream.tls import check_spiffe_id


class IdentityCheckingConnector(aiohttp.TCPConnector):
    """A TCPConnector that refuses a TLS connection whose context expects a SPIFFE ID the
    upstream's certificate does not carry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A route's client context is its own (proxy/upstream/tls.py), so the context says
        # which ID to expect; a rotated context is registered again on its first use.
        self._expected: weakref.WeakKeyDictionary[ssl.SSLContext, str] = weakref.WeakKeyDictionary()

    def expect(self, context: ssl.SSLContext, spiffe_id: str) -> None:
        self._expected[context] = spiffe_id

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        context = kwargs.get("ssl")
        expected = self._expected.get(context) if isinstance(context, ssl.SSLContext) else None
        if expected is not None:
            try:
                check_spiffe_id(transport.get_extra_info("ssl_object"), expected)
            except UpstreamIdentityMismatch:
                transport.close()
                raise
        return transport, protocol


def connector_of(client: aiohttp.ClientSession) -> IdentityCheckingConnector | None:
    connector = client.connector
    return connector if isinstance(connector, IdentityCheckingConnector) else None
