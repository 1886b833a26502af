"""Accept: the first stage after observe. It decides what idgate believes about a request.

- Identity headers a client sends are removed before anything else reads the request (SPEC: "Any
  of these headers arriving from a client is removed before anything else happens"), matched
  case-insensitively and with `_` and `-` alike, since many upstream frameworks (CGI, WSGI, PHP)
  map `X_Authenticated_User` and `X-Authenticated-User` to the same variable.
- `X-Forwarded-*` and `Forwarded` are believed only from `trusted_proxies`, and removed otherwise.
- The path is normalised once; that one form is matched by policy and sent upstream.
- A request head over `server.max_request_head_bytes` in total gets 431 before anything else.
"""

from __future__ import annotations

import functools
import re
import secrets
from typing import Final

from aiohttp import web
from multidict import CIMultiDict

from proxy.errors import BadRequest, RequestTooLarge
from proxy.runtime import Runtime
from proxy.stages.context import CONTEXT_KEY, RefusedRequest, RequestContext
from proxy.stages.header_names import FORWARDING_HEADERS, IDENTITY_HEADERS, header_key
from proxy.stages.paths import normalize_path

_HOST_RE: Final = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$")
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@functools.lru_cache(maxsize=256)
def strip_host_port(host: str) -> str:
    """`Example.COM:8443` -> `example.com`; `[::1]:80` -> `[::1]`. Raises BadRequest on junk.

    Remembered: a deployment sees few distinct hosts (a refusal is not remembered)."""
    if not _HOST_RE.match(host):
        raise BadRequest("malformed Host header")
    if host.startswith("["):
        return host[: host.index("]") + 1].lower()
    return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


def _last_hop(value: str | None) -> str | None:
    """The value the nearest (trusted) proxy appended to a comma-separated forwarding header."""
    if value is None:
        return None
    return value.rsplit(",", 1)[-1].strip() or None


def parse_forwarded(value: str) -> dict[str, str]:
    """The last element of an RFC 7239 `Forwarded` header: the one the nearest proxy wrote."""
    pairs: dict[str, str] = {}
    for pair in value.rsplit(",", 1)[-1].split(";"):
        name, sep, raw = pair.strip().partition("=")
        if sep:
            pairs[name.lower()] = raw.strip().strip('"')
    return pairs


def accept(request: web.Request, runtime: Runtime) -> tuple[web.Request, RequestContext]:
    """The request as later stages see it (client-sent identity headers, and forwarding headers
    from untrusted peers, removed) and its RequestContext, also stored under CONTEXT_KEY.

    Raises BadRequest for what cannot be accepted."""
    check_head_size(request, runtime.settings.server.max_request_head_bytes)
    peer_ip = peer_address(request)
    trusted = runtime.trusted_proxies
    from_trusted = trusted.trusts(peer_ip)

    client_ip, scheme, raw_host = peer_ip, request.scheme, request.headers.get("Host", "")
    if from_trusted:
        headers = request.headers
        forwarded_header = headers.get("Forwarded")
        forwarded = parse_forwarded(forwarded_header) if forwarded_header else {}
        forwarded_for = headers.get("X-Forwarded-For")
        if forwarded_for:
            client_ip = trusted.client_from_forwarded_for(forwarded_for, peer_ip)
        elif "for" in forwarded:
            client_ip = trusted.client_from_forwarded_for(forwarded["for"].strip("[]"), peer_ip)
        proto = (_last_hop(headers.get("X-Forwarded-Proto")) or forwarded.get("proto", "")).lower()
        if proto in ("http", "https"):
            scheme = proto
        raw_host = _last_hop(headers.get("X-Forwarded-Host")) or forwarded.get("host") or raw_host

    raw_path, _, query = request.raw_path.partition("?")
    path = normalize_path(raw_path)
    request_id = request.headers.get("X-Request-Id", "") if from_trusted else ""
    ctx = RequestContext(
        runtime=runtime,
        request_id=request_id if _REQUEST_ID_RE.match(request_id) else secrets.token_hex(8),
        peer_ip=peer_ip,
        from_trusted_proxy=from_trusted,
        client_ip=client_ip,
        scheme=scheme,
        host=strip_host_port(raw_host) if raw_host else "",
        method=request.method,
        path=path.decoded,
        upstream_path=path.encoded,
        query=query,
        authority=raw_host,
    )
    request[CONTEXT_KEY] = ctx
    if _needs_cleaning(request, from_trusted):
        if not from_trusted:
            ctx.untrusted_forwarding = frozenset(
                key for name in request.headers if (key := header_key(name)) in FORWARDING_HEADERS
            )
        # The clone copies request state, so CONTEXT_KEY (one shared object) travels with it.
        request = request.clone(
            headers=CIMultiDict(
                (name, value)
                for name, value in request.headers.items()
                if header_key(name) not in IDENTITY_HEADERS
                and (from_trusted or header_key(name) not in FORWARDING_HEADERS)
            )
        )
    return request, ctx


def peer_address(request: web.Request) -> str:
    """The address of the connection's other end ("unknown" when the socket does not say)."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer[0] if isinstance(peer, tuple) else "unknown"


def refused_request(request: web.Request) -> RefusedRequest:
    """What is known of a request accept refused: a new request id, the peer, the method, and
    the path as sent without its query (which may carry a token)."""
    return RefusedRequest(
        request_id=secrets.token_hex(8),
        peer_ip=peer_address(request),
        method=request.method,
        path=request.raw_path.partition("?")[0],
    )


def check_head_size(request: web.Request, limit: int) -> None:
    """aiohttp bounds each field (32 KiB) and their number (100), which still lets ~3 MiB through
    and on to the upstream. RFC 6585 5: 431 "indicates that the server is unwilling to process the
    request because its header fields are too large"."""
    # Request line `METHOD target HTTP/1.1` with CRLF, each field `name: value` with CRLF, and the
    # CRLF that ends the head.
    size = len(request.method) + len(request.raw_path) + 13
    for name, value in request.raw_headers:
        size += len(name) + len(value) + 4
    if size > limit:
        raise RequestTooLarge("request header fields too large")


def _needs_cleaning(request: web.Request, from_trusted: bool) -> bool:
    for name in request.headers:
        key = header_key(name)
        if key in IDENTITY_HEADERS or (not from_trusted and key in FORWARDING_HEADERS):
            return True
    return False
