"""Header names accept judges a request by, and the one way names are compared. Pure: the
forwarding code (proxy/forward/headers.py) and gateway configs read the same lists.
"""

from __future__ import annotations

from typing import Final

from proxy.identity.client_cert import FORWARDED_CLIENT_CERT_HEADERS


def header_key(name: str) -> str:
    """The comparable form of a header name: lower case, `_` read as `-`."""
    return name.lower().replace("_", "-")


#: Every header an upstream might take as identity. Beyond idgate's own, the names that
#: oauth2-proxy, Pomerium and Apache set, so an upstream migrated from them cannot be fooled either.
IDENTITY_HEADERS: Final = frozenset(
    {
        "x-authenticated-user",
        "x-authenticated-email",
        "x-authenticated-groups",
        "x-authenticated-assertion",
        "x-authenticated-issuer",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-groups",
        "x-auth-request-preferred-username",
        "x-auth-request-access-token",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-forwarded-access-token",
        "x-pomerium-jwt-assertion",
        "x-pomerium-claim-email",
        "x-remote-user",
        "remote-user",
    }
)

#: Forwarding headers: believed from trusted proxies only, otherwise dropped.
FORWARDING_HEADERS: Final = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-forwarded-server",
        "x-original-uri",
        "x-original-url",
        "x-original-method",
        "x-real-ip",
    }
    # Client certificates a TLS-terminating proxy verified (Envoy/Istio XFCC, nginx, Traefik,
    # RFC 9440); proxy/stages/identify.py reads the configured one only from trusted proxies, too.
    | FORWARDED_CLIENT_CERT_HEADERS
)
