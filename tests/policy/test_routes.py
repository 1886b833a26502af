"""Route matching: first match in written order, on host, segment-bounded prefix and method."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from proxy.config.model import Policy, Route
from proxy.policy.routes import RouteTable


def route(
    name: str, path: str = "/", host: str | None = None, methods: Iterable[str] | None = None
) -> Route:
    return Route(
        name=name,
        path=path,
        host=host,
        methods=None if methods is None else frozenset(methods),
        policy=Policy(public=True),
    )


def matched(
    table: RouteTable, path: str, *, host: str = "app.example.com", method: str = "GET"
) -> str | None:
    found = table.match(host=host, path=path, method=method)
    return None if found is None else found.name


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        ("/api", "/api", True),
        ("/api", "/api/", True),
        ("/api", "/api/x/y", True),
        ("/api", "/apix", False),
        ("/api", "/ap", False),
        ("/api", "/", False),
        ("/api/", "/api/x", True),
        ("/api/", "/api/", True),
        ("/api/", "/api", False),
        ("/api/v1", "/api/v1/users", True),
        ("/api/v1", "/api/v10", False),
        ("/", "/", True),
        ("/", "/anything/at/all", True),
    ],
)
def test_path_prefix_matches_on_a_segment_boundary(prefix: str, path: str, matches: bool) -> None:
    """A prefix matches itself and paths below it, never a longer sibling name."""
    table = RouteTable([route("r", prefix)])
    assert (matched(table, path) == "r") is matches


@pytest.mark.parametrize(
    ("route_host", "host", "matches"),
    [
        ("app.example.com", "app.example.com", True),
        ("app.example.com", "other.example.com", False),
        ("App.Example.com", "app.example.com", True),
        ("*.example.com", "app.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*.example.com", "example.com.evil.io", False),
        (None, "anything.io", True),
        (None, "", True),
    ],
)
def test_host_matches_exactly_or_by_wildcard_subdomain(
    route_host: str | None, host: str, matches: bool
) -> None:
    """An exact host matches only itself; `*.example.com` matches subdomains, not the apex."""
    table = RouteTable([route("r", host=route_host)])
    assert (matched(table, "/", host=host) == "r") is matches


def test_methods_restrict_a_route_and_none_means_any() -> None:
    """A route with methods matches only those (case-insensitively); without, any method."""
    table = RouteTable([route("writes", methods={"POST", "PUT"}), route("rest")])
    assert matched(table, "/x", method="POST") == "writes"
    assert matched(table, "/x", method="post") == "writes"
    assert matched(table, "/x", method="GET") == "rest"


def test_first_written_route_wins_over_a_more_specific_later_one() -> None:
    """Routes match in the order written, not by longest prefix."""
    table = RouteTable([route("catch-all"), route("admin", "/admin")])
    assert matched(table, "/admin/users") == "catch-all"


def test_specific_route_before_catch_all_takes_its_paths() -> None:
    """A specific route written first takes its paths; the rest fall through to the catch-all."""
    table = RouteTable(
        [
            route("admin", "/admin", host="app.example.com"),
            route("wild", "/", host="*.example.com"),
            route("any", "/"),
        ]
    )
    assert matched(table, "/admin/x") == "admin"
    assert matched(table, "/other") == "wild"
    assert matched(table, "/admin", host="other.example.com") == "wild"
    assert matched(table, "/admin", host="elsewhere.io") == "any"


def test_no_matching_route_is_none() -> None:
    """A request no route covers gets None (the proxy answers 404)."""
    table = RouteTable([route("api", "/api", host="app.example.com")])
    assert matched(table, "/web") is None
    assert matched(table, "/api", host="other.example.com") is None
    assert RouteTable([]).match(host="a", path="/", method="GET") is None


def test_refuses_a_route_path_without_a_leading_slash() -> None:
    """A route prefix that is not an absolute path is a construction error, not a silent miss."""
    with pytest.raises(ValueError, match="must start with '/'"):
        RouteTable([route("bad", "api")])


def _naive_match(routes: list[Route], host: str, path: str, method: str) -> str | None:
    """The specification: scan in written order, first full match wins."""
    for candidate in routes:
        route_host = None if candidate.host is None else candidate.host.lower()
        if route_host is None:
            host_ok = True
        elif route_host.startswith("*."):
            host_ok = host.endswith(route_host[1:]) and len(host) > len(route_host) - 1
        else:
            host_ok = host == route_host
        prefix = candidate.path
        if prefix.endswith("/"):
            path_ok = path.startswith(prefix)
        else:
            path_ok = path == prefix or path.startswith(prefix + "/")
        method_ok = candidate.methods is None or method.upper() in candidate.methods
        if host_ok and path_ok and method_ok:
            return candidate.name
    return None


_HOSTS = ["a.example.com", "b.example.com", "x.a.example.com", "example.com", "other.io", ""]
_ROUTE_HOSTS = [None, None, "a.example.com", "example.com", "*.example.com", "*.a.example.com"]
_SEGMENTS = ["api", "ap", "apix", "v1", "v10", "admin", "x"]
_METHODS = ["GET", "POST", "PUT", "get"]


def _random_path(rng: random.Random, *, for_route: bool) -> str:
    segments = [rng.choice(_SEGMENTS) for _ in range(rng.randrange(4))]
    path = "/" + "/".join(segments)
    if segments and rng.random() < 0.3:
        path += "/"
    return "/" if for_route and rng.random() < 0.1 else path


def _random_route(rng: random.Random, index: int) -> Route:
    methods = None if rng.random() < 0.6 else rng.sample(["GET", "POST", "PUT"], rng.randint(1, 2))
    return route(
        f"r{index}",
        _random_path(rng, for_route=True),
        host=rng.choice(_ROUTE_HOSTS),
        methods=methods,
    )


def test_matches_like_a_linear_scan_for_random_tables() -> None:
    """The compiled table agrees with the first-match-in-written-order scan on random inputs."""
    rng = random.Random(20240601)  # noqa: S311 (seeded on purpose: reproducible cases)
    for _ in range(300):
        routes = [_random_route(rng, index) for index in range(rng.randrange(1, 25))]
        table = RouteTable(routes)
        for _ in range(40):
            host = rng.choice(_HOSTS)
            path = _random_path(rng, for_route=False)
            method = rng.choice(_METHODS)
            expected = _naive_match(routes, host, path, method)
            assert matched(table, path, host=host, method=method) == expected, (
                routes,
                host,
                path,
                method,
            )


def test_a_thousand_routes_match_the_same_as_a_scan() -> None:
    """A large table with per-host routes keeps the first-match semantics."""
    rng = random.Random(5)  # noqa: S311 (seeded on purpose: reproducible cases)
    routes = [
        route(f"r{index}", f"/svc{index % 50}/{rng.choice(_SEGMENTS)}", host=f"h{index % 20}.io")
        for index in range(1000)
    ]
    routes.append(route("fallback"))
    table = RouteTable(routes)
    for _ in range(2000):
        host = f"h{rng.randrange(25)}.io"
        path = f"/svc{rng.randrange(55)}/{rng.choice(_SEGMENTS)}/z"
        assert matched(table, path, host=host) == _naive_match(routes, host, path, "GET")
