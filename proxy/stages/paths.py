"""Request paths normalised once: the decoded form routes match, the encoded form the upstream gets.

SPEC: "Paths are normalised once (percent-decoding, dot segments, duplicate slashes) and the same
form is matched against policy and sent upstream." `encoded` is `decoded` re-encoded canonically,
so an upstream that decodes once sees exactly what policy saw.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from proxy.errors import BadRequest, RequestTooLarge

MAX_PATH_BYTES: Final = 8192

#: RFC 3986 3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@". `quote` always keeps
#: the unreserved set; "/" separates segments. All else (%, ?, #, space, non-ASCII) is encoded.
_PATH_SAFE: Final = "/!$&'()*+,;=:@"

#: A path already in canonical form: segments of pchars that do not start with "." (so no dot
#: segment), no empty segment except a trailing slash, nothing to decode. Most requests look so.
_CANONICAL: Final = re.compile(
    r"(?:/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*/?"
)
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: An encoded "/" or "\" would be a separator to some upstreams and data to others.
_ENCODED_SEPARATOR: Final = re.compile(r"%(?:2[Ff]|5[Cc])")
#: Unicode category Cc: C0 controls, DEL, C1 controls.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Tomcat and Jetty strip `;params` before resolving dot segments, so `/public/..;/admin` reaches
#: `/admin` there while it looks like a path under `/public` here.
_DOT_WITH_PARAMS: Final = re.compile(r"\.\.?;")


class NormalizedPath(NamedTuple):
    """A NamedTuple rather than a frozen dataclass: every request builds one, at half the cost."""

    decoded: str
    """Percent-decoded, dot segments removed, duplicate slashes collapsed: what routes match."""
    encoded: str
    """`decoded` percent-encoded canonically: what the upstream receives."""


def normalize_path(raw_path: str) -> NormalizedPath:
    """Normalise a request-target path (query already split off) or raise BadRequest."""
    if len(raw_path) > MAX_PATH_BYTES:
        raise RequestTooLarge("request path too long")
    if not raw_path.startswith("/"):
        raise BadRequest("request path must start with '/'")
    if _CANONICAL.fullmatch(raw_path):
        return NormalizedPath(raw_path, raw_path)
    try:
        size = len(raw_path.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest("request path is not valid UTF-8") from None
    if size > MAX_PATH_BYTES:
        raise RequestTooLarge("request path too long")
    decoded = _percent_decode(raw_path)
    if "\\" in decoded:
        raise BadRequest("backslash in request path")
    if _CONTROL.search(decoded):
        raise BadRequest("control character in request path")
    normal = _remove_dot_segments(decoded)
    return NormalizedPath(decoded=normal, encoded=quote(normal, safe=_PATH_SAFE))


def _percent_decode(raw_path: str) -> str:
    if "%" not in raw_path:
        return raw_path
    if _BAD_ESCAPE.search(raw_path):
        raise BadRequest("malformed percent-encoding in request path")
    if _ENCODED_SEPARATOR.search(raw_path):
        raise BadRequest("encoded '/' or '\\' in request path")
    try:
        return unquote(raw_path, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("request path is not valid UTF-8") from None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 on a path with duplicate slashes collapsed first; a trailing slash stays.

    As in 5.2.4, a final "." or ".." segment leaves a trailing slash (`/a/b/..` -> `/a/`) and ".."
    never climbs above the root.
    """
    kept: list[str] = []
    segments = path.split("/")
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        elif _DOT_WITH_PARAMS.match(segment):
            raise BadRequest("dot segment with parameters in request path")
        else:
            kept.append(segment)
    if not kept:
        return "/"
    trailing = "/" if segments[-1] in ("", ".", "..") else ""
    return "/" + "/".join(kept) + trailing
