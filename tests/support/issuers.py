"""A BearerVerifier over one issuer (the `oidc` block's) and any key source, for unit tests."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import Key

from proxy.config.model import IssuerSettings, OIDCSettings
from proxy.identity.bearer import BearerVerifier
from proxy.identity.issuers import Issuer, IssuerRegistry
from proxy.identity.token_kind import refuse_id_tokens
from proxy.observability.metrics import Metrics
from proxy.oidc.provider_jwt import KeySource


class LoadedKeys:
    """Any key source as an issuer's keys that are loaded and need no starting."""

    ready = True
    discovered_issuer = None

    def __init__(self, keys: KeySource) -> None:
        self._keys = keys

    async def key_for(self, kid: str | None, alg: str) -> Key:
        return await self._keys.key_for(kid, alg)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def browser_issuer(oidc: OIDCSettings, keys: KeySource) -> Issuer:
    """The `oidc` block's issuer on `keys`."""
    return Issuer(oidc.as_issuer, LoadedKeys(keys), refuse_id_tokens=refuse_id_tokens(oidc))


def named_issuer(settings: IssuerSettings, keys: KeySource) -> Issuer:
    return Issuer(settings, LoadedKeys(keys), refuse_id_tokens=refuse_id_tokens(None))


def bearer_verifier(
    oidc: OIDCSettings, keys: KeySource, metrics: Metrics, *issuers: Issuer, **options: Any
) -> BearerVerifier:
    """A verifier for the `oidc` issuer on `keys`, then `issuers`; `options` as BearerVerifier's."""
    registry = IssuerRegistry((browser_issuer(oidc, keys), *issuers))
    return BearerVerifier(registry, metrics, **options)
