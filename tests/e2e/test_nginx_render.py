"""nginx configured by `idgate render nginx` in front of a real `idgate serve`: nginx proxies,
idgate decides, and nginx reuses a decision only as long as idgate says it holds.

One idgate (decision cache ceiling CEILING seconds) and one nginx serve the module; each test
starts the upstream on the port both were configured with. The upstream records the raw path it
received, so a path trick can be checked against the path idgate's decision-log line judged.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final
from urllib.parse import quote, unquote

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpRawServer

from proxy.config.load import load_settings
from proxy.config.model import ClientCertificateSettings, ForwardAuthSettings, Policy, Route, Rule
from proxy.demo.ports import free_loopback_ports
from proxy.render.nginx import NginxOptions, render_nginx
from proxy.runtime import build_store
from proxy.sessions.cookies import CookieJar
from proxy.sessions.model import SessionRecord
from tests.e2e.conftest import OidcProvider
from tests.e2e.gateways import Gateway, gateway_document, nginx_argv, nginx_serving
from tests.e2e.idgate_process import (
    SECRET_ENVIRONMENT,
    Entry,
    IdgateProcess,
    running_idgate,
)
from tests.support.settings import make_settings

CEILING: Final = 30
#: RFC 3986 3.3, pchar beyond the unreserved set: the judged path encoded canonically.
PCHAR: Final = "/!$&'()*+,;=:@"
IDENTITY: Final = ("x-authenticated-user", "x-authenticated-email", "x-authenticated-groups")


class Recorder:
    """The tool behind nginx: answers every request with 200, records its raw path and headers,
    and echoes WebSocket messages."""

    def __init__(self) -> None:
        self.received: list[tuple[str, CIMultiDict[str]]] = []

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            self.received.append((request.raw_path, CIMultiDict(request.headers)))
            async for message in socket:
                await socket.send_str(f"echo {message.data}")
            return socket
        self.received.append((request.raw_path, CIMultiDict(request.headers)))
        return web.json_response({"raw_path": request.raw_path})


@pytest.fixture(scope="module")
def tool_port() -> int:
    return free_loopback_ports(1)[0]


@pytest.fixture
async def tool(aiohttp_raw_server: AiohttpRawServer, tool_port: int) -> Recorder:
    recorder = Recorder()
    await aiohttp_raw_server(recorder.handle, port=tool_port)
    return recorder


@pytest.fixture(scope="module")
def gate(
    oidc_provider: OidcProvider, tool_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdgateProcess]:
    document = gateway_document(oidc_provider.issuer, f"http://127.0.0.1:{tool_port}")
    document["forward_auth"] = {"decision_cache_seconds": CEILING}
    document["session"]["refresh_interval"] = "1h"
    with running_idgate(tmp_path_factory.mktemp("idgate"), document) as process:
        yield process


@pytest.fixture(scope="module")
def nginx(gate: IdgateProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_loopback_ports(1)[0]
    site = workdir / "idgate.conf"
    site.write_text(rendered(gate, workdir, port), encoding="utf-8")
    with nginx_serving(workdir, site, port=port) as gateway:
        yield gateway


def rendered(gate: IdgateProcess, workdir: Path, port: int) -> str:
    """`idgate render nginx` for the module's idgate, listening on loopback `port`."""
    settings = load_settings(gate.config_path, SECRET_ENVIRONMENT)
    options = NginxOptions(
        listen=f"127.0.0.1:{port}",
        idgate=f"127.0.0.1:{gate.port}",
        cache_path=str(workdir / "decisions"),
    )
    return render_nginx(settings, options)


async def get(
    gateway: Gateway, path: str, *, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str]]:
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.url + path, headers=sent, allow_redirects=False) as resp,
    ):
        await resp.read()
        return resp.status, dict(resp.headers)


async def raw_get(
    gateway: Gateway, target: str, headers: dict[str, str], *, cookies: Sequence[str] = ()
) -> int:
    """The status of a GET whose request target is sent byte for byte as given, with each of
    `cookies` in a Cookie header of its own (characters up to U+00FF as those bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Cookie: {value}" for value in cookies]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
    return int(status_line.split()[1])


def unique(prefix: str) -> str:
    return f"{prefix}/{secrets.token_hex(8)}"


async def decisions_for(gate: IdgateProcess, gateway: Gateway, path: str) -> list[Entry]:
    """Every decision-log line for `path`, once idgate has logged all earlier requests: a
    later, uncached request is waited for first (the log keeps the order of requests)."""
    sentinel = unique("/admin/sentinel")
    await get(gateway, sentinel, Accept="application/json")  # a 401: never cached, never forwarded
    await gate.wait_for_decision(sentinel)
    return [entry for entry in gate.decision_log() if entry.get("path") == path]


async def session_cookie(
    gate: IdgateProcess, *, user: str, last_seen_ago: float = 0, padding: int = 0
) -> str:
    """A `Cookie` header with a live session for `user` (sealed by idgate's own code); seen
    `last_seen_ago` seconds ago (long enough ago, and every answer rewrites the cookie); an ID
    token `padding` characters long seals it into chunks."""
    settings = load_settings(gate.config_path, SECRET_ENVIRONMENT)
    now = time.time()
    record = SessionRecord(
        session_id=secrets.token_urlsafe(24),
        subject=user,
        provider_sid=secrets.token_hex(16),
        user=user,
        email=f"{user}@example.com",
        groups=frozenset({"engineering"}),
        claims=MappingProxyType({"sub": user, "email": f"{user}@example.com"}),
        id_token="x" * padding or "unused",
        access_token="unused",
        refresh_token="unused",
        created_at=now - last_seen_ago,
        last_seen_at=now - last_seen_ago,
        verified_at=now,
    )
    store = build_store(settings, CookieJar.from_settings(settings))
    changes = await store.save(record, {}, max_age=settings.session.lifetime_seconds)
    return "; ".join(f"{change.name}={change.value}" for change in changes if change.value)


async def test_allowed_request_reaches_the_tool_with_the_identity(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """bob's token reaches the tool through nginx, with the identity idgate found and the path
    and query as asked."""
    token = await oidc_provider.token_for_user("bob")

    status, _ = await get(nginx, "/tools/report?week=3", token=token)

    assert status == 200
    raw_path, headers = tool.received[-1]
    assert raw_path == "/tools/report?week=3"
    lowered = {name.lower(): value for name, value in headers.items()}
    assert [lowered[name] for name in IDENTITY] == ["bob", "bob@example.com", "engineering"]
    assert lowered["x-authenticated-assertion"].count(".") == 2


async def test_denied_request_is_refused_and_never_reaches_the_tool(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """bob is not an admin: /admin is 403 and the tool sees nothing."""
    token = await oidc_provider.token_for_user("bob")

    status, _ = await get(nginx, "/admin/users", token=token)

    assert status == 403
    assert tool.received == []


async def test_browser_is_sent_to_sign_in_and_api_client_gets_401(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """Without credentials a browser is redirected to the provider, an API client gets 401 with
    idgate's Bearer challenge."""
    browser, browser_headers = await get(nginx, "/tools/page", Accept="text/html")
    api, api_headers = await get(nginx, "/tools/page", Accept="application/json")

    assert browser == 302
    assert browser_headers["Location"].startswith(f"{oidc_provider.issuer}/auth?")
    assert api == 401
    assert api_headers["WWW-Authenticate"] == 'Bearer realm="idgate"'
    assert "Location" not in api_headers
    assert tool.received == []


async def test_client_sent_identity_headers_never_reach_the_tool(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """Spoofed identity headers, in `-` and `_` spelling, are gone upstream: replaced by the real
    identity, or absent on a public route."""
    spoofed = {
        "X-Authenticated-User": "root",
        "X-Auth-Request-User": "root",
        "X-Forwarded-User": "root",
        "Remote-User": "root",
    }
    underscored = {name.replace("-", "_"): value for name, value in spoofed.items()}
    token = await oidc_provider.token_for_user("bob")

    for headers in (spoofed, underscored):
        assert await raw_get(nginx, "/public/page", headers) == 200
        assert await raw_get(nginx, "/tools/page", {**headers, **bearer(token)}) == 200

    for _, received in tool.received:
        names = {name.lower().replace("_", "-") for name in received}
        assert not names & {"x-auth-request-user", "x-forwarded-user", "remote-user"}
        # Every copy, repeated ones included: a spoofed value after the real one counts too.
        assert set(received.getall("X-Authenticated-User", [])) <= {"bob"}
        assert "X_Authenticated_User" not in received


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def chunk_names(cookie: str) -> list[str]:
    return [pair.partition("=")[0] for pair in cookie.split("; ")]


async def test_a_session_in_many_chunks_never_reaches_the_tool(
    nginx: Gateway, tool: Recorder, gate: IdgateProcess
) -> None:
    """A live session sealed into six chunks, between the tool's own cookies, signs dave in
    through nginx; the tool gets dave's identity and exactly its own cookies."""
    session = await session_cookie(gate, user="dave", padding=15_000)
    assert chunk_names(session) == [f"_idgate_{index}" for index in range(6)]

    status = await raw_get(
        nginx, "/tools/chunked", {}, cookies=[f"theme=dark; {session}; my_idgate=mine"]
    )

    assert status == 200
    [(_, received)] = tool.received
    assert received["X-Authenticated-User"] == "dave"
    assert received.getall("Cookie") == ["theme=dark; my_idgate=mine"]


@pytest.mark.parametrize(("extra", "to_tool"), [(3, ["theme=dark; lang=en"]), (4, [])])
async def test_extra_copies_are_taken_out_or_the_tool_gets_no_cookie(
    nginx: Gateway, tool: Recorder, gate: IdgateProcess, extra: int, to_tool: list[str]
) -> None:
    """Copies a client adds in a second Cookie header are taken out with the six-chunk session,
    up to the nine idgate cookies a browser can carry; one more and the tool gets no Cookie at
    all (closed), while idgate, which reads the first header, still signs dave in."""
    session = await session_cookie(gate, user="dave", padding=15_000)
    copies = "; ".join(f"_idgate_state_{index}=copy" for index in range(extra))

    status = await raw_get(
        nginx, "/tools/copies", {}, cookies=[f"theme=dark; {session}", f"{copies}; lang=en"]
    )

    assert status == 200
    [(_, received)] = tool.received
    assert received["X-Authenticated-User"] == "dave"
    assert received.getall("Cookie", []) == to_tool


#: Cookie headers sent on the public route, and the Cookie header the tool must get of each.
TOOL_COOKIES: Final = {
    "_idgate=S": None,
    "_idgate=S; theme=dark": "theme=dark",
    "theme=dark; _idgate=S": "theme=dark",
    "theme=dark; _idgate=S; lang=en": "theme=dark; lang=en",
    "theme=dark;_idgate_0=S;lang=en": "theme=dark;lang=en",
    "theme=dark; _idgate =S;\t_idgate_1 = S ;  lang=en": "theme=dark;  lang=en",
    # U+00A0 in UTF-8: aiohttp strips it from a name like a space.
    "theme=dark;\xc2\xa0_idgate=S; _idgate; lang=en": "theme=dark; lang=en",
    "__Host-_idgate=S; theme=dark; __Secure-_idgate_7=S": "theme=dark",
    "__Secure-_idgate_state_0a1b=S; _idgate_0012=S; theme=dark": "theme=dark",
    # Names that only contain idgate's are the tool's own.
    "my_idgate=1; _idgate_extra=2; x_idgate_0=3; _idgate_stateful=4; __Host-_idgatex=5": (
        "my_idgate=1; _idgate_extra=2; x_idgate_0=3; _idgate_stateful=4; __Host-_idgatex=5"
    ),
    "_idgate0=1; _idgate=S; idgate=2": "_idgate0=1; idgate=2",
    "; ".join(["theme=dark", *(f"_idgate_{index}=S" for index in range(9))]): "theme=dark",
    "; ".join(["theme=dark", *(f"_idgate_{index}=S" for index in range(10))]): None,
}


@pytest.mark.parametrize("sent", list(TOOL_COOKIES))
async def test_the_tool_never_gets_an_idgate_cookie(
    nginx: Gateway, tool: Recorder, sent: str
) -> None:
    """Whatever the position, spacing, prefix or count of idgate's cookies, the tool gets its
    own cookies byte for byte and none of idgate's, or no Cookie header at all."""
    assert await raw_get(nginx, "/public/cookies", {}, cookies=[sent]) == 200

    [(_, received)] = tool.received
    expected = TOOL_COOKIES[sent]
    assert received.getall("Cookie", []) == ([] if expected is None else [expected])


async def test_websocket_passes_through_the_generated_config(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """An authorized WebSocket upgrade reaches the tool and messages flow both ways."""
    token = await oidc_provider.token_for_user("bob")

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{nginx.url}/tools/socket", headers=bearer(token)) as socket,
    ):
        await socket.send_str("hello")
        message = await socket.receive(timeout=5)

    assert message.data == "echo hello"
    assert tool.received[-1][0] == "/tools/socket"


async def test_a_cross_site_websocket_is_refused(
    nginx: Gateway, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """A handshake from another origin is refused (Cross-Site WebSocket Hijacking); one from
    nginx's own origin opens."""
    token = await oidc_provider.token_for_user("bob")

    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                f"{nginx.url}/tools/socket", headers=bearer(token), origin="https://evil.example"
            )
        async with http.ws_connect(
            f"{nginx.url}/tools/socket", headers=bearer(token), origin=nginx.url
        ) as socket:
            await socket.send_str("same origin")
            message = await socket.receive(timeout=5)

    assert refused.value.status == 403
    assert message.data == "echo same origin"
    assert len(tool.received) == 1


async def test_websocket_without_credentials_is_refused(nginx: Gateway, tool: Recorder) -> None:
    """An upgrade without credentials is refused before the tool sees it."""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{nginx.url}/tools/socket")

    assert refused.value.status == 401
    assert tool.received == []


#: Path tricks from the core path (tests/stages/test_paths.py), sent raw, as bob (allowed on
#: every path but /admin). These reach the tool, with the path idgate judged:
FORWARDED_TRICKS: Final = (
    "/tools/a/../b",
    "/tools/./x",
    "/tools//x",
    "//tools/x",
    "/tools/x/..",
    "/admin/../tools/x",
    "/tools/a%20b",
    "/tools/caf%C3%A9",
    "/tools/a%3Fb?x=1",
    "/tools/a%23b",
    "/tools/%252e%252e/admin",
    "/tools/%41%42c",
    "/Admin/x",
)
#: These are refused, by nginx (400: above the root, NUL, bad escapes) or idgate (403: encoded
#: separators, backslashes, `..;`, control characters, invalid UTF-8, or /admin for bob).
REFUSED_TRICKS: Final = (
    "/%2e%2e/%2e%2e/tools/x",
    "/tools/%2e%2e/admin",
    "/tools/%2E%2E/%2E%2E/admin/x",
    "/tools/.%2e/admin",
    "/public/../admin",
    "/tools/..%2fadmin",
    "/tools/a%2Fb",
    "/tools/..%5cadmin",
    "/tools/a%5Cb",
    "/tools/\\..\\admin",
    "/tools/..;/admin",
    "/public/..;/admin",
    "/tools/.;/x",
    "/tools/%00x",
    "/tools/a%0d%0ab",
    "/tools/a%09b",
    "/tools/a%7fb",
    "/tools/a%zz",
    "/tools/%c3%28",
    "/admin%2f",
    "/tools/a/./../../admin",
)


@pytest.mark.parametrize("target", FORWARDED_TRICKS + REFUSED_TRICKS)
async def test_the_tool_receives_exactly_the_path_idgate_judged(
    nginx: Gateway, gate: IdgateProcess, tool: Recorder, oidc_provider: OidcProvider, target: str
) -> None:
    """Whatever the path trick, the request is refused, or the path the tool receives is the
    path idgate's decision-log line judged (in its encoded form)."""
    token = await oidc_provider.token_for_user("bob")
    request_id = secrets.token_hex(8)

    status = await raw_get(nginx, target, {**bearer(token), "X-Request-Id": request_id})

    if target in REFUSED_TRICKS:
        assert status in (400, 403), status
        assert tool.received == []
        return
    assert status == 200
    line = await gate.wait_for_entry(lambda entry: entry.get("request_id") == request_id)
    assert line["status"] == 202
    assert len(tool.received) == 1
    forwarded, _, query = tool.received[0][0].partition("?")
    assert unquote(forwarded) == line["path"]
    assert forwarded == quote(line["path"], safe=PCHAR)
    assert query == target.partition("?")[2]
    assert not f"{line['path']}/".startswith("/admin/")


async def test_a_cached_allow_is_reused_within_the_ceiling(
    nginx: Gateway, gate: IdgateProcess, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """Five requests with one token: nginx asks idgate once and the tool gets all five."""
    token = await oidc_provider.token_for_user("bob")
    path = unique("/tools/cached")

    statuses = [(await get(nginx, path, token=token))[0] for _ in range(5)]

    assert statuses == [200] * 5
    assert len(tool.received) == 5
    assert len(await decisions_for(gate, nginx, path)) == 1


async def test_a_cached_allow_is_never_served_to_another_credential(
    nginx: Gateway, gate: IdgateProcess, tool: Recorder, oidc_provider: OidcProvider
) -> None:
    """After bob's allow is cached, carol's token, no token, a session cookie and bob's token
    with a cookie added are each judged by idgate on their own: carol (example.org) is refused."""
    bob = await oidc_provider.token_for_user("bob")
    carol = await oidc_provider.token_for_user("carol")
    cookie = await session_cookie(gate, user="dave")
    path = unique("/tools/shared")

    first, _ = await get(nginx, path, token=bob)
    as_carol, _ = await get(nginx, path, token=carol)
    anonymous, _ = await get(nginx, path, Accept="application/json")
    with_session, _ = await get(nginx, path, Cookie=cookie)
    bob_with_cookie, _ = await get(nginx, path, token=bob, Cookie="theme=dark")
    again, _ = await get(nginx, path, token=bob)

    assert (first, as_carol, anonymous, with_session, bob_with_cookie, again) == (
        200,
        403,
        401,
        200,
        200,
        200,
    )
    users = [entry["user"] for entry in await decisions_for(gate, nginx, path)]
    assert users == ["bob", "carol", None, "dave", "bob"]
    assert [headers.get("X-Authenticated-User") for _, headers in tool.received] == [
        "bob",
        "dave",
        "bob",
        "bob",
    ]


async def test_an_answer_that_sets_a_cookie_is_never_cached(
    nginx: Gateway, gate: IdgateProcess, tool: Recorder
) -> None:
    """A session idgate rewrites on every check (its last use is long ago) is judged every
    time, and each browser gets its own cookie, never a replayed one."""
    cookie = await session_cookie(gate, user="dave", last_seen_ago=1800)
    path = unique("/tools/touched")

    answers = [await get(nginx, path, Cookie=cookie) for _ in range(3)]

    assert [status for status, _ in answers] == [200, 200, 200]
    assert all("Set-Cookie" in headers for _, headers in answers)
    assert len(await decisions_for(gate, nginx, path)) == 3


@pytest.mark.parametrize(("user", "status"), [(None, 401), ("bob", 403)])
async def test_refusals_are_never_cached(
    *,
    nginx: Gateway,
    gate: IdgateProcess,
    tool: Recorder,
    oidc_provider: OidcProvider,
    user: str | None,
    status: int,
) -> None:
    """A 401 and a 403 are asked of idgate again on every request."""
    token = None if user is None else await oidc_provider.token_for_user(user)
    path = unique("/admin/refused")

    statuses = [
        (await get(nginx, path, token=token, Accept="application/json"))[0] for _ in range(3)
    ]

    assert statuses == [status] * 3
    assert len(await decisions_for(gate, nginx, path)) == 3
    assert tool.received == []


def _route(name: str, **fields: object) -> Route:
    values: dict[str, object] = {"upstream": "http://127.0.0.1:9000", "policy": Policy(public=True)}
    return Route(name=name, **(values | fields))  # type: ignore[arg-type]


#: Route sets `nginx -t` must accept once rendered.
ROUTE_SETS: Final = {
    "hosts-wildcards-and-paths": (
        _route("grafana", host="grafana.example.com", upstream="http://localhost:3000/base/"),
        _route("wiki", host="*.wiki.example.com", path="/docs/"),
        _route("reads", path="/api", methods=frozenset({"GET"})),
        _route("api", path="/api", policy=Policy(allow=Rule(authenticated=True))),
        _route("odd", path='/a;b=c/d:e@f/"x"{}'),
        _route("ipv6", path="/six", upstream="http://[::1]:9000"),
        _route("tls", path="/tls", upstream="https://localhost"),
        _route("everything"),
    ),
    "only-hosts": (_route("one", host="one.example.com"), _route("two", host="Two.Example.com")),
    "one-route": (_route("all"),),
}


@pytest.mark.parametrize("name", list(ROUTE_SETS))
@pytest.mark.parametrize("ceiling", [0, 5])
def test_nginx_accepts_what_is_rendered(tmp_path: Path, name: str, ceiling: int) -> None:
    """`nginx -t` passes on the rendered config for each route set, with the decision cache
    on and off and a client-certificate header configured."""
    settings = make_settings(
        "https://login.example.com",
        "http://127.0.0.1:9000",
        routes=ROUTE_SETS[name],
        forward_auth=ForwardAuthSettings(decision_cache_seconds=ceiling),
        client_certificates=ClientCertificateSettings(forwarded_header="X-Forwarded-Client-Cert"),
        prefix="/_sso",
    )
    site = tmp_path / "site.conf"
    options = NginxOptions(listen="127.0.0.1:8080", cache_path=str(tmp_path / "cache"))
    site.write_text(render_nginx(settings, options), encoding="utf-8")

    checked = subprocess.run(
        [*nginx_argv(tmp_path, site), "-t"], capture_output=True, text=True, timeout=30, check=False
    )

    assert checked.returncode == 0, checked.stderr
