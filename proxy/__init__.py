"""idgate: an identity-aware reverse proxy.

Every request passes the same stages, outermost first:

    observe    proxy/observe.py   timing, metrics, decision log; the one error -> response mapping
    accept     proxy/accept.py    strip client-sent identity headers, believe X-Forwarded-*
                                  only from trusted proxies, normalise the path once, request id
    dispatch   proxy/dispatch.py  idgate's own endpoints by exact normalised path, else the proxy
    authorize  proxy/authorize.py match the route (none: 404); public routes need no identity;
                                  else identify, then evaluate the policy (deny wins; audit mode)
    identify   proxy/identify.py  bearer JWT -> client certificate -> session cookie
                                  => Principal | None | error
    forward    proxy/forward.py   stream upstream with identity headers and a signed assertion

observe and accept wrap the one catch-all handler; authorize and identify are called by the handler
that needs them (the proxy, `/oauth2/userinfo`), so an own endpoint such as `/healthz` never
touches credentials. The pure parts (proxy/paths.py, proxy/policy/, proxy/redirects.py) import
nothing from aiohttp; `idgate explain` runs them without a server.

Configuration (proxy/config/) is parsed into frozen dataclasses, then built into one immutable
Runtime (proxy/runtime.py) that a reload swaps whole, keeping the old one when the new config
has any issue.
"""

__version__ = "0.1.0"
