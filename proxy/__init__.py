"""idgate: an identity-aware reverse proxy.

Before any stage, server/connections.py admits each connection (at most `server.max_connections`
per worker) and gives its first request head `server.request_head_timeout` to arrive. Every
request then passes the same stages, outermost first (docs/architecture.md has the whole walk):

    observe    stages/observe.py    timing, metrics, decision log; the one error -> response mapping
    accept     stages/accept.py     strip client-sent identity headers, believe X-Forwarded-* only
                                    from trusted proxies, normalise the path once; the context
    dispatch   server/dispatch.py   own endpoints (endpoints/) by exact path, else the proxy
    authorize  stages/authorize.py  match the route (none: 404); public routes need no identity;
                                    else identify, then evaluate the policy (deny wins; audit mode)
    identify   stages/identify.py   bearer JWT -> client certificate -> session cookie
                                    => Principal | None | error
    forward    forward/             upstream with identity headers and a signed assertion: HTTP
                                    through upstream/, WebSockets as tunnels

One RequestContext (stages/context.py) travels with the request: accept creates it with the
Runtime taken once for the whole request, later stages fill it in. The domain packages below the
stages (config/, policy/, identity/, oidc/, sessions/, upstream/, observability/) know nothing of
requests; the pure ones (policy/, stages/paths.py, endpoints/redirects.py, errors, upstream/)
import nothing from aiohttp, so `idgate explain` runs them without a server.

Configuration (config/) is parsed into frozen dataclasses, then built into one immutable Runtime
(runtime.py) that a reload (server/reload.py) swaps whole, keeping the old one when the new config
has any issue.
"""

__version__ = "0.1.0"
