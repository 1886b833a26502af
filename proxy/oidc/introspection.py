"""Token introspection (RFC 7662): ask the provider whether an opaque access token is active.

idgate authenticates as a confidential client with `client_secret_basic`. The answer is
untrusted input like every provider document (bounded, a JSON object, checked by the caller);
every failure to get one is a `ProviderError` whose message holds neither the token nor the body.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp

from proxy.config.model import IntrospectionSettings
from proxy.errors import ProviderUnavailable
from proxy.observability.metrics import Metrics
from proxy.oidc.client_auth import basic_authorization
from proxy.oidc.discovery import ProviderError, ProviderMetadata, request_json_object

logger = logging.getLogger("idgate.oidc")


class IntrospectionClient:
    """One issuer's introspection endpoint, called with idgate's client credentials."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: IntrospectionSettings,
        metrics: Metrics,
        *,
        issuer: str,
        discovered: Callable[[], ProviderMetadata | None],
        timeout: float,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        """`issuer` names the issuer in metrics. `discovered` is its metadata once loaded: its
        `introspection_endpoint` is used unless `settings.endpoint` names one. `ssl` verifies
        the endpoint (the issuer's `ca_file`) instead of the system trust store."""
        self._http = http
        self._ssl = ssl
        self._metrics = metrics
        self._issuer = issuer
        self._settings = settings
        self._discovered = discovered
        self._authorization = basic_authorization(settings.client_id, settings.client_secret)
        self._timeout = timeout

    async def introspect(self, token: str) -> dict[str, Any]:
        """The endpoint's answer about `token`, with `active` a boolean. ProviderUnavailable when
        there is none: a token the endpoint has not vouched for is never let through."""
        try:
            answer = await self._ask(self._endpoint(), token)
        except ProviderError as error:
            self._count("failure")
            logger.warning("token introspection failed: %s", error)
            raise ProviderUnavailable("the token cannot be checked now") from None
        except ProviderUnavailable:
            self._count("failure")
            raise
        self._count("active" if answer["active"] else "inactive")
        return answer

    def _count(self, result: str) -> None:
        self._metrics.token_introspections.labels(result=result, issuer=self._issuer).inc()

    def _endpoint(self) -> str:
        if self._settings.endpoint is not None:
            return self._settings.endpoint
        metadata = self._discovered()
        if metadata is None:
            raise ProviderUnavailable("provider metadata is not loaded yet")
        if metadata.introspection_endpoint is None:
            logger.warning("the provider's discovery names no introspection_endpoint")
            raise ProviderUnavailable("the provider offers no token introspection")
        return metadata.introspection_endpoint

    async def _ask(self, endpoint: str, token: str) -> dict[str, Any]:
        # RFC 7662 2.1: "The protected resource calls the introspection endpoint using an HTTP
        # POST request with parameters sent as "application/x-www-form-urlencoded" data";
        # `token_type_hint` "access_token" spares the server a search through refresh tokens.
        answer = await request_json_object(
            self._http,
            "POST",
            endpoint,
            timeout=self._timeout,
            ssl_context=self._ssl,
            form={"token": token, "token_type_hint": "access_token"},
            headers={"Authorization": self._authorization},
        )
        # RFC 7662 2.2: "active REQUIRED. Boolean indicator of whether or not the presented token
        # is currently active."
        if not isinstance(answer.get("active"), bool):
            raise ProviderError(f"{endpoint} answered without a boolean `active`")
        return answer
