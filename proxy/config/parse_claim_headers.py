"""A route's `claim_headers`: which verified claims reach its upstream, under which header names.

A name is refused when the upstream could take it for something else: a header idgate sets or
strips itself (identity, forwarding, client certificates, `Host`, the W3C trace context it
sends with tracing on), one that frames or routes the message, or a credential. config sits
below the header lists of stages/ and forward/, so the families are named here by prefix;
tests/config/test_route_options.py checks that every name on those lists is refused.
"""

from __future__ import annotations

from typing import Final

from proxy.config.issues import key_path
from proxy.config.reader import Section
from proxy.config.values import InvalidValueError, header_name, text

_RESERVED_NAMES: Final = frozenset(
    {"host", "content-length", "content-type", "cookie", "authorization", "expect", "upgrade"}
    | {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "trailer"}
    | {"proxy-authenticate", "proxy-authorization", "forwarded", "remote-user", "x-remote-user"}
    | {"x-real-ip", "x-request-id", "origin", "client-cert", "client-cert-chain"}
    | {"ssl-client-cert", "x-client-cert", "x-ssl-client-cert"}
    | {"traceparent", "tracestate"}
)
_RESERVED_PREFIXES: Final = (
    "x-forwarded-",
    "x-original-",
    "x-authenticated-",
    "x-auth-request-",
    "x-pomerium-",
    "x-idgate-",
    "sec-",
)


def _key(name: str) -> str:
    """As accept compares header names: lower case, `_` read as `-`."""
    return name.lower().replace("_", "-")


def parse_claim_headers(route: Section) -> tuple[tuple[str, str], ...] | None:
    """`{Header-Name: claim.path}` as (header name, claim path) pairs; None when not written."""
    if not route.has("claim_headers"):
        return None
    block = route.section("claim_headers")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in block.present_keys():
        path = block.get(name, claim_path, required=True)
        checked = block.context.convert(name, key_path(block.path, name), claim_header_name)
        if checked is None or path is None:
            continue
        if _key(checked) in seen:
            block.issue("names the same header as another key", key=name)
            continue
        seen.add(_key(checked))
        pairs.append((checked, path))
    block.close()
    if not block.present_keys():
        block.issue("must map at least one header name to a claim path")
    return tuple(pairs)


def claim_header_name(value: object) -> str:
    name = header_name(value)
    key = _key(name)
    if key in _RESERVED_NAMES or key.startswith(_RESERVED_PREFIXES):
        raise InvalidValueError(
            "idgate sets or strips this header itself (identity, forwarding, framing or"
            " credentials): choose another name"
        )
    return name


def claim_path(value: object) -> str:
    path = text(value)
    if not path or path.startswith(".") or path.endswith("."):
        raise InvalidValueError("a claim path is a claim name or a dotted path (`org.id`)")
    return path
