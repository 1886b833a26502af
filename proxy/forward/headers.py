"""Which headers cross idgate towards an upstream and back: pure filtering, no I/O.

Both directions drop hop-by-hop headers, which describe one connection and never the message,
and names are compared as accept compares identity headers: without case, `_` read as `-`. CGI,
WSGI and PHP map `Transfer_Encoding` and `Transfer-Encoding` to the same variable, so a look-alike
of a hop-by-hop or framing header would reach such an upstream as the real one.
Towards the upstream idgate also drops what only it may see (its session cookie, the client's
bearer token unless a route asks for it), then adds `X-Forwarded-*` and the identity headers last,
so nothing copied from the client can stand in for them. A WebSocket handshake is recognised here,
and its per-connection fields are never copied: idgate negotiates its own with the upstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping

from proxy.identity.client_cert import FORWARDED_CLIENT_CERT_HEADERS
from proxy.stages.header_names import IDENTITY_HEADERS, header_key

# RFC 9110 7.6.1: "Intermediaries MUST parse a received Connection header field before a message
# is forwarded and, for each connection-option in this field, remove any header or trailer field(s)
# from the message with the same name as the connection-option, and then remove the Connection
# header field itself". The fixed names are the ones that section and RFC 9112 list as
# connection-specific; Proxy-Connection is the pre-standard alias some clients still send.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
    }
)

#: Request headers never copied upstream: the client session names the upstream's own Host,
#: idgate answers `Expect: 100-continue` itself once the request is allowed
#: (proxy/stages/expect.py), and identity headers are idgate's alone: accept already removed any
#: a client sent, and this keeps an identity without email from ever passing on a client's copy.
_NOT_COPIED_UPSTREAM: Final = (
    HOP_BY_HOP | FORWARDED_CLIENT_CERT_HEADERS | IDENTITY_HEADERS | {"host", "expect"}
)
_NOT_COPIED_UPSTREAM_NOR_TOKEN: Final = _NOT_COPIED_UPSTREAM | {"authorization"}

#: The framing header a message keeps (idgate frames the body it forwards by it): only under its
#: own name. Spelled with `_` it frames nothing here, yet an upstream that reads `_` as `-` would
#: take it for the body's length (RFC 9112 6.3: a length from anywhere else desynchronises the two
#: parsers).
_FRAMING: Final = frozenset({"content-length"})

#: RFC 6455 4.1 and 4.2.2: the handshake's key, version, subprotocols and extensions belong to one
#: WebSocket connection. idgate ends the client's connection and opens its own to the upstream, so
#: its client and server negotiate them afresh on each side and never copy them across.
_WEBSOCKET_HANDSHAKE: Final = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)

#: Cookie-name prefixes (RFC 6265bis 4.1.3) under which a session cookie may also be set.
_COOKIE_PREFIXES: Final = ("__Host-", "__Secure-")


def _tokens(headers: MultiMapping[str], name: str) -> frozenset[str]:
    """The lower-case tokens of every `name` header (a comma-separated list)."""
    return frozenset(
        token.strip().lower()
        for value in headers.getall(name, ())
        for token in value.split(",")
        if token.strip()
    )


def connection_options(headers: MultiMapping[str]) -> frozenset[str]:
    """Names listed in every `Connection` header, as header_key compares them: hop-by-hop for
    this message only."""
    return frozenset(header_key(token) for token in _tokens(headers, "Connection"))


def is_websocket_upgrade(method: str, headers: CIMultiDictProxy[str]) -> bool:
    """A WebSocket opening handshake, as RFC 6455 4.2.1 has the server recognise it: "An HTTP/1.1
    or higher GET request", "An |Upgrade| header field containing the value "websocket"" and "A
    |Connection| header field that includes the token "Upgrade"", both "treated as an ASCII
    case-insensitive value"."""
    return (
        method == "GET"
        and "upgrade" in connection_options(headers)
        and "websocket" in _tokens(headers, "Upgrade")
    )


def websocket_subprotocols(headers: CIMultiDictProxy[str]) -> tuple[str, ...]:
    """The subprotocols a handshake offers, in its order of preference. Only the first
    `Sec-WebSocket-Protocol` header counts, as in aiohttp's own handshake that answers the client:
    an offer the upstream took from a later header could not be confirmed to the client."""
    offered = headers.get("Sec-WebSocket-Protocol", "")
    return tuple(token.strip() for token in offered.split(",") if token.strip())


def without_websocket_handshake(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """`headers` (as built for the upstream) less the client's own handshake fields."""
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if header_key(name) not in _WEBSOCKET_HANDSHAKE
    )


def _copy_except(headers: MultiMapping[str], fixed: frozenset[str]) -> CIMultiDict[str]:
    """All of `headers` but the `fixed` names and those their own Connection header names, each
    also in its `_` spellings, and `_` spellings of the framing headers."""
    options = connection_options(headers)
    drop = fixed | options if options else fixed
    return CIMultiDict((name, value) for name, value in headers.items() if not _dropped(name, drop))


def _dropped(name: str, drop: frozenset[str]) -> bool:
    if "_" not in name:  # the common case: the name is its own key once lower-cased
        return name.lower() in drop
    key = header_key(name)
    return key in drop or key in _FRAMING


def is_session_cookie(name: str, session_cookie_name: str) -> bool:
    """True for idgate's cookies: the session cookie, its chunks (`name_0`, `name_1`, …), its
    login-state cookies (`name_state_…`), and their prefixed forms."""
    for prefix in _COOKIE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name == session_cookie_name or name.startswith(f"{session_cookie_name}_state_"):
        return True
    stem, _, index = name.rpartition("_")
    return stem == session_cookie_name and index.isascii() and index.isdigit()


def without_session_cookies(cookie_headers: Iterable[str], session_cookie_name: str) -> str | None:
    """One `Cookie` value holding every other cookie byte for byte, or None when none remain.

    Several `Cookie` headers are joined as RFC 9113 8.2.3 prescribes for HTTP/1.1 ("; ").
    """
    kept = [
        pair.strip()
        for value in cookie_headers
        for pair in value.split(";")
        if pair.strip()
        and not is_session_cookie(pair.partition("=")[0].strip(), session_cookie_name)
    ]
    return "; ".join(kept) or None


@lru_cache(maxsize=256)
def claim_header_keys(claim_headers: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """A route's `claim_headers` names as `header_key` compares them (remembered per route)."""
    return frozenset(header_key(name) for name, _ in claim_headers)


def upstream_request_headers(
    received: CIMultiDictProxy[str],
    *,
    pass_authorization: bool,
    session_cookie_name: str,
    peer: str,
    scheme: str,
    host: str,
    identity_headers: Mapping[str, str],
    claim_header_keys: frozenset[str] = frozenset(),
) -> CIMultiDict[str]:
    """The header set sent to an upstream for a request idgate `received` from `peer`.

    `received` must already be what accept kept: forwarding headers only from trusted proxies.
    `claim_header_keys` (a route's `claim_headers`, by `header_key`) are never copied from the
    client: only idgate's value, when the caller has the claim, reaches the upstream.
    """
    not_copied = _NOT_COPIED_UPSTREAM if pass_authorization else _NOT_COPIED_UPSTREAM_NOR_TOKEN
    headers = _copy_except(
        received, not_copied | claim_header_keys if claim_header_keys else not_copied
    )
    if "Cookie" in headers:
        cookie = without_session_cookies(headers.popall("Cookie"), session_cookie_name)
        if cookie is not None:
            headers["Cookie"] = cookie
    # Each proxy appends the address it received the request from (the peer), as nginx's
    # $proxy_add_x_forwarded_for does; the chain before it came from trusted proxies only.
    chain = headers.getall("X-Forwarded-For", ())
    headers["X-Forwarded-For"] = ", ".join((*chain, peer))
    headers["X-Forwarded-Proto"] = scheme
    headers.setdefault("X-Forwarded-Host", received.get("Host") or host)
    for name, value in identity_headers.items():
        headers[name] = value
    return headers


def downstream_response_headers(
    received: MultiMapping[str], *, session_cookie_name: str
) -> CIMultiDict[str]:
    """The upstream's response headers as the client gets them (Set-Cookie duplicates kept),
    except a Set-Cookie for one of idgate's own cookies: an upstream must not be able to plant,
    overwrite or clear the session."""
    headers = _copy_except(received, HOP_BY_HOP)
    if "Set-Cookie" in headers:
        for value in headers.popall("Set-Cookie"):
            name = value.partition("=")[0].strip()
            if not is_session_cookie(name, session_cookie_name):
                headers.add("Set-Cookie", value)
    return headers
