"""The Cookie maps of `idgate render nginx`: a map per idgate cookie taken out, then a check
that fails closed. What they let through is tested through real nginx (tests/e2e)."""

from __future__ import annotations

import re

from proxy.render.cookie_maps import TAKEN_OUT, TOOL_COOKIE, cookie_maps
from proxy.sessions.cookie_store import MAX_CHUNKS


def test_there_is_a_map_for_the_whole_cookie_and_every_chunk() -> None:
    """One map per cookie a browser can carry (the whole cookie and MAX_CHUNKS chunks): each
    takes the first idgate cookie out and hands what is left to the next, which reads it (and
    so runs) only when one was taken out."""
    text = cookie_maps("_idgate")
    heads = re.findall(r"^map (\S+) (\S+) \{$", text, re.MULTILINE)
    assert TAKEN_OUT == MAX_CHUNKS + 1
    assert heads == [
        ("$http_cookie", TOOL_COOKIE),
        *(
            (f'"$idgate_head_{n}$idgate_tail_{n}"', f"$idgate_cookie_{n}")
            for n in range(1, TAKEN_OUT + 1)
        ),
    ]
    for taken, (source, _) in enumerate(heads[:-1]):
        body = text[text.index(f"map {source} ") :].split("\n}\n")[0]
        assert body.count(f" $idgate_cookie_{taken + 1};") == 2
        assert f"(?<idgate_head_{taken + 1}>" in body
        assert f"    default {source};" in body


def test_the_last_map_gives_the_tool_no_cookie_when_one_is_left() -> None:
    """The last map has one pattern, any idgate cookie anywhere, and it maps to nothing."""
    text = cookie_maps("_idgate")
    n = TAKEN_OUT
    last = text[text.index(f'map "$idgate_head_{n}$idgate_tail_{n}" $idgate_cookie_{n} {{') :]
    [pattern] = re.findall(r'^    "(~.*)" "";$', last, re.MULTILINE)
    assert pattern.startswith("~(?:^|;)")
    assert last.count("\n") == 4


def test_the_cookie_name_is_matched_literally() -> None:
    """A name with regex characters (RFC 6265 allows `.`, `+`, `*`, `|`) is escaped in every
    pattern, so `a.b` never takes out the tool's `axb`."""
    text = cookie_maps("a.b+c")
    assert text.count(r"a\.b\+c") == 2 * TAKEN_OUT + 1
    assert "a.b+c(" not in text
