"""Which server blocks and locations routes become, and which routes each location expects."""

from __future__ import annotations

import pytest

from proxy.config.model import Policy, Route
from proxy.render.plan import RenderError, Server, plan_servers

TOOL = "http://tool.internal:8080"
OPEN = Policy(public=True)


def route(name: str, path: str = "/", **fields: object) -> Route:
    values: dict[str, object] = {"upstream": TOOL, "policy": OPEN} | fields
    return Route(name=name, path=path, **values)  # type: ignore[arg-type]


def locations(server: Server) -> dict[str, tuple[str, ...]]:
    return {location.match: location.expects for location in server.locations}


def test_one_server_per_host_and_a_default_for_the_rest() -> None:
    """Each distinct host gets a server block with its routes and the host-less ones; the
    default server gets only the host-less routes."""
    servers = plan_servers(
        (
            route("grafana", host="grafana.example.com"),
            route("wiki", host="*.wiki.example.com"),
            route("status", "/status"),
        ),
        default_name="_",
        upstreams={},
    )
    assert [(server.names, server.default) for server in servers] == [
        (("grafana.example.com",), False),
        (("*.wiki.example.com",), False),
        (("_",), True),
    ]
    # grafana's `/` comes first: on its host it is the route for /status as well.
    assert locations(servers[0]) == {
        "/": ("grafana",),
        "= /status": ("grafana",),
        "/status/": ("grafana",),
    }
    assert locations(servers[2]) == {"= /status": ("status",), "/status/": ("status",), "/": ()}
    assert servers[2].locations[-1].upstream is None, "no route covers /: nginx answers 404"


def test_a_wildcard_route_applies_to_the_hosts_below_it() -> None:
    """`*.example.com` serves a.example.com too, so it is in that host's server block."""
    servers = plan_servers(
        (route("one", host="a.example.com", path="/a"), route("all", host="*.example.com")),
        default_name="_",
        upstreams={},
    )
    assert locations(servers[0])["/"] == ("all",)
    assert locations(servers[0])["/a/"] == ("one",)


def test_a_location_expects_the_routes_idgate_would_match_in_written_order() -> None:
    """idgate takes the first route that matches; a method-limited one leaves room for the next,
    and a catch-all written first shadows longer prefixes (nginx would pick the longer one)."""
    servers = plan_servers(
        (
            route("reads", "/api", methods=frozenset({"GET"})),
            route("api", "/api"),
            route("everything", "/"),
            route("shadowed", "/late"),
        ),
        default_name="_",
        upstreams={},
    )
    assert locations(servers[0]) == {
        "= /api": ("reads", "api"),
        "/api/": ("reads", "api"),
        "/": ("everything",),
        "= /late": ("everything",),
        "/late/": ("everything",),
    }


def test_a_prefix_ending_in_a_slash_is_one_prefix_location() -> None:
    """`/docs/` matches /docs/x but not /docs, as nginx's `location /docs/` does."""
    servers = plan_servers((route("docs", "/docs/"),), default_name="_", upstreams={})
    assert locations(servers[0]) == {"/docs/": ("docs",), "/": ()}


def test_decision_only_routes_need_an_upstream_on_the_command_line() -> None:
    """A route without `upstream` cannot be rendered until --upstream names its tool."""
    only_decides = Route(name="grafana", policy=OPEN)
    with pytest.raises(RenderError, match="--upstream grafana=URL"):
        plan_servers((only_decides,), default_name="_", upstreams={})
    servers = plan_servers(
        (only_decides,), default_name="_", upstreams={"grafana": "https://grafana:3000/base/"}
    )
    upstream = servers[0].locations[0].upstream
    assert upstream is not None
    assert (upstream.scheme, upstream.address, upstream.host, upstream.prefix) == (
        "https",
        "grafana:3000",
        "grafana:3000",
        "/base",
    )


def test_an_upstream_for_an_unknown_route_is_an_error() -> None:
    """A misspelt --upstream name is reported rather than ignored."""
    with pytest.raises(RenderError, match="grafan"):
        plan_servers((route("grafana"),), default_name="_", upstreams={"grafan": TOOL})


def test_routes_sharing_a_location_must_share_an_upstream() -> None:
    """nginx picks the tool by location; routes told apart only by method cannot go to two."""
    with pytest.raises(RenderError, match="share location"):
        plan_servers(
            (
                route("reads", "/api", methods=frozenset({"GET"})),
                route("writes", "/api", upstream="http://other:80"),
            ),
            default_name="_",
            upstreams={},
        )
