"""Provider metadata (OpenID Connect Discovery 1.0), fetched with aiohttp and checked.

Everything the provider sends is untrusted input: the size is bounded before parsing, and every
failure becomes a `ProviderError` whose message never quotes the response body.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from proxy.oidc.bounded import ResponseTooLarge, read_bounded

WELL_KNOWN_PATH: Final = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES: Final = 1 << 20


class ProviderError(Exception):
    """The provider could not be reached or sent something unusable; the message holds no body."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMetadata:
    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    """None for issuers that only sign tokens (workload identity); the code flow needs it."""
    token_endpoint: str | None
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    """Offered only by providers supporting RP-Initiated Logout."""
    revocation_endpoint: str | None
    """Offered only by providers supporting token revocation (RFC 7009, RFC 8414 2)."""
    introspection_endpoint: str | None
    """Offered only by providers supporting token introspection (RFC 7662, RFC 8414 2)."""
    raw: Mapping[str, Any]
    """The whole document, read-only, for fields nobody modelled yet."""

    @classmethod
    def parse(cls, document: Mapping[str, Any], *, issuer: str | None) -> ProviderMetadata:
        """Metadata from a discovery document fetched for the configured `issuer`; with None
        (an issuer kind that learns its `iss` from discovery), the document's own."""
        # OIDC Discovery 4.3: "The issuer value returned MUST be identical to the Issuer URL that
        # was used as the prefix to /.well-known/openid-configuration to retrieve the configuration
        # information." Anything else lets one provider impersonate another.
        found = document.get("issuer")
        if issuer is None and isinstance(found, str) and found:
            issuer = found
        if found != issuer or issuer is None:
            shown = repr(found)[:200] if isinstance(found, str) else "missing or not a string"
            raise ProviderError(
                f"discovery issuer {shown} is not identical to the configured {issuer!r}"
            )
        jwks_uri = _endpoint(document, "jwks_uri")
        if jwks_uri is None:
            raise ProviderError("discovery document has no jwks_uri")
        return cls(
            issuer=issuer,
            jwks_uri=jwks_uri,
            authorization_endpoint=_endpoint(document, "authorization_endpoint"),
            token_endpoint=_endpoint(document, "token_endpoint"),
            userinfo_endpoint=_endpoint(document, "userinfo_endpoint"),
            end_session_endpoint=_endpoint(document, "end_session_endpoint"),
            revocation_endpoint=_endpoint(document, "revocation_endpoint"),
            introspection_endpoint=_endpoint(document, "introspection_endpoint"),
            raw=MappingProxyType(dict(document)),
        )


def _endpoint(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _is_http_url(value):
        raise ProviderError(f"discovery {name} is not an http(s) URL")
    return value


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# ASYNC109: `timeout` is aiohttp's per-request ClientTimeout, not a cancel scope around the call.
async def fetch_metadata(
    http: aiohttp.ClientSession,
    issuer: str | None,
    *,
    timeout: float,  # noqa: ASYNC109
    url: str | None = None,
    ssl: ssl.SSLContext | None = None,
) -> ProviderMetadata:
    """The provider's checked metadata from `url`, by default
    `{issuer}/.well-known/openid-configuration`; `ssl` verifies the provider instead of the
    system trust store."""
    if url is None:
        if issuer is None:
            raise ProviderError("neither an issuer nor a discovery URL to fetch metadata from")
        # OIDC Discovery 4: "If the Issuer value contains a path component, any terminating /
        # MUST be removed before appending /.well-known/openid-configuration."
        url = issuer.rstrip("/") + WELL_KNOWN_PATH
    document = await fetch_json_object(http, url, timeout=timeout, ssl=ssl)
    return ProviderMetadata.parse(document, issuer=issuer)


async def fetch_json_object(
    http: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (see fetch_metadata)
    ssl: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """GET `url` and return its body as a JSON object of at most MAX_DOCUMENT_BYTES."""
    return await request_json_object(http, "GET", url, timeout=timeout, ssl_context=ssl)


async def request_json_object(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (see fetch_metadata)
    headers: Mapping[str, str] | None = None,
    json_body: Mapping[str, Any] | None = None,
    form: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    accepted: tuple[int, ...] = (200,),
) -> dict[str, Any]:
    """`method url` (with `json_body` as JSON, or `form` form-encoded) and its answer as a JSON
    object of at most MAX_DOCUMENT_BYTES. With `headers` (credentials), a redirect is an error,
    not followed: it would carry them to wherever the redirect points."""
    try:
        async with http.request(
            method,
            url,
            data=form,
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"Accept": "application/json", **(headers or {})},
            json=json_body,
            # aiohttp: `True` is its default verification with the system trust store.
            ssl=True if ssl_context is None else ssl_context,
            allow_redirects=headers is None,
        ) as response:
            if response.status not in accepted:
                raise ProviderError(f"{url} answered HTTP {response.status}")
            body = await _read_bounded(response, url)
    except TimeoutError as error:
        raise ProviderError(f"{url} did not answer within {timeout:g}s") from error
    except aiohttp.ClientError as error:
        raise ProviderError(f"{url} unreachable: {type(error).__name__}: {error}") from error
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProviderError(f"{url} did not return valid JSON") from error
    if not isinstance(document, dict):
        raise ProviderError(f"{url} did not return a JSON object")
    return document


async def _read_bounded(response: aiohttp.ClientResponse, url: str) -> bytes:
    try:
        return await read_bounded(response, MAX_DOCUMENT_BYTES)
    except ResponseTooLarge:
        raise ProviderError(f"{url} returned more than {MAX_DOCUMENT_BYTES} bytes") from None
