"""The one place where an IdgateError becomes an HTTP response.

Bodies say what happened in words a client may see (status, reason, request id) and nothing more:
no token, no upstream address, no exception text. Every response idgate writes itself is
`Cache-Control: no-store` so no shared cache keeps an identity-dependent answer.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from proxy.errors import IdgateError, InvalidToken, ProviderUnavailable, Unauthenticated

NO_STORE: Final = "no-store"
_REALM: Final = 'Bearer realm="idgate"'


def json_response(payload: object, *, status: int = 200) -> web.Response:
    response = web.json_response(payload, status=status)
    response.headers["Cache-Control"] = NO_STORE
    return response


def error_response(error: IdgateError, *, request_id: str | None) -> web.Response:
    payload: dict[str, object] = {
        "error": error.public_message,
        "reason": error.reason.value,
        "status": error.status,
    }
    if request_id is not None:
        payload["request_id"] = request_id
    response = json_response(payload, status=error.status)
    if isinstance(error, InvalidToken):
        # RFC 6750 3.1: "invalid_token ... The resource SHOULD respond with ... 401".
        response.headers["WWW-Authenticate"] = f'{_REALM}, error="invalid_token"'
    elif isinstance(error, Unauthenticated):
        # RFC 6750 3.1: a request without credentials gets the challenge without an error code.
        response.headers["WWW-Authenticate"] = _REALM
    elif isinstance(error, ProviderUnavailable):
        response.headers["Retry-After"] = "5"
    return response
