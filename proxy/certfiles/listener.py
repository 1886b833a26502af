"""The listener's context: each new handshake switches to the newest watched context.

An ssl.SSLContext cannot drop a client CA once loaded, so a rotation builds a whole new one. The
listening socket keeps its first context, whose SNI callback (called on every ClientHello, with
or without a server name) moves the handshake to the newest before the certificate is chosen or
a client certificate verified. Connections already open keep the context they started with.
"""

from __future__ import annotations

import ssl

from proxy.certfiles.watch import WatchedContext


def rotating_server_context(watched: WatchedContext) -> ssl.SSLContext:
    """The context to listen with; rotations of `watched` reach new handshakes."""
    front = watched.context

    def switch(
        connection: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _context: ssl.SSLContext
    ) -> None:
        newest = watched.context
        if connection.context is not newest:
            connection.context = newest

    front.sni_callback = switch
    return front
