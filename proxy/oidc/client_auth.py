"""`client_secret_basic` (RFC 6749 2.3.1): how idgate authenticates to the provider's endpoints."""

from __future__ import annotations

from urllib.parse import quote_plus

import aiohttp

from proxy.config.model import Secret


def basic_authorization(client_id: str, client_secret: Secret) -> str:
    """The `Authorization` header value. RFC 6749 2.3.1: "The client identifier is encoded using
    the application/x-www-form-urlencoded encoding algorithm per Appendix B, and the encoded value
    is used as the username; the client password is encoded using the same algorithm and used as
    the password." (aiohttp's BasicAuth skips that encoding.)"""
    return aiohttp.encode_basic_auth(
        quote_plus(client_id, safe=""), quote_plus(client_secret.reveal(), safe="")
    )
