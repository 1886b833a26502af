"""Path normalisation: one decoded form for policy, the same form encoded for the upstream."""

from __future__ import annotations

import random
from urllib.parse import unquote

import pytest

from proxy.errors import BadRequest, RequestTooLarge
from proxy.stages.paths import MAX_PATH_BYTES, normalize_path


@pytest.mark.parametrize(
    ("raw", "decoded", "encoded"),
    [
        ("/", "/", "/"),
        ("/api/v1/users", "/api/v1/users", "/api/v1/users"),
        ("/api/", "/api/", "/api/"),
        ("/a/b/../c", "/a/c", "/a/c"),
        ("/a/./b", "/a/b", "/a/b"),
        ("/a/b/..", "/a/", "/a/"),
        ("/a/b/.", "/a/b/", "/a/b/"),
        ("/..", "/", "/"),
        ("/../../etc/passwd", "/etc/passwd", "/etc/passwd"),
        ("/a//b///c", "/a/b/c", "/a/b/c"),
        ("//a", "/a", "/a"),
        ("/a//", "/a/", "/a/"),
        ("/a//../b", "/b", "/b"),
        ("/%2e%2e/admin", "/admin", "/admin"),
        ("/public/%2E%2E/admin", "/admin", "/admin"),
        ("/public/.%2e/admin", "/admin", "/admin"),
        ("/a/%2e/b", "/a/b", "/a/b"),
        ("/a%23b", "/a#b", "/a%23b"),
        ("/a%25b", "/a%b", "/a%25b"),
        ("/a%252e%252e/b", "/a%2e%2e/b", "/a%252e%252e/b"),
        ("/a%3Fb", "/a?b", "/a%3Fb"),
        ("/a%20b", "/a b", "/a%20b"),
        ("/caf%C3%A9", "/café", "/caf%C3%A9"),
        ("/café", "/café", "/caf%C3%A9"),
        ("/%41%42c", "/ABc", "/ABc"),
        ("/a;b=c/d:e@f", "/a;b=c/d:e@f", "/a;b=c/d:e@f"),
        ("/.well-known/openid", "/.well-known/openid", "/.well-known/openid"),
        ("/a/...", "/a/...", "/a/..."),
        ("/a/..b/c.", "/a/..b/c.", "/a/..b/c."),
        ("/~user/file_name-1.txt", "/~user/file_name-1.txt", "/~user/file_name-1.txt"),
    ],
)
def test_normalises_to_one_decoded_and_one_encoded_form(
    raw: str, decoded: str, encoded: str
) -> None:
    """A path is decoded once, dot segments and duplicate slashes go, and it is re-encoded."""
    path = normalize_path(raw)
    assert (path.decoded, path.encoded) == (decoded, encoded)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "api/x",
        "*",
        "http://example.com/x",
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%5cb",
        "/a\\b",
        "/..\\admin",
        "/a%00b",
        "/a\x00b",
        "/a%0d%0aSet-Cookie:x",
        "/a\rb",
        "/a%09b",
        "/a\x7fb",
        "/a%7Fb",
        "/a%C2%85b",
        "/a%",
        "/a%4",
        "/a%zz",
        "/a%%41",
        "/a%u002e",
        "/a%C3",
        "/a%C0%AE%C0%AE/admin",
        "/a%FF",
        "/\ud800",
        "/public/..;/admin",
        "/public/.;/admin",
        "/public/%2e%2e;x/admin",
    ],
)
def test_refuses_malformed_or_ambiguous_paths(raw: str) -> None:
    """Encoded separators, backslashes, controls, bad escapes and bad UTF-8 are a 400."""
    with pytest.raises(BadRequest) as caught:
        normalize_path(raw)
    assert caught.value.status == 400


def test_refuses_an_overlong_path_as_too_large() -> None:
    """A path over the byte bound is refused with 431 before it is parsed."""
    normalize_path("/" + "a" * (MAX_PATH_BYTES - 1))
    with pytest.raises(RequestTooLarge):
        normalize_path("/" + "a" * MAX_PATH_BYTES)


def test_counts_the_bound_in_utf8_bytes() -> None:
    """Non-ASCII characters count by their UTF-8 size against the bound."""
    with pytest.raises(RequestTooLarge):
        normalize_path("/" + "é" * (MAX_PATH_BYTES // 2))


_ALPHABET = ["a", "b", "/", ".", "..", "%2e", "%2E", "%25", "%23", "%3F", " ", "é", "%C3%A9", ";"]


def _random_path(rng: random.Random) -> str:
    return "/" + "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(12)))


def test_the_upstream_decodes_exactly_what_policy_matched() -> None:
    """Decoding the encoded form once gives the decoded form, for many random paths."""
    rng = random.Random(7)  # noqa: S311 (seeded on purpose: reproducible cases)
    for _ in range(5000):
        raw = _random_path(rng)
        try:
            path = normalize_path(raw)
        except BadRequest:
            continue
        assert unquote(path.encoded, errors="strict") == path.decoded, raw


def test_normalising_twice_changes_nothing() -> None:
    """The encoded form is a fixed point: an upstream normalising again finds nothing to change."""
    rng = random.Random(11)  # noqa: S311 (seeded on purpose: reproducible cases)
    for _ in range(5000):
        raw = _random_path(rng)
        try:
            path = normalize_path(raw)
        except BadRequest:
            continue
        assert normalize_path(path.encoded) == path, raw


def test_normal_form_has_no_dot_segments_or_empty_segments() -> None:
    """The decoded form never holds ".", ".." or an empty segment, except a trailing slash."""
    rng = random.Random(13)  # noqa: S311 (seeded on purpose: reproducible cases)
    for _ in range(5000):
        raw = _random_path(rng)
        try:
            decoded = normalize_path(raw).decoded
        except BadRequest:
            continue
        segments = decoded.split("/")[1:]
        inner = segments[:-1] if decoded != "/" else []
        assert not {".", ".."} & set(segments), raw
        assert "" not in inner, raw
