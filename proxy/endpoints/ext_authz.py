"""`/oauth2/ext_authz/...`: the decision for Envoy's HTTP ext_authz filter, and so for Istio's
`CUSTOM` AuthorizationPolicy (`envoyExtAuthzHttp`) and Envoy Gateway's `extAuth.http`.

Envoy sends the check as the original request itself: its method, its `Host`, and its path
(query included) appended to the service's `path_prefix`, with `Authorization` and whichever
other headers it is told to include (the session cookie must be one). It treats only 200 as an
allow and then copies the headers it is told to (`allowed_upstream_headers`, Istio's
`headersToUpstreamOnAllow`) onto the request it forwards; any other answer is a denial whose
status, body and chosen headers (`allowed_client_headers`, `headersToDownstreamOnDeny`) go back
to the client as they are. So, unlike `/oauth2/auth`, this answers as the proxy would: 200 with
the identity headers on allow, 401 with the Bearer challenge for an API client, a redirect to
sign in for a browser, 403 on deny, 404 for a path no route serves, 400 for a malformed one.
"""

from __future__ import annotations

from aiohttp import web

from proxy.endpoints.own_paths import ext_authz_target
from proxy.errors import BadRequest
from proxy.forward.identity_headers import identity_headers
from proxy.stages.authorize import authorize
from proxy.stages.context import RequestContext
from proxy.stages.pages import NO_STORE
from proxy.stages.paths import normalize_path


async def check(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    target = ext_authz_target(request.raw_path, ctx.runtime.settings.prefix)
    if target is None:
        raise BadRequest("not an ext_authz check path")
    raw_path, _, query = target.partition("?")
    path = normalize_path(raw_path)
    # Judged, counted, logged and refused as the original request it is (a browser without a
    # session is sent to sign in and back to that request's URL).
    ctx.own_endpoint = False
    ctx.path, ctx.upstream_path, ctx.query = path.decoded, path.encoded, query
    decision = await authorize(request, ctx)
    headers = {"Cache-Control": NO_STORE}
    if ctx.principal is not None:
        headers |= identity_headers(
            ctx.principal,
            decision.route,
            ctx.runtime.signer,
            session_access_token=ctx.session_access_token,
        )
    return web.Response(status=200, headers=headers)
