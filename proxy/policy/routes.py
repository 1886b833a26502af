"""Route matching: the first route, in the order written, whose host, path prefix and method match.

The semantics are exactly a linear scan of the routes. To keep the per-request cost flat as routes
grow, each route is filed once under its host kind (exact, `*.` suffix, any) and the first segment
of its path prefix (or "all paths" for `/`). A request looks only in the few buckets that could hold
a match, finds the first match in each (buckets keep written order), and takes the earliest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from proxy.config.model import Route


class _HostKind(Enum):
    EXACT = 1
    WILDCARD = 2
    ANY = 3


_HostKey = tuple[_HostKind, str]
_ANY_HOST: _HostKey = (_HostKind.ANY, "")
_ALL_PATHS: str | None = None
"""Segment key of the `/` prefix, which matches every path."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    index: int
    route: Route
    starts: str
    """Matching paths start with this: the prefix, plus "/" when it must end on a boundary."""
    whole: str | None
    """A path equal to this matches too: `/api` matches `/api` and `/api/x`, never `/apix`."""
    methods: frozenset[str] | None

    @classmethod
    def compile(cls, index: int, route: Route) -> _Entry:
        prefix = route.path
        on_boundary = not prefix.endswith("/")
        methods = route.methods
        return cls(
            index=index,
            route=route,
            starts=prefix + "/" if on_boundary else prefix,
            whole=prefix if on_boundary else None,
            methods=None if methods is None else frozenset(m.upper() for m in methods),
        )

    def matches(self, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return path.startswith(self.starts) or path == self.whole


class RouteTable:
    """Routes compiled once at config load; `match` is called on every request."""

    __slots__ = ("_buckets", "_wildcards")

    def __init__(self, routes: Sequence[Route]) -> None:
        buckets: dict[tuple[_HostKey, str | None], list[_Entry]] = {}
        wildcards: set[str] = set()
        for index, route in enumerate(routes):
            if not route.path.startswith("/"):
                raise ValueError(f"route {route.name!r}: path must start with '/'")
            host_key = _host_key(route.host)
            if host_key[0] is _HostKind.WILDCARD:
                wildcards.add(host_key[1])
            entry = _Entry.compile(index, route)
            buckets.setdefault((host_key, _segment_key(route.path)), []).append(entry)
        self._buckets = {key: tuple(entries) for key, entries in buckets.items()}
        self._wildcards = frozenset(wildcards)

    def match(self, *, host: str, path: str, method: str) -> Route | None:
        """The first route, in written order, for this lower-case host and normalised path."""
        # HTTP methods are case-sensitive, but an upstream may not treat them so: "get" must not
        # slip past a GET-only route to a later, laxer one.
        method = method.upper()
        best: _Entry | None = None
        segment = _first_segment(path)
        for host_key in self._host_keys(host):
            for segment_key in (segment, _ALL_PATHS):
                for entry in self._buckets.get((host_key, segment_key), ()):
                    if best is not None and entry.index > best.index:
                        break
                    if entry.matches(path, method):
                        best = entry
                        break
        return None if best is None else best.route

    def _host_keys(self, host: str) -> Iterator[_HostKey]:
        yield (_HostKind.EXACT, host)
        if self._wildcards:
            # `*.example.com` matches any subdomain at any depth, never the apex itself.
            dot = host.find(".", 1)
            while dot != -1:
                suffix = host[dot:]
                if suffix in self._wildcards:
                    yield (_HostKind.WILDCARD, suffix)
                dot = host.find(".", dot + 1)
        yield _ANY_HOST


def _host_key(host: str | None) -> _HostKey:
    if host is None:
        return _ANY_HOST
    # Lower-cased here so that a mixed-case config host cannot skip a strict route for a later one.
    host = host.lower()
    if host.startswith("*."):
        return (_HostKind.WILDCARD, host[1:])
    return (_HostKind.EXACT, host)


def _segment_key(prefix: str) -> str | None:
    """Every path a prefix matches has this first segment; `/` alone matches all paths."""
    return _ALL_PATHS if prefix == "/" else _first_segment(prefix)


def _first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:] if end == -1 else path[1:end]
