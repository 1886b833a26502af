"""A cluster's service-account issuer: its discovery and keys, from its API server.

Kept fresh like any issuer's keys (`ProviderKeys`); only the fetching differs: through
`KubernetesApi`, which sends the pod's token to the API server and nowhere else. `iss` is the
`issuer` discovery states, unless the issuer's settings name one (then discovery must agree).

The keys come from the API server's own `/openid/v1/jwks` whatever discovery advertises: the
advertised `jwks_uri` (`--service-account-jwks-uri`) is for verifiers outside the cluster, which
may reach neither the API server nor its CA; the API server serves the same keys at this path
(Kubernetes, "Service account issuer discovery").
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp

from proxy.config.model import IssuerSettings
from proxy.observability.metrics import Metrics
from proxy.oidc.discovery import WELL_KNOWN_PATH, ProviderMetadata
from proxy.oidc.jwks import ProviderKeys
from proxy.oidc.kubernetes_api import KubernetesApi

JWKS_PATH: Final = "/openid/v1/jwks"


class KubernetesKeys(ProviderKeys):
    def __init__(
        self, settings: IssuerSettings, http: aiohttp.ClientSession, metrics: Metrics
    ) -> None:
        assert settings.kubernetes is not None  # the config loader gives the kind its block
        super().__init__(settings, http, metrics)
        self._api = KubernetesApi(settings.kubernetes, http, timeout=settings.http_timeout_seconds)

    async def _key_document(self) -> dict[str, Any]:
        if self._metadata is None:
            document = await self._api.get(WELL_KNOWN_PATH)
            self._metadata = ProviderMetadata.parse(document, issuer=self._settings.issuer)
        return await self._api.get(JWKS_PATH)
