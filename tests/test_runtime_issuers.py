"""The runtime's issuers across a reload: unchanged issuers keep their keys, changed ones start
afresh, and the keys nobody took over are closed."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import ClientSession
from prometheus_client import CollectorRegistry

from proxy.config.model import IssuerSettings
from proxy.observability.metrics import Metrics
from proxy.runtime import build_runtime, retire_runtime
from tests.support.context import NO_PROVIDER
from tests.support.settings import make_settings

PARTNER = IssuerSettings(
    name="partner", issuer=NO_PROVIDER + "/partner", audiences=("api",), jwks_uri=NO_PROVIDER
)
CI = IssuerSettings(name="ci", issuer=NO_PROVIDER + "/ci", audiences=("api",), jwks_uri=NO_PROVIDER)


async def test_a_reload_keeps_the_keys_of_unchanged_issuers_only() -> None:
    settings = make_settings(NO_PROVIDER, NO_PROVIDER, issuers=(PARTNER, CI))
    changed_ci = dataclasses.replace(CI, audiences=("other-api",))
    reloaded = dataclasses.replace(settings, issuers=(PARTNER, changed_ci))
    async with ClientSession() as http:
        metrics = Metrics(CollectorRegistry())
        first = await build_runtime(settings, http=http, metrics=metrics)
        second = await build_runtime(reloaded, http=http, metrics=metrics, previous=first)
        await retire_runtime(first, second)
        try:
            old, new = first.issuers.issuers, second.issuers.issuers
            assert list(new) == ["oidc", "partner", "ci"]
            assert new["oidc"].keys is second.provider is first.provider
            assert new["partner"].keys is old["partner"].keys
            assert new["ci"].keys is not old["ci"].keys
            assert second.issuers.readiness() == {"oidc": False, "partner": False, "ci": False}
            # The replaced ci keys stopped refreshing: one refresher per issuer is left.
            names = sorted(task.get_name() for task in asyncio.all_tasks())
            assert [name for name in names if name.startswith("idgate-keys-")] == [
                "idgate-keys-ci",
                "idgate-keys-oidc",
                "idgate-keys-partner",
            ]
        finally:
            await retire_runtime(second, None)
