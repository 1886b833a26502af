"""Keep-alive connections to upstreams, pooled per origin, and one request/response exchange.

Like nginx's `keepalive` directive, the pool bounds the idle connections it keeps per origin, not
the connections in use: a burst opens what it needs and the surplus is closed as it finishes. An
idle connection is taken newest first (the one least likely to have been closed by the upstream)
and dropped after `idle_seconds`. An idempotent request without a body that meets a reused
connection closed before any answer (the keep-alive race) is sent once more on a new connection;
any other gets the 502, as nginx does not resend a non-idempotent request either.

Time limit: connecting and waiting for the response head share one deadline, restarted with each
request body chunk sent, so a long upload is not cut off while the upstream keeps reading it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Final

from proxy.config.model import UpstreamSettings, UpstreamTLS
from proxy.errors import BadRequest, RequestTimeout, UpstreamError, UpstreamTimeout
from proxy.upstream.connection import ClosedBeforeResponse, UpstreamConnection, UpstreamResponse
from proxy.upstream.tls import UpstreamTLSContexts, check_spiffe_id, server_name

_MAX_IDLE_PER_ORIGIN: Final = 256
_IDLE_SECONDS: Final = 30.0
_LAST_CHUNK: Final = b"0\r\n\r\n"
_DEFAULT_LIMITS: Final = UpstreamSettings()


@dataclass(frozen=True, slots=True)
class Origin:
    """Where connections go: `https` ones verify the upstream's certificate for `host`, or as
    `tls` says. Connections are pooled per Origin, so two routes to one upstream with different
    client certificates never share a connection."""

    scheme: str
    host: str
    port: int
    tls: UpstreamTLS | None = None


@dataclass(frozen=True, slots=True)
class RequestBody:
    """A request body to stream upstream; `chunked` frames it (its length is unknown)."""

    chunks: AsyncIterable[bytes]
    chunked: bool


class _Deadline:
    """One timer over connect + response head; expiry fails whatever the exchange awaits."""

    __slots__ = ("_handle", "_loop", "_over", "_seconds", "_target")

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._seconds = seconds
        self._target: asyncio.Future[UpstreamResponse] | None = None
        self._over = False
        self._handle = self._loop.call_later(seconds, self._expire)

    def watch(self, target: asyncio.Future[UpstreamResponse]) -> None:
        self._target = target

    def restart(self) -> None:
        if self._over:
            return
        self._handle.cancel()
        self._handle = self._loop.call_later(self._seconds, self._expire)

    def cancel(self) -> None:
        self._over = True
        self._handle.cancel()

    def _expire(self) -> None:
        self._over = True
        target = self._target
        if target is not None and not target.done():
            target.set_exception(UpstreamTimeout("upstream timed out"))


class UpstreamPool:
    """Idle keep-alive connections per origin; `close()` ends them all."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        tls_contexts: UpstreamTLSContexts | None = None,
        max_idle_per_origin: int = _MAX_IDLE_PER_ORIGIN,
        idle_seconds: float = _IDLE_SECONDS,
    ) -> None:
        self.tls_contexts = (
            UpstreamTLSContexts(default=ssl_context) if tls_contexts is None else tls_contexts
        )
        self._max_idle = max_idle_per_origin
        self._idle_seconds = idle_seconds
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._origins: dict[UpstreamConnection, Origin] = {}
        #: The TLS context each https connection was made with.
        self._made_with: dict[UpstreamConnection, ssl.SSLContext] = {}
        self._next_sweep = 0.0
        self._closed = False

    async def exchange(
        self,
        origin: Origin,
        head: bytes,
        body: RequestBody | None,
        *,
        timeout_seconds: float,
        limits: UpstreamSettings = _DEFAULT_LIMITS,
        head_only: bool = False,
        replayable: bool = False,
    ) -> UpstreamResponse:
        """Send one request; its response once the head arrived. The caller releases it.

        `replayable`: the request may be sent twice (idempotent, no body: RFC 9110 9.2.2).
        `limits`: what is accepted of the response (head size, idle body).

        Raises UpstreamError (502) when the upstream cannot be reached or answers nonsense,
        UpstreamTimeout (504) when the response head does not arrive in time.
        """
        deadline = _Deadline(timeout_seconds)
        try:
            connection = self._idle_connection(origin)
            if connection is not None and replayable and body is None:
                try:
                    return await self._send(
                        connection, head, None, deadline, head_only=head_only, limits=limits
                    )
                except ClosedBeforeResponse:
                    connection = None  # the keep-alive race: once more, on a new connection
            if connection is None:
                connection = await self._connect(origin, deadline)
            return await self._send(
                connection, head, body, deadline, head_only=head_only, limits=limits
            )
        finally:
            deadline.cancel()

    async def _send(
        self,
        connection: UpstreamConnection,
        head: bytes,
        body: RequestBody | None,
        deadline: _Deadline,
        *,
        head_only: bool,
        limits: UpstreamSettings,
    ) -> UpstreamResponse:
        answer = connection.send(head, head_only=head_only, release=self._release, limits=limits)
        deadline.watch(answer)
        sending = (
            None
            if body is None
            else asyncio.ensure_future(_send_body(connection, body, deadline, answer))
        )
        try:
            response = await answer
        except BaseException:
            connection.abandon()
            if sending is not None:
                sending.cancel()
            raise
        if sending is not None and not sending.done():
            # The upstream answered before taking the whole body (an early 413, say): the rest
            # is not sent, and the connection ends with this exchange.
            connection.reusable = False
            sending.cancel()
        return response

    async def _connect(self, origin: Origin, deadline: _Deadline) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        # Taken per connection: a rotated certificate is used from the next connection on.
        context = await self.tls_contexts.context(origin.tls) if tls else None
        connecting = asyncio.ensure_future(
            loop.create_connection(
                lambda: UpstreamConnection(self._forget),
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=server_name(origin.tls, origin.host) if tls else None,
            )
        )
        watcher: asyncio.Future[UpstreamResponse] = loop.create_future()
        deadline.watch(watcher)
        try:
            await asyncio.wait((connecting, watcher), return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                raise UpstreamTimeout("upstream timed out")
        finally:
            watcher.cancel()
            if not connecting.done():
                connecting.cancel()  # timed out, or the exchange itself was cancelled
        try:
            transport, connection = connecting.result()
        except OSError as error:  # refused, unreachable, name not resolved, TLS failure
            raise UpstreamError("upstream unavailable") from error
        if tls and origin.tls is not None and origin.tls.spiffe_id is not None:
            try:
                check_spiffe_id(transport.get_extra_info("ssl_object"), origin.tls.spiffe_id)
            except UpstreamError:
                connection.close()
                raise
        self._origins[connection] = origin
        if context is not None:
            self._made_with[connection] = context
        return connection

    def _idle_connection(self, origin: Origin) -> UpstreamConnection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_usable = asyncio.get_running_loop().time() - self._idle_seconds
        current = self.tls_contexts.current(origin.tls) if origin.scheme == "https" else None
        while idle:
            connection = idle.pop()
            if (
                connection.reusable
                and connection.idle_since > oldest_usable
                # Made before a certificate rotation: a new connection presents the new one, so
                # an upstream under steady traffic sees it too. Requests in flight go on.
                and self._made_with.get(connection) is current
            ):
                return connection
            connection.close()
        return None

    def _release(self, connection: UpstreamConnection) -> None:
        origin = self._origins.get(connection)
        if not connection.reusable or origin is None or self._closed:
            connection.close()
            return
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = []
        if len(idle) >= self._max_idle:
            connection.close()
            return
        now = asyncio.get_running_loop().time()
        connection.idle_since = now
        idle.append(connection)
        if now >= self._next_sweep:
            self._next_sweep = now + self._idle_seconds
            self._sweep(now - self._idle_seconds)

    def _sweep(self, oldest_usable: float) -> None:
        """Close connections idle for longer than `idle_seconds` (the oldest sit at the front)."""
        for idle in self._idle.values():
            stale = 0
            while stale < len(idle) and idle[stale].idle_since <= oldest_usable:
                idle[stale].close()
                stale += 1
            del idle[:stale]

    def _forget(self, connection: UpstreamConnection) -> None:
        self._made_with.pop(connection, None)
        origin = self._origins.pop(connection, None)
        idle = self._idle.get(origin) if origin is not None else None
        if idle and connection in idle:
            idle.remove(connection)

    async def close(self) -> None:
        self._closed = True
        self.tls_contexts.close()
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


async def _send_body(
    connection: UpstreamConnection,
    body: RequestBody,
    deadline: _Deadline,
    answer: asyncio.Future[UpstreamResponse],
) -> None:
    """Stream the client's body upstream; a client whose body breaks off fails the exchange."""
    try:
        async for chunk in body.chunks:
            deadline.restart()
            if body.chunked:
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                connection.write(chunk)
            await connection.drain()
        if body.chunked:
            connection.write(_LAST_CHUNK)
    except RequestTimeout as error:
        # The client's body stalled (server.body_idle_timeout): 408, and the upstream connection
        # is abandoned with the body unfinished.
        if not answer.done():
            answer.set_exception(error)
    except ConnectionResetError as error:
        if answer.done():
            return
        # From the upstream's side (it went away): connection_lost fails `answer` for us. From
        # the client's: the request can't be completed, which observe logs as 499.
        answer.set_exception(error)
    except Exception as error:  # noqa: BLE001 (aiohttp's body errors have no common base)
        if not answer.done():
            failure = BadRequest("request body could not be read")
            failure.__cause__ = error
            answer.set_exception(failure)
