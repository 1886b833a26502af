"""`/.well-known/oauth-protected-resource[/path]`: the RFC 9728 document of a route's API.

A route with `resource_metadata` publishes it at its resource identifier's host, under the
well-known string followed by the identifier's path (RFC 9728 3.1); any other request for such a
path goes on to the routes, so an upstream that publishes its own document keeps doing so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from proxy.config.model import (
    PROTECTED_RESOURCE_WELL_KNOWN,
    IssuerKind,
    ResourceMetadata,
    Route,
    Settings,
)
from proxy.errors import MethodNotAllowed
from proxy.stages.context import RequestContext
from proxy.stages.responses import json_response


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """A document served at one host and path: its metadata and the routes publishing it
    (routes sharing a resource publish the same block: the config makes sure)."""

    metadata: ResourceMetadata
    routes: tuple[Route, ...]


def published_at(routes: Sequence[Route], *, host: str, path: str) -> Published | None:
    """The document served at this host and normalised path, if a route publishes one there."""
    if not path.startswith(PROTECTED_RESOURCE_WELL_KNOWN):
        return None
    publishing = tuple(
        route
        for route in routes
        if route.resource_metadata is not None
        and route.resource_metadata.well_known_path == path
        and urlsplit(route.resource_metadata.resource).hostname == host
    )
    metadata = publishing[0].resource_metadata if publishing else None
    return None if metadata is None else Published(metadata=metadata, routes=publishing)


def metadata_document(published: Published, settings: Settings) -> dict[str, object]:
    """RFC 9728 2: the metadata of the resource, as the routes publishing it accept tokens."""
    metadata = published.metadata
    # RFC 9728 3.3: "The resource value returned MUST be identical to the protected resource's
    # resource identifier value into which the well-known URI path suffix was inserted".
    document: dict[str, object] = {
        "resource": metadata.resource,
        "authorization_servers": authorization_servers(published.routes, settings),
        # Only the Authorization header: RFC 6750's form body and query parameter are not read.
        "bearer_methods_supported": ["header"],
    }
    if metadata.scopes_supported:
        document["scopes_supported"] = list(metadata.scopes_supported)
    if metadata.resource_name is not None:
        document["resource_name"] = metadata.resource_name
    if metadata.resource_documentation is not None:
        document["resource_documentation"] = metadata.resource_documentation
    return document


def authorization_servers(routes: Sequence[Route], settings: Settings) -> list[str]:
    """RFC 9728 2: "JSON array containing a list of OAuth authorization server issuer
    identifiers": the `iss` of every OAuth issuer whose bearer tokens the routes accept (a
    route's `issuers`, or all), in configuration order."""
    accepted: set[str] = set()
    for route in routes:
        if route.issuers is None:
            return _oauth_issuers(settings, names=None)
        accepted |= route.issuers
    return _oauth_issuers(settings, names=accepted)


def _oauth_issuers(settings: Settings, *, names: set[str] | None) -> list[str]:
    found: dict[str, None] = {}
    for issuer in (settings.oidc.as_issuer, *settings.issuers):
        # Kubernetes and SPIFFE issuers sign tokens but grant none to OAuth clients.
        takes_tokens = bool(issuer.audiences) and issuer.kind == IssuerKind.OIDC
        if takes_tokens and issuer.issuer is not None and (names is None or issuer.name in names):
            found[issuer.issuer] = None
    return list(found)


async def serve_metadata(
    request: web.Request, ctx: RequestContext, published: Published
) -> web.StreamResponse:
    ctx.own_endpoint = True
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("method not allowed")
    return json_response(metadata_document(published, ctx.runtime.settings))
