"""Observe: the outermost stage. Times every request, maps every error to its one response,
counts it, and writes its decision-log line.

An error that is not an IdgateError is a bug: it is logged with its traceback and answered with
a bare 500 that says nothing about the cause (fail closed: nothing was forwarded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from proxy.errors import BadRequest, IdgateError, RequestTooLarge
from proxy.observability.decision_log import log_decision
from proxy.observability.metrics import ROUTE_IDGATE, ROUTE_NONE, method_label, status_class
from proxy.observability.tracing import RequestTrace
from proxy.runtime import Runtime
from proxy.stages.accept import refused_request
from proxy.stages.context import CONTEXT_KEY, RefusedRequest, RequestContext
from proxy.stages.decision_line import decision_line
from proxy.stages.limits import after_failure
from proxy.stages.responses import error_response

_log = logging.getLogger("idgate.observe")

#: nginx's status for "client closed the connection before the response": counted and logged,
#: never sent (there is no one to send it to).
_CLIENT_CLOSED_REQUEST: Final = 499


def _from_http_exception(exc: web.HTTPException) -> IdgateError:
    if exc.status in (413, 431):
        return RequestTooLarge("request too large")
    return BadRequest("bad request")


def _route_label(ctx: RequestContext | None) -> str:
    if ctx is None:
        return ROUTE_NONE
    if ctx.route is not None:
        return ctx.route.name
    return ROUTE_IDGATE if ctx.own_endpoint else ROUTE_NONE


async def observe(
    request: web.Request,
    runtime: Runtime,
    handler: Callable[[web.Request, Runtime], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """`handler(request, runtime)`'s response, or the one response its error maps to; counted and
    logged either way. `runtime` is the one this request uses from start to end."""
    started = time.perf_counter()
    error: IdgateError | None = None
    client_gone = False
    try:
        response = await handler(request, runtime)
    except IdgateError as exc:
        error = exc
    except ConnectionResetError:
        # The client hung up before its response could start (nginx logs this as 499): not an
        # error of idgate's, and nothing more can be sent to it.
        client_gone = True
    except web.HTTPException as exc:
        # aiohttp's own refusals (body too large, bad multipart): always a client error here.
        error = _from_http_exception(exc)
    except Exception:  # noqa: BLE001 (a bug must still get a response; it is logged in full)
        _log.exception("unhandled error while serving a request")
        error = IdgateError("internal error")
    ctx = request.get(CONTEXT_KEY)
    settings = runtime.settings
    if error is not None and ctx is not None:
        error = after_failure(ctx, error)
    if error is not None:
        response = error_response(error, request=request, ctx=ctx, settings=settings)
    elif client_gone:
        response = web.Response(status=_CLIENT_CLOSED_REQUEST)

    latency = time.perf_counter() - started
    route = _route_label(ctx)
    metrics = runtime.metrics
    metrics.child(
        metrics.requests, route, method_label(request.method), status_class(response.status)
    ).inc()
    metrics.child(metrics.request_duration, route).observe(latency)
    if ctx is not None and ctx.decision is not None:
        # The enums are StrEnums: label and log values as they are, `.value` costs a lookup.
        metrics.child(metrics.decisions, route, ctx.decision.outcome, ctx.decision.reason).inc()
    reason = error.reason if error is not None else None
    if ctx is not None and ctx.trace is not None:
        _end_trace(ctx, ctx.trace, status=response.status, route=route, reason=reason)
    subject: RequestContext | RefusedRequest
    if ctx is None:
        # Refused by accept: the line and the response still share a request id.
        subject = refused_request(request)
        response.headers["X-Request-Id"] = subject.request_id
    else:
        subject = ctx
    if settings.log.decisions:
        log_decision(
            decision_line(
                subject, status=response.status, route=route, latency=latency, reason=reason
            )
        )
    return response


def _end_trace(
    ctx: RequestContext, trace: RequestTrace, *, status: int, route: str, reason: str | None
) -> None:
    decision = ctx.decision
    principal = ctx.principal
    trace.finish(
        status=status,
        route=route,
        path=ctx.path,
        client_ip=ctx.client_ip,
        request_id=ctx.request_id,
        decision=None if decision is None else decision.outcome,
        reason=reason if decision is None else decision.reason,
        user=None if principal is None else principal.user,
    )
