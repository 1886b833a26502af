"""The runtime bundle: everything built from one Settings, swapped whole on reload.

A request takes `holder.current` once and uses that bundle to the end, so a reload never mixes
two configurations inside one request. Provider keys are kept across a reload whose `oidc`
section did not change: a reload must not drop working keys while the provider is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import ClientSession

from proxy.assertion import AssertionSigner
from proxy.config.model import Settings
from proxy.identity.bearer import BearerVerifier
from proxy.metrics import Metrics
from proxy.oidc.jwks import ProviderKeys
from proxy.policy.routes import RouteTable


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    routes: RouteTable
    provider: ProviderKeys
    verifier: BearerVerifier
    signer: AssertionSigner

    @property
    def ready(self) -> bool:
        return self.provider.ready


class RuntimeHolder:
    """The one mutable cell: which Runtime serves new requests."""

    __slots__ = ("current",)

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime


async def build_runtime(
    settings: Settings,
    *,
    http: ClientSession,
    metrics: Metrics,
    previous: Runtime | None = None,
) -> Runtime:
    """A started Runtime; reuses `previous`'s provider keys when `oidc` is unchanged."""
    if previous is not None and previous.settings.oidc == settings.oidc:
        provider = previous.provider
    else:
        provider = ProviderKeys(settings.oidc, http, metrics)
        await provider.start()
    return Runtime(
        settings=settings,
        routes=RouteTable(settings.routes),
        provider=provider,
        verifier=BearerVerifier(settings.oidc, provider, metrics),
        signer=AssertionSigner(settings.session.secrets, issuer=settings.public_url),
    )


async def retire_runtime(old: Runtime, new: Runtime | None) -> None:
    """Release what `old` holds that `new` did not take over."""
    if new is None or new.provider is not old.provider:
        await old.provider.close()
