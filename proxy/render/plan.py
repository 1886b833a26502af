"""Which nginx server blocks and locations idgate's routes become, as data.

nginx picks a server by host and then the longest matching location; idgate takes the first route,
in the order written, whose host, path prefix and method match. The two orders differ, so each
location is given the routes idgate could choose for any path that reaches it (`expects`), and
idgate refuses a request it would match to any other route (`X-Idgate-Routes`): nginx and idgate
then agree on the route, or the request is refused.

- One server block per distinct route host (exact or `*.`), holding that host's routes and the
  host-less ones; one default server for every other host, holding the host-less routes.
- Each route path becomes locations: `/` and paths ending in `/` a prefix location; `/api` both
  `= /api` and `/api/` (idgate's `/api` matches `/api` and `/api/x`, never `/apix`). A server
  without a `/` route gets a `location /` that answers 404, as idgate would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.config.model import Route


class RenderError(Exception):
    """The routes cannot be expressed as nginx locations (the message says why and what to do)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """Where a location's requests go: an nginx `upstream` block and what `proxy_pass` adds."""

    name: str
    """The `upstream` block's name."""
    scheme: str
    address: str
    """`host:port` of the `server` line."""
    hostname: str
    """The host alone (the TLS server name of an https upstream)."""
    host: str
    """The `Host` header the tool gets: its own host (and port unless the scheme's default)."""
    prefix: str
    """The URL's path without its trailing slash, put before the judged path (`/base/x`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    match: str
    """What follows `location`: `/`, `/api/` or `= /api`."""
    expects: tuple[str, ...]
    """The routes idgate may choose for a path that reaches this location (written order)."""
    upstream: Upstream | None
    """None: no route covers it, nginx answers 404."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    names: tuple[str, ...]
    """`server_name` values; `_` for the default server."""
    default: bool
    locations: tuple[Location, ...]


def plan_servers(
    routes: Sequence[Route], *, default_name: str, upstreams: Mapping[str, str]
) -> tuple[Server, ...]:
    """The servers for these routes; `upstreams` gives (or replaces) routes' upstream URLs by
    route name. Raises RenderError when a location's routes have no or different upstreams."""
    unknown = sorted(set(upstreams) - {route.name for route in routes})
    if unknown:
        raise RenderError(f"--upstream names no route: {', '.join(unknown)}")
    blocks = _Upstreams(routes, upstreams)
    hosts = list(dict.fromkeys(route.host.lower() for route in routes if route.host is not None))
    servers = [
        Server(
            names=(host,),
            default=False,
            locations=_locations([r for r in routes if _applies(r, host)], blocks),
        )
        for host in hosts
    ]
    servers.append(
        Server(
            names=(default_name,),
            default=True,
            locations=_locations([r for r in routes if r.host is None], blocks),
        )
    )
    return tuple(servers)


def upstream_blocks(servers: Sequence[Server]) -> tuple[Upstream, ...]:
    """Every upstream some location proxies to, once each, in order of first use."""
    seen: dict[str, Upstream] = {}
    for server in servers:
        for location in server.locations:
            if location.upstream is not None:
                seen.setdefault(location.upstream.name, location.upstream)
    return tuple(seen.values())


def _applies(route: Route, host: str) -> bool:
    """Whether idgate could match `route` for a request to a host that nginx serves in the
    server block named `host` (exact, or `*.suffix` standing for all its subdomains)."""
    if route.host is None:
        return True
    own = route.host.lower()
    if own == host:
        return True
    if own.startswith("*."):
        suffix = own[1:]
        return host.endswith(suffix) and host != suffix[1:]
    return False


def _locations(routes: Sequence[Route], blocks: _Upstreams) -> tuple[Location, ...]:
    matches: list[str] = []
    for route in routes:
        path = route.path
        if path == "/" or path.endswith("/"):
            matches.append(path)
        else:
            matches.extend((f"= {path}", f"{path}/"))
    if "/" not in matches:
        matches.append("/")
    locations = []
    for match in dict.fromkeys(matches):
        expects = _expected(routes, match)
        locations.append(
            Location(
                match=match,
                expects=tuple(route.name for route in expects),
                upstream=blocks.common(expects, match) if expects else None,
            )
        )
    return tuple(locations)


def _expected(routes: Sequence[Route], match: str) -> list[Route]:
    """The routes idgate may choose for some path reaching location `match`: those whose prefix
    covers the whole location, in written order, up to the first that takes every method (a
    route whose prefix is longer has a location of its own)."""
    exact = match.startswith("= ")
    at = match.removeprefix("= ")
    chosen = []
    for route in routes:
        starts = route.path if route.path.endswith("/") else route.path + "/"
        if at.startswith(starts) or (exact and at == route.path):
            chosen.append(route)
            if route.methods is None:
                break
    return chosen


class _Upstreams:
    """One `upstream` block per distinct upstream origin, named in order of first use."""

    def __init__(self, routes: Sequence[Route], overrides: Mapping[str, str]) -> None:
        self._urls = {route.name: overrides.get(route.name, route.upstream) for route in routes}
        self._blocks: dict[tuple[str, str, int, str], Upstream] = {}

    def common(self, routes: Sequence[Route], match: str) -> Upstream:
        missing = [route.name for route in routes if self._urls[route.name] is None]
        if missing:
            raise RenderError(
                f"route {missing[0]!r} has no upstream (a decision-only route): "
                f"name the tool nginx sends it to with --upstream {missing[0]}=URL"
            )
        urls = {self._urls[route.name] for route in routes}
        if len(urls) > 1:
            names = ", ".join(route.name for route in routes)
            raise RenderError(
                f"routes {names} share location {match!r} (they differ only in methods) but "
                "not their upstream: nginx cannot choose a tool by idgate's route; give them "
                "one upstream, or distinct paths"
            )
        return self._block(urls.pop() or "")

    def _block(self, url: str) -> Upstream:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        hostname = parts.hostname or ""
        default_port = 443 if scheme == "https" else 80
        port = parts.port or default_port
        bracketed = f"[{hostname}]" if ":" in hostname else hostname
        prefix = parts.path.rstrip("/")
        key = (scheme, bracketed, port, prefix)
        block = self._blocks.get(key)
        if block is None:
            block = Upstream(
                name=f"idgate_upstream_{len(self._blocks) + 1}",
                scheme=scheme,
                address=f"{bracketed}:{port}",
                hostname=hostname,
                host=bracketed if port == default_port else f"{bracketed}:{port}",
                prefix=prefix,
            )
            self._blocks[key] = block
        return block
