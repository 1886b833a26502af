"""Forwarding to an upstream: what it receives, what the client gets back, and how failures show."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.config.model import Policy, Route
from proxy.errors import IdgateError
from proxy.forward.headers import is_session_cookie
from proxy.forward.http import UPSTREAM_POOL_KEY, forward
from proxy.observability.metrics import Metrics
from proxy.runtime import Runtime
from proxy.upstream import UpstreamPool
from tests.support.context import make_context

SESSION_COOKIE = "_idgate"
IDENTITY = {
    "X-Authenticated-User": "alice",
    "X-Authenticated-Email": "alice@example.com",
    "X-Authenticated-Groups": "admins,dev",
    "X-Authenticated-Assertion": "header.payload.signature",
}
FIVE_MB = 5 * 1024 * 1024
PATTERN = bytes(range(256)) * 256  # 64 KiB, so a corrupted or reordered chunk changes the hash
STATE = web.AppKey("state", dict[str, Any])


# --- the upstream: echoes what it received as JSON, plus a few special behaviours ---------------


async def echo(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return web.json_response(
        {
            "method": request.method,
            "target": request.raw_path,
            "headers": [[name, value] for name, value in request.headers.items()],
            "size": size,
            "sha256": digest.hexdigest(),
        }
    )


async def download(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if request.query.get("length") == "yes":
        response.content_length = FIVE_MB
    await response.prepare(request)
    for _ in range(FIVE_MB // len(PATTERN)):
        await response.write(PATTERN)
    await response.write_eof()
    return response


async def compressed(_: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b"hello " * 100),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )


async def redirect(_: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/elsewhere"})


async def hop_headers(_: web.Request) -> web.Response:
    return web.Response(
        text="ok",
        headers=CIMultiDict(
            [
                ("Connection", "X-Upstream-Hop"),
                ("X-Upstream-Hop", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Authenticate", "Basic"),
                ("X-Kept", "yes"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
            ]
        ),
    )


async def never_answers(request: web.Request) -> web.Response:
    request.app[STATE]["waiting"] = True
    await asyncio.Event().wait()  # nobody sets it: the proxy must give up on its own
    raise AssertionError("unreachable")


async def dies_mid_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 1_000_000
    await response.prepare(request)
    await response.write(b"x" * 1000)
    assert request.transport is not None
    request.transport.close()
    return response


def upstream_app() -> web.Application:
    app = web.Application()
    app[STATE] = {}
    app.router.add_get("/download", download)
    app.router.add_get("/gzip", compressed)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/hop", hop_headers)
    app.router.add_get("/hang", never_answers)
    app.router.add_get("/broken", dies_mid_body)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


# --- the proxy under test: a handler that calls forward() with a hand-built context -------------


class StartProxy(Protocol):
    def __call__(
        self,
        route: Route,
        *,
        upstream_path: str | None = None,
        query: str | None = None,
        client_ip: str = "127.0.0.1",
        **client_kwargs: Any,
    ) -> Awaitable[TestClient[web.Request, web.Application]]: ...


def route_to(upstream: str | None, **overrides: Any) -> Route:
    return Route(name="app", upstream=upstream, policy=Policy(public=True), **overrides)


async def upstream_pool(app: web.Application) -> AsyncIterator[None]:
    app[UPSTREAM_POOL_KEY] = UpstreamPool()
    yield
    await app[UPSTREAM_POOL_KEY].close()


@pytest.fixture
def metrics(runtime: Runtime) -> Metrics:
    return runtime.metrics


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> TestServer:
    return await aiohttp_server(upstream_app())


@pytest.fixture
def start_proxy(aiohttp_client: AiohttpClient, runtime: Runtime) -> StartProxy:
    async def start(
        route: Route,
        *,
        upstream_path: str | None = None,
        query: str | None = None,
        client_ip: str = "127.0.0.1",
        **client_kwargs: Any,
    ) -> TestClient[web.Request, web.Application]:
        async def handler(request: web.Request) -> web.StreamResponse:
            raw_path, _, raw_query = request.raw_path.partition("?")
            ctx = make_context(
                runtime,
                client_ip=client_ip,
                method=request.method,
                path=raw_path,
                upstream_path=raw_path if upstream_path is None else upstream_path,
                query=raw_query if query is None else query,
            )
            try:
                return await forward(request, ctx, route, IDENTITY)
            except IdgateError as exc:
                return web.Response(status=exc.status, text=exc.public_message)

        app = web.Application()
        app.cleanup_ctx.append(upstream_pool)
        app.router.add_route("*", "/{tail:.*}", handler)
        return await aiohttp_client(app, **client_kwargs)

    return start


def base_url(server: TestServer) -> str:
    return f"http://{server.host}:{server.port}"


async def echoed(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def header_values(echo_body: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo_body["headers"] if key.lower() == name.lower()]


# --- request headers ----------------------------------------------------------------------------


async def test_hop_by_hop_and_connection_named_headers_are_not_forwarded(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """Connection-specific headers, and any header the client's Connection names, stop at idgate."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get(
        "/x",
        headers={
            "Connection": "keep-alive, X-Named-Hop",
            "X-Named-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Connection": "keep-alive",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic cHJveHk6cHc=",
            "X-Custom": "kept",
        },
    )
    body = await echoed(response)
    for name in ("X-Named-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer"):
        assert header_values(body, name) == [], name
    assert header_values(body, "Proxy-Authorization") == []
    assert header_values(body, "X-Custom") == ["kept"]


async def test_hop_by_hop_and_framing_headers_spelled_with_underscores_are_not_forwarded(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """`Transfer_Encoding`, `Content_Length` and other `_` spellings of connection or framing
    headers (which CGI and WSGI read as the real ones) never reach the upstream; the body still
    arrives framed by the real Content-Length."""
    client = await start_proxy(route_to(base_url(upstream)))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"POST /x HTTP/1.1\r\n"
            b"Host: idgate.test\r\n"
            b"Content-Length: 5\r\n"
            b"Transfer_Encoding: chunked\r\n"
            b"Content_Length: 1000\r\n"
            b"Keep_Alive: timeout=5\r\n"
            b"Proxy_Connection: keep-alive\r\n"
            b"Proxy_Authorization: Basic cHJveHk6cHc=\r\n"
            b"Connection: X_Named_Hop\r\n"
            b"X-Named-Hop: secret\r\n"
            b"X_Custom: kept\r\n"
            b"\r\n"
            b"hello"
        )
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
        await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 200 ")
    names = [name for name, _ in body["headers"]]
    for dropped in (
        "Transfer_Encoding",
        "Content_Length",
        "Keep_Alive",
        "Proxy_Connection",
        "Proxy_Authorization",
        "X-Named-Hop",
    ):
        assert dropped not in names, dropped
    assert header_values(body, "Content-Length") == ["5"]
    assert header_values(body, "X_Custom") == ["kept"]
    assert body["size"] == 5


@pytest.mark.parametrize(("pass_token", "expected"), [(False, []), (True, ["Bearer abc.def.ghi"])])
async def test_authorization_is_forwarded_only_when_the_route_asks(
    upstream: TestServer, start_proxy: StartProxy, pass_token: bool, expected: list[str]
) -> None:
    """The client's bearer token reaches the upstream only on a route with pass_access_token."""
    client = await start_proxy(route_to(base_url(upstream), pass_access_token=pass_token))
    response = await client.get("/x", headers={"Authorization": "Bearer abc.def.ghi"})
    assert header_values(await echoed(response), "Authorization") == expected


async def test_session_cookie_and_its_chunks_are_removed_other_cookies_kept(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """idgate's session cookie never reaches an upstream; the application's own cookies do."""
    client = await start_proxy(route_to(base_url(upstream)))
    cookie = (
        "theme=dark; _idgate=sealed; _idgate_0=part0; _idgate_1=part1; __Host-_idgate=h; "
        "lang=en; _idgatex=app; _idgate_pref=app"
    )
    response = await client.get("/x", headers={"Cookie": cookie})
    assert header_values(await echoed(response), "Cookie") == [
        "theme=dark; lang=en; _idgatex=app; _idgate_pref=app"
    ]


async def test_cookie_header_is_dropped_when_only_session_cookies_were_sent(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """An upstream sees no Cookie header at all rather than an empty one."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get("/x", headers={"Cookie": "_idgate_0=a; _idgate_1=b"})
    assert header_values(await echoed(response), "Cookie") == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("_idgate", True),
        ("_idgate_0", True),
        ("_idgate_12", True),
        ("__Host-_idgate", True),
        ("__Secure-_idgate_3", True),
        ("_idgate_", False),
        ("_idgate_x", False),
        ("_idgate_٣", False),  # a non-ASCII digit is not a chunk index
        ("_IDGATE", False),
        ("x_idgate", False),
    ],
)
def test_session_cookie_names(name: str, expected: bool) -> None:
    """Only the session cookie, its numbered chunks and its prefixed forms count as idgate's."""
    assert is_session_cookie(name, SESSION_COOKIE) is expected


async def test_identity_headers_are_sent_and_nothing_copied_replaces_them(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """The upstream gets exactly one value per identity header: the one idgate computed."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get("/x", headers={"X-Authenticated-User": "mallory"})
    body = await echoed(response)
    for name, value in IDENTITY.items():
        assert header_values(body, name) == [value]


async def test_forwarded_headers_describe_the_client(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """X-Forwarded-For names the peer, -Proto the context's scheme, -Host the Host idgate got."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get("/x", headers={"Host": "tools.example.com:8443"})
    body = await echoed(response)
    assert header_values(body, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(body, "X-Forwarded-Proto") == ["https"]
    assert header_values(body, "X-Forwarded-Host") == ["tools.example.com:8443"]
    assert header_values(body, "Host") == [f"{upstream.host}:{upstream.port}"]


async def test_a_trusted_forwarding_chain_is_extended_with_the_peer(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """A trusted proxy's chain (accept drops anyone else's) is kept and extended with the peer."""
    client = await start_proxy(route_to(base_url(upstream)), client_ip="198.51.100.1")
    response = await client.get(
        "/x",
        headers={"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Host": "public.example.com"},
    )
    body = await echoed(response)
    assert header_values(body, "X-Forwarded-For") == ["198.51.100.1, 127.0.0.1"]
    assert header_values(body, "X-Forwarded-Host") == ["public.example.com"]


async def test_no_headers_are_invented_for_the_client(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """idgate invents no User-Agent, Accept, Accept-Encoding or Content-Type for the client."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.post(
        "/x",
        data=b"raw",
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    body = await echoed(response)
    for name in ("User-Agent", "Accept", "Accept-Encoding", "Content-Type"):
        assert header_values(body, name) == [], name


# --- request line -------------------------------------------------------------------------------


async def test_encoded_path_and_query_are_sent_byte_for_byte(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """The normalised, encoded path and the raw query arrive exactly as accept produced them."""
    client = await start_proxy(
        route_to(base_url(upstream)),
        upstream_path="/a%23b/%7Ec%2Fd",
        query="q=a%2Fb&x=%7E&empty=&q=2",
    )
    body = await echoed(await client.get("/anything"))
    assert body["target"] == "/a%23b/%7Ec%2Fd?q=a%2Fb&x=%7E&empty=&q=2"


async def test_a_hash_in_the_path_stays_encoded(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """`/a%23b` from the client arrives upstream as `/a%23b`, not cut at a fragment."""
    client = await start_proxy(route_to(base_url(upstream)))
    body = await echoed(await client.get("/a%23b"))
    assert body["target"] == "/a%23b"


async def test_upstream_base_path_is_prefixed_without_a_double_slash(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """An upstream with a base path receives base + path, joined by a single slash."""
    client = await start_proxy(route_to(f"{base_url(upstream)}/base/"))
    body = await echoed(await client.get("/x/y?z=1"))
    assert body["target"] == "/base/x/y?z=1"


async def test_method_is_forwarded(upstream: TestServer, start_proxy: StartProxy) -> None:
    """Whatever method the client used is the one the upstream sees."""
    client = await start_proxy(route_to(base_url(upstream)))
    body = await echoed(await client.request("PROPFIND", "/dav"))
    assert body["method"] == "PROPFIND"


# --- bodies -------------------------------------------------------------------------------------


async def test_large_upload_arrives_whole_with_its_length(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """A 5 MB upload reaches the upstream intact, still announced by Content-Length."""
    client = await start_proxy(route_to(base_url(upstream)))
    payload = PATTERN * (FIVE_MB // len(PATTERN))
    body = await echoed(await client.put("/upload", data=io.BytesIO(payload)))
    assert body["size"] == FIVE_MB
    assert body["sha256"] == hashlib.sha256(payload).hexdigest()
    assert header_values(body, "Content-Length") == [str(FIVE_MB)]
    assert header_values(body, "Transfer-Encoding") == []


async def test_chunked_upload_is_streamed_chunked(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """A body without Content-Length is streamed on to the upstream chunked, every byte of it."""
    client = await start_proxy(route_to(base_url(upstream)))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(FIVE_MB // len(PATTERN)):
            yield PATTERN

    body = await echoed(await client.post("/upload", data=chunks()))
    assert body["size"] == FIVE_MB
    assert body["sha256"] == hashlib.sha256(PATTERN * (FIVE_MB // len(PATTERN))).hexdigest()
    assert header_values(body, "Transfer-Encoding") == ["chunked"]


@pytest.mark.parametrize("length", ["yes", "no"])
async def test_large_download_arrives_whole(
    upstream: TestServer, start_proxy: StartProxy, length: str
) -> None:
    """A 5 MB response reaches the client intact, with the upstream's Content-Length if any."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get(f"/download?length={length}")
    assert response.status == 200
    content = await response.read()
    assert hashlib.sha256(content).digest() == (
        hashlib.sha256(PATTERN * (FIVE_MB // len(PATTERN))).digest()
    )
    expected_length = str(FIVE_MB) if length == "yes" else None
    assert response.headers.get("Content-Length") == expected_length


async def test_compressed_responses_pass_through_unchanged(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """gzip bytes and their Content-Encoding reach the client as the upstream sent them."""
    client = await start_proxy(route_to(base_url(upstream)), auto_decompress=False)
    response = await client.get("/gzip", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await response.read()) == b"hello " * 100


# --- response -----------------------------------------------------------------------------------


async def test_redirects_are_passed_to_the_client_not_followed(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """An upstream 302 is the client's to follow; idgate returns it as is."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get("/redirect", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere"


async def test_response_hop_by_hop_headers_are_dropped_others_kept(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """The upstream's connection headers stop at idgate; every Set-Cookie reaches the client."""
    client = await start_proxy(route_to(base_url(upstream)))
    response = await client.get("/hop")
    assert response.status == 200
    assert "X-Upstream-Hop" not in response.headers
    assert "Keep-Alive" not in response.headers
    assert "Proxy-Authenticate" not in response.headers
    assert response.headers["X-Kept"] == "yes"
    assert response.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]


async def test_upstream_latency_is_observed_per_route(
    upstream: TestServer, start_proxy: StartProxy, metrics: Metrics
) -> None:
    """Each forwarded request adds one upstream latency sample under its route's name."""
    client = await start_proxy(route_to(base_url(upstream)))
    await echoed(await client.get("/x"))
    samples = metrics.registry.get_sample_value(
        "idgate_upstream_duration_seconds_count", {"route": "app"}
    )
    assert samples == 1


# --- failures -----------------------------------------------------------------------------------


async def test_refused_connection_is_a_502_without_detail(start_proxy: StartProxy) -> None:
    """An upstream that refuses connections gives 502 and a message naming no host or port."""
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        port = closed_port.getsockname()[1]
        client = await start_proxy(route_to(f"http://127.0.0.1:{port}"))
        response = await client.get("/x")
        text = await response.text()
    assert response.status == 502
    assert text == "upstream unavailable"


async def test_upstream_that_never_answers_is_a_504(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """No response headers within the route's timeout gives 504."""
    client = await start_proxy(route_to(base_url(upstream), timeout_seconds=0.2))
    response = await client.get("/hang")
    assert response.status == 504
    assert await response.text() == "upstream timed out"
    assert upstream.app is not None
    assert upstream.app[STATE]["waiting"] is True


async def test_a_slow_upload_that_keeps_flowing_is_not_timed_out(
    upstream: TestServer, start_proxy: StartProxy
) -> None:
    """The header timeout restarts with each request-body chunk, so long uploads get through.

    The pauses make the upload outlast the timeout; they are not synchronisation.
    """
    client = await start_proxy(route_to(base_url(upstream), timeout_seconds=0.5))

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(4):
            await asyncio.sleep(0.25)
            yield b"x" * 1000

    body = await echoed(await client.post("/upload", data=trickle()))
    assert body["size"] == 4000


async def test_upstream_dying_mid_body_leaves_the_client_body_incomplete(
    upstream: TestServer, start_proxy: StartProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """A body cut off upstream is cut off for the client too, never passed off as complete."""
    client = await start_proxy(route_to(base_url(upstream)))
    with caplog.at_level(logging.WARNING, logger="idgate.forward"):
        response = await client.get("/broken")
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    [record] = [r for r in caplog.records if r.name == "idgate.forward"]
    message = record.getMessage()
    assert "route=app" in message
    assert str(upstream.port) not in message


async def test_a_decision_only_route_is_not_forwarded(start_proxy: StartProxy) -> None:
    """A route without an upstream answers 404 rather than guessing a destination."""
    client = await start_proxy(route_to(None))
    response = await client.get("/x")
    assert response.status == 404
