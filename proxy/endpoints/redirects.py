"""Vetting of `rd` redirect targets: idgate's own host, configured domains, or a local path.

SPEC: "Redirects after login or logout go only to `public_url`'s host or configured allowed
domains." Anything a browser could read as another origin is refused, so the checks are strict
(ASCII only, no whitespace, controls or backslashes anywhere, encoded or not) and fail closed.
A port is part of the origin (RFC 6454 4): the same host on another port is another service, so
it is allowed only when `public_url` or an allowed domain names that very port.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

#: Raw characters never allowed: controls, space, backslash (browsers read "\" as "/"), non-ASCII
#: (a browser's IDNA mapping turns fullwidth letters and dots into ASCII after we compared them).
_REFUSED_RAW: Final = re.compile(r"[^\x21-\x5b\x5d-\x7e]")
#: Refused once percent-decoded: controls (header splitting downstream) and backslashes.
_REFUSED_DECODED: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
#: An authority with no userinfo: a lower-case DNS name or bracketed IP literal, optional port.
_AUTHORITY: Final = re.compile(
    r"(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)
#: RFC 6454 4: "If uri-port is undefined, let uri-port be the default port for the protocol".
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_PORT: Final = 65535


@dataclass(frozen=True, slots=True)
class _Place:
    """Host and port of an absolute URL; `port` is None for the scheme's default port."""

    host: str
    port: int | None


def vet_redirect(target: str, *, public_url: str, allowed_domains: Sequence[str]) -> str | None:
    """`target` when it is safe to redirect to, else None.

    Safe: a path starting with a single "/" (stays on the current origin), or an absolute http(s)
    URL on `public_url`'s host and port, or on an allowed domain (`example.com` exactly, or
    `.example.com` for its subdomains) at the scheme's default port, or at the port the entry
    names (`example.com:8443`). An https `public_url` refuses http targets (no downgrade).
    """
    if not target or _REFUSED_RAW.search(target):
        return None
    if any(_REFUSED_DECODED.search(level) for level in _decodings(target)):
        return None
    if target.startswith("/"):
        safe = _is_local_path(target)
    else:
        safe = _is_allowed_url(target, public_url=public_url, allowed_domains=allowed_domains)
    return target if safe else None


def _is_local_path(target: str) -> bool:
    """Whether no repeated decoding turns the path protocol-relative ("//evil.com")."""
    return not any(level.startswith("//") for level in _decodings(target))


def _is_allowed_url(target: str, *, public_url: str, allowed_domains: Sequence[str]) -> bool:
    try:
        public = urlsplit(public_url)
        url = urlsplit(target)
    except ValueError:  # an unbalanced "[" in the authority
        return False
    if url.scheme not in ("http", "https") or (public.scheme, url.scheme) == ("https", "http"):
        return False
    # "https:evil.com" and "https:/evil.com" lack the "//" yet browsers still find a host in them.
    if not target[len(url.scheme) + 1 :].startswith("//"):
        return False
    place = _place(url.scheme, url.netloc)
    if place is None:
        return False
    return place == _place(public.scheme, public.netloc) or any(
        _entry_allows(entry, place, scheme=url.scheme) for entry in allowed_domains
    )


def _decodings(target: str) -> Iterator[str]:
    """`target`, then each repeated percent-decoding of it until decoding changes nothing."""
    current = target
    while True:
        yield current
        decoded = unquote(current)
        if decoded == current:
            return
        current = decoded


def _place(scheme: str, netloc: str) -> _Place | None:
    """The lower-cased host and non-default port of an authority, or None when it is empty, has
    userinfo, or is odd (a port out of range among them)."""
    matched = _AUTHORITY.fullmatch(netloc.lower())
    if matched is None:
        return None
    port = int(matched["port"]) if matched["port"] is not None else None
    if port is not None and not 0 < port <= _MAX_PORT:
        return None
    if port == _DEFAULT_PORTS.get(scheme.lower()):
        port = None
    return _Place(host=matched["host"], port=port)


def _entry_allows(entry: str, place: _Place, *, scheme: str) -> bool:
    """Whether an `allowed_redirect_domains` entry (`[.]domain[:port]`) covers `place`."""
    domain, colon, port_text = entry.lower().rpartition(":")
    if not colon:
        domain, port = entry.lower(), None
    elif port_text.isascii() and port_text.isdigit():
        # An entry naming the scheme's default port (tools.example.com:443) means no port.
        port = int(port_text)
        port = None if port == _DEFAULT_PORTS.get(scheme.lower()) else port
    else:
        return False
    if place.port != port:
        return False
    if domain.startswith("."):
        return place.host.endswith(domain) and len(place.host) > len(domain)
    return place.host == domain
