"""The `routes` list: each route's match conditions, upstream and policy; names unique."""

from __future__ import annotations

import re
from collections.abc import Callable

from proxy.config.addresses import host_pattern, http_url, origin
from proxy.config.model import Route
from proxy.config.parse_claim_headers import parse_claim_headers
from proxy.config.parse_policy import parse_policy
from proxy.config.parse_resource_metadata import check_shared_resource, parse_resource_metadata
from proxy.config.parse_step_up import parse_step_up
from proxy.config.parse_upstream_tls import parse_upstream_tls
from proxy.config.reader import Section, given
from proxy.config.values import InvalidValueError, boolean, duration, http_method, text

_ROUTE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


def parse_routes(top: Section, *, issuer_names: frozenset[str]) -> tuple[Route, ...]:
    """`issuer_names`: every configured issuer, which a route's `issuers` may name."""
    sections = top.sections("routes", required=True)
    if sections is None:
        return ()
    if not sections:
        top.issue("must list at least one route: with none, every request is a 404", key="routes")
    routes: list[Route] = []
    first_path: dict[str, str] = {}
    published: dict[str, Route] = {}
    for section in sections:
        route = _route(section, issuer_names)
        earlier = first_path.setdefault(route.name, section.path)
        if route.name and earlier != section.path:
            section.issue(f"{route.name!r} is already the name of {earlier}", key="name")
        check_shared_resource(route, section, published)
        routes.append(route)
    return tuple(routes)


def _route(section: Section, issuer_names: frozenset[str]) -> Route:
    methods = section.get_list("methods", http_method)
    issuers = section.get_list("issuers", _one_of(issuer_names))
    origins = section.get_list("allowed_origins", origin)
    upstream = section.get("upstream", http_url)
    policy = parse_policy(section)
    route = Route(
        name=section.get("name", route_name, required=True) or "",
        **given(
            host=section.get("host", host_pattern),
            path=section.get("path", route_path),
            methods=None if methods is None else frozenset(methods),
            upstream=upstream,
            upstream_tls=parse_upstream_tls(section, upstream),
            allowed_origins=None if origins is None else frozenset(origins),
            pass_access_token=section.get("pass_access_token", boolean),
            pass_session_access_token=section.get("pass_session_access_token", boolean),
            preserve_host=section.get("preserve_host", boolean),
            allow_cors_preflight=section.get("allow_cors_preflight", boolean),
            claim_headers=parse_claim_headers(section),
            timeout_seconds=section.get("timeout", duration),
            issuers=None if issuers is None else frozenset(issuers),
        ),
        policy=policy,
        step_up=parse_step_up(section, public=policy.public),
        resource_metadata=parse_resource_metadata(section, public=policy.public),
    )
    section.close()
    return route


def _one_of(issuer_names: frozenset[str]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        name = text(value)
        if name not in issuer_names:
            known = ", ".join(sorted(issuer_names))
            raise InvalidValueError(f"names no issuer; the issuers are: {known}")
        return name

    return convert


def route_name(value: object) -> str:
    name = text(value)
    if not _ROUTE_NAME.match(name):
        raise InvalidValueError(
            "use only letters, digits, '_', '.' and '-' (it becomes a metric label)"
        )
    if name.startswith("_"):
        raise InvalidValueError(
            "names starting with '_' are reserved for idgate's own metric labels"
        )
    return name


def route_path(value: object) -> str:
    """A path prefix as requests are matched: already normalised, so it can match at all."""
    path = text(value)
    if not path.startswith("/"):
        raise InvalidValueError("must start with /")
    if "?" in path or "#" in path or any(c.isspace() or not c.isprintable() for c in path):
        raise InvalidValueError(
            "a path prefix has no query, fragment, spaces or control characters"
        )
    # Requests are matched after dot segments and duplicate slashes are removed, so a prefix
    # containing them would never match anything.
    segments = path[1:].removesuffix("/").split("/")
    if path != "/" and any(segment in ("", ".", "..") for segment in segments):
        raise InvalidValueError("must be a normalised path: no empty, '.' or '..' segments")
    return path
