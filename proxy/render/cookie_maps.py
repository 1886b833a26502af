"""The nginx `map`s that keep idgate's cookies from the tool, as idgate's own forwarding does.

proxy/forward/headers.py drops every cookie `is_session_cookie` names: the session cookie, its
chunks `<name>_N`, the login-state cookies `<name>_state_...`, each also with `__Host-` or
`__Secure-`. nginx maps cannot loop, so the generated config chains one map per cookie taken out:
enough for the whole cookie and every chunk a session idgate writes can have (MAX_CHUNKS). A last
map checks the remainder, and if any idgate cookie is still there (a client sent more copies),
the tool gets no Cookie header at all: closed, never a session passed on.

A cookie's name is what lies between `;` and `=` with the bytes no name can hold (RFC 6265
4.1.1: a token) ignored around it. aiohttp, which reads the session, strips whitespace from
names, Unicode whitespace too, so `_idgate =x` and a tab or a no-break space before `_idgate`
are idgate's; `my_idgate=` and `_idgate_extra=` are the tool's own and pass.
"""

from __future__ import annotations

import re
from typing import Final

from proxy.sessions.cookie_store import MAX_CHUNKS

#: The variable the tool's `Cookie` header is set from.
TOOL_COOKIE: Final = "$idgate_cookie_for_tool"
#: The whole session cookie and each chunk: as many as one browser carries.
TAKEN_OUT: Final = 1 + MAX_CHUNKS
#: Any byte that cannot be part of a cookie name (a token), `;` and `=` aside.
_NOT_IN_NAME: Final = r"[^;=!#$%&'*+\-.^_`|~0-9A-Za-z]"


def _idgate_cookie(cookie_name: str) -> str:
    """PCRE for one of idgate's cookies, `name=value` or a bare `name`, up to the next `;`."""
    name = re.escape(cookie_name)
    return (
        f"{_NOT_IN_NAME}*(?:__Host-|__Secure-)?{name}(?:_[0-9]+|_state_[^;=]*)?"
        f"{_NOT_IN_NAME}*(?:=[^;]*)?"
    )


def cookie_maps(cookie_name: str) -> str:
    """The maps from `$http_cookie` to TOOL_COOKIE, with the comment that says why."""
    cookie = _idgate_cookie(cookie_name)
    maps = []
    for taken in range(TAKEN_OUT + 1):
        source = f'"$idgate_head_{taken}$idgate_tail_{taken}"' if taken else "$http_cookie"
        target = f"$idgate_cookie_{taken}" if taken else TOOL_COOKIE
        if taken < TAKEN_OUT:
            # The first idgate cookie, opening the header or after a `;`, comes out. Both
            # patterns set head and tail (the first an empty head) for the next map, which
            # nginx evaluates only when one matched: a header without idgate cookies costs
            # one scan, not one per map.
            head, tail, rest = (f"idgate_{part}_{taken + 1}" for part in ("head", "tail", "cookie"))
            entries = (
                f'    "~^(?<{head}>){cookie}(?:;[ \\t]*|$)(?<{tail}>.*)$" ${rest};\n'
                f'    "~^(?<{head}>.*?);{cookie}(?<{tail}>(?:;.*)?)$" ${rest};\n'
            )
        else:
            entries = f'    "~(?:^|;){cookie}(?:;|$)" "";\n'
        maps.append(f"map {source} {target} {{\n    default {source};\n{entries}}}\n")
    name = cookie_name
    return (
        f"# idgate's cookies are for idgate alone, as in idgate's own forwarding: {name} (whole,\n"
        f"# or in chunks {name}_0 to {name}_{MAX_CHUNKS - 1}), the login-state {name}_state_*, "
        "each also\n"
        "# with __Host- or __Secure-. nginx maps cannot loop: each map takes the first one out of\n"
        f"# the Cookie header the tool gets ({TAKEN_OUT} in all: the whole cookie and every chunk) "
        "and the\n"
        "# next reads the rest only if there was one; the last sends the tool no Cookie at all if\n"
        "# one is still there (a client sent more).\n" + "".join(maps)
    )
