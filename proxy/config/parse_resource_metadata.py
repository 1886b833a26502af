"""A route's `resource_metadata` (RFC 9728): the API's resource identifier, scopes and name."""

from __future__ import annotations

from urllib.parse import urlsplit

from proxy.config.addresses import http_url
from proxy.config.model import ResourceMetadata, Route
from proxy.config.reader import Section, given
from proxy.config.values import InvalidValueError, scope, text


def parse_resource_metadata(route: Section, *, public: bool) -> ResourceMetadata | None:
    if not route.has("resource_metadata"):
        return None
    block = route.section("resource_metadata")
    scopes = block.get_list("scopes_supported", scope)
    metadata = ResourceMetadata(
        resource=block.get("resource", resource_identifier, required=True) or "",
        **given(
            scopes_supported=None if scopes is None else tuple(dict.fromkeys(scopes)),
            resource_name=block.get("resource_name", text),
            resource_documentation=block.get("resource_documentation", http_url),
        ),
    )
    block.close()
    if public:
        route.issue(
            "cannot be combined with public: true: a public route asks for no token",
            key="resource_metadata",
        )
    return metadata


def resource_identifier(value: object) -> str:
    """RFC 9728 1.2: "a URL that uses the https scheme and has no fragment component"; without a
    query too, since the document's URL is built from host and path alone. The path must be as
    requests are matched (normalised, not percent-encoded) and is quoted in a challenge."""
    url = http_url(value)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise InvalidValueError("a resource identifier is an https URL (RFC 9728 1.2)")
    if any(char in url for char in '"\\'):
        raise InvalidValueError("must not contain quotes or backslashes")
    path = parts.path
    if "%" in path:
        raise InvalidValueError("the path must not be percent-encoded")
    segments = path[1:].removesuffix("/").split("/")
    if path not in ("", "/") and any(segment in ("", ".", "..") for segment in segments):
        raise InvalidValueError("must be a normalised path: no empty, '.' or '..' segments")
    return url


def check_shared_resource(route: Route, section: Section, published: dict[str, Route]) -> None:
    """Routes may share a resource (one API behind several routes), but then with one document;
    `published` maps each resource to the first route publishing it."""
    metadata = route.resource_metadata
    if metadata is None:
        return
    earlier = published.setdefault(metadata.resource, route)
    if earlier.resource_metadata != metadata:
        section.issue(
            f"publishes {metadata.resource} differently from route {earlier.name!r}: give both "
            "the same resource_metadata",
            key="resource_metadata",
        )
