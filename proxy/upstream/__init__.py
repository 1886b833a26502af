"""idgate's HTTP/1.1 client for upstreams: pooled keep-alive connections, streamed bodies.

aiohttp's client is general (redirects, cookies, decompression, many hooks) and its per-request
machinery was the largest cost of a proxied request; idgate needs none of that on this path.
WebSockets still go through aiohttp's client (proxy/forward/websocket.py).
"""

from proxy.upstream.connection import UpstreamResponse
from proxy.upstream.pool import Origin, RequestBody, UpstreamPool
from proxy.upstream.request_head import request_head
from proxy.upstream.tls import UpstreamTLSContexts

__all__ = [
    "Origin",
    "RequestBody",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTLSContexts",
    "request_head",
]
