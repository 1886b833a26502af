"""The Cookie maps of `idgate render nginx`: a map per idgate cookie taken out, then a check
that fails closed. What they let through is tested through real nginx (tests/e2e)."""

from __future__ import annotations

import re

from proxy.render.cookie_maps import TAKEN_OUT, TOOL_COOKIE, cookie_maps
from proxy.sessions.cookie_store import MAX_CHUNKS


def test_there_is_a_map_for_the_whole_cookie_and_every_chunk() -> None:
    """The maps chain from $http_cookie through one map per cookie a browser can carry (the
    whole cookie and MAX_CHUNKS chunks) to the tool's variable."""
    heads = re.findall(r"^map (\S+) (\S+) \{$", cookie_maps("_idgate"), re.MULTILINE)
    assert TAKEN_OUT == MAX_CHUNKS + 1
    assert [source for source, _ in heads] == [
        "$http_cookie",
        *(f"$idgate_cookie_{index}" for index in range(1, TAKEN_OUT + 1)),
    ]
    assert [target for _, target in heads] == [source for source, _ in heads[1:]] + [TOOL_COOKIE]


def test_the_last_map_gives_the_tool_no_cookie_when_one_is_left() -> None:
    """The last map has one pattern, any idgate cookie anywhere, and it maps to nothing."""
    text = cookie_maps("_idgate")
    last = text[text.index(f"map $idgate_cookie_{TAKEN_OUT} {TOOL_COOKIE}") :]
    [pattern] = re.findall(r'^    "(~.*)" "";$', last, re.MULTILINE)
    assert pattern.startswith("~(?:^|;)")
    assert last.count("\n") == 4


def test_the_cookie_name_is_matched_literally() -> None:
    """A name with regex characters (RFC 6265 allows `.`, `+`, `*`, `|`) is escaped in every
    pattern, so `a.b` never takes out the tool's `axb`."""
    text = cookie_maps("a.b+c")
    assert text.count(r"a\.b\+c") == 2 * TAKEN_OUT + 1
    assert "a.b+c(" not in text
