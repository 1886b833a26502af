"""What a CORS preflight looks like, for routes with `allow_cors_preflight`.

Fetch Standard, "CORS-preflight request": an `OPTIONS` request whose `Access-Control-Request-
Method` names the method of the request to follow, sent with the `Origin` of the page, and
"credentials mode is "same-origin"": no cookies and no `Authorization` from the user agent.
A request that carries either is not one a browser sends as a preflight, and is judged as usual.
"""

from __future__ import annotations

from collections.abc import Mapping


def is_cors_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (
        method == "OPTIONS"
        and "Origin" in headers
        and "Access-Control-Request-Method" in headers
        and "Authorization" not in headers
        and "Cookie" not in headers
    )
