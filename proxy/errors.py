"""Every error idgate turns into a response, each with its HTTP status and its Reason.

    IdgateError
    ├── BadRequest                400  malformed path, header or parameter
    │   ├── RequestTooLarge       431  header or cookie over the bound, refused before any parsing
    │   └── RequestTimeout        408  the request body stalled (`server.body_idle_timeout`)
    ├── Unauthenticated           401  no credentials, or credentials that did not verify
    │   ├── InvalidToken          401  a token was presented and failed (carries TokenFailure)
    │   ├── SignInFailed          401  the browser sign-in did not complete; offer to start again
    │   └── StepUpRequired        401  the sign-in is older or weaker than the route's `step_up`
    ├── Forbidden                 403  identified, and the route's policy says no
    ├── ForwardAuthRefused        403  /oauth2/auth for a target that is malformed or has no route
    ├── OriginRefused             403  a WebSocket handshake from an origin the route refuses
    ├── NoRoute                   404  no route matches: nothing is open by default
    ├── MethodNotAllowed          405  a method idgate's own endpoint does not serve
    ├── RateLimited               429  a client past one of `rate_limits` (sign-ins, 401s)
    ├── ProviderUnavailable       503  no provider keys yet: fail closed, retry later
    └── UpstreamError             502  the upstream refused or broke the connection
        └── UpstreamTimeout       504  the upstream did not answer in time

Domain code raises these; `proxy/stages/responses.py` is the one place that turns them into HTTP.
Nothing here imports aiohttp.
"""

from __future__ import annotations

from typing import ClassVar

from proxy.reasons import Reason, TokenFailure


class IdgateError(Exception):
    status: ClassVar[int] = 500
    reason: Reason = Reason.INTERNAL_ERROR

    def __init__(self, message: str = "", *, reason: Reason | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if reason is not None:
            self.reason = reason

    @property
    def public_message(self) -> str:
        """What the client may read: the message, which never holds a token or internal detail."""
        return str(self)


class BadRequest(IdgateError):
    status = 400
    reason = Reason.BAD_REQUEST


class RequestTooLarge(BadRequest):
    status = 431


class RequestTimeout(BadRequest):
    """RFC 9110 15.5.9: "the server did not receive a complete request message within the time
    that it was prepared to wait"."""

    status = 408


class Unauthenticated(IdgateError):
    status = 401
    reason = Reason.NO_CREDENTIALS


class InvalidToken(Unauthenticated):
    reason = Reason.INVALID_TOKEN

    def __init__(
        self, failure: TokenFailure, message: str = "", *, issuer: str | None = None
    ) -> None:
        super().__init__(message or f"token rejected: {failure.value}")
        self.failure = failure
        self.issuer = issuer
        """Name of the issuer the token was matched to, once known (decision log, metrics)."""


class SignInFailed(Unauthenticated):
    reason = Reason.SIGN_IN_FAILED


class StepUpRequired(Unauthenticated):
    """RFC 9470's `insufficient_user_authentication`: what the route asks, for the challenge."""

    reason = Reason.STEP_UP

    def __init__(self, *, max_age: int | None, acr_values: tuple[str, ...]) -> None:
        super().__init__("a more recent or stronger sign-in is required")
        self.max_age = max_age
        self.acr_values = acr_values


class Forbidden(IdgateError):
    status = 403
    reason = Reason.NOT_ALLOWED

    def __init__(self, reason: Reason) -> None:
        super().__init__("access denied", reason=reason)


class ForwardAuthRefused(IdgateError):
    """nginx's auth_request treats any status but 2xx, 401 and 403 as an error (500), so
    forward-auth says 403 for targets the proxy itself would answer with 400 or 404."""

    status = 403


class OriginRefused(IdgateError):
    """Cross-site WebSocket hijacking defence: browsers send cookies on cross-site handshakes."""

    status = 403
    reason = Reason.ORIGIN


class NoRoute(IdgateError):
    status = 404
    reason = Reason.NO_ROUTE


class MethodNotAllowed(IdgateError):
    status = 405
    reason = Reason.BAD_REQUEST


class RateLimited(IdgateError):
    """A client past one of `rate_limits`; `retry_after` seconds until it may try again."""

    status = 429
    reason = Reason.RATE_LIMITED

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many requests")
        self.retry_after = retry_after


class ProviderUnavailable(IdgateError):
    status = 503
    reason = Reason.PROVIDER_UNAVAILABLE


class UpstreamError(IdgateError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504


class UpstreamIdentityMismatch(UpstreamError):
    """The upstream's certificate verified but does not name the workload the route expects
    (`upstream_tls.spiffe_id`): talking to it would send the request to someone else."""
