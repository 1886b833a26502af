"""Vetting of `rd` redirect targets: idgate's own host, configured domains, or a local path.

SPEC: "Redirects after login or logout go only to `public_url`'s host or configured allowed
domains." Anything a browser could read as another origin is refused, so the checks are strict
(ASCII only, no whitespace, controls or backslashes anywhere, encoded or not) and fail closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final
from urllib.parse import unquote, urlsplit

#: Raw characters never allowed: controls, space, backslash (browsers read "\" as "/"), non-ASCII
#: (a browser's IDNA mapping turns fullwidth letters and dots into ASCII after we compared them).
_REFUSED_RAW: Final = re.compile(r"[^\x21-\x5b\x5d-\x7e]")
#: Refused once percent-decoded: controls (header splitting downstream) and backslashes.
_REFUSED_DECODED: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
#: An authority with no userinfo: a lower-case DNS name or bracketed IP literal, optional port.
_AUTHORITY: Final = re.compile(
    r"(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)


def vet_redirect(target: str, *, public_url: str, allowed_domains: Sequence[str]) -> str | None:
    """`target` when it is safe to redirect to, else None.

    Safe: a path starting with a single "/" (stays on the current origin), or an absolute http(s)
    URL whose host is `public_url`'s host or an allowed domain (`example.com` exactly, or
    `.example.com` for its subdomains). An https `public_url` refuses http targets (no downgrade).
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
    host = _host(url.netloc)
    return host is not None and (host == _host(public.netloc) or _allowed(host, allowed_domains))


def _decodings(target: str) -> Iterator[str]:
    """`target`, then each repeated percent-decoding of it until decoding changes nothing."""
    current = target
    while True:
        yield current
        decoded = unquote(current)
        if decoded == current:
            return
        current = decoded


def _host(netloc: str) -> str | None:
    """The lower-cased host of an authority, or None when it is empty, has userinfo, or is odd."""
    matched = _AUTHORITY.fullmatch(netloc.lower())
    return matched["host"] if matched else None


def _allowed(host: str, allowed_domains: Sequence[str]) -> bool:
    for entry in allowed_domains:
        domain = entry.lower()
        if domain.startswith("."):
            if host.endswith(domain) and len(host) > len(domain):
                return True
        elif host == domain:
            return True
    return False
