"""The `forward_auth` section: how `/oauth2/auth` answers gateways."""

from __future__ import annotations

from typing import Final

from proxy.config.model import ForwardAuthSettings
from proxy.config.reader import Section, given
from proxy.config.values import int_between

#: A gateway may go on serving a revoked caller's cached allow this long: keep it short. It also
#: keeps every cached assertion (5-minute exp) at least 4 minutes from expiring.
MAX_DECISION_CACHE_SECONDS: Final = 60


def parse_forward_auth(section: Section) -> ForwardAuthSettings:
    seconds = int_between(
        0, MAX_DECISION_CACHE_SECONDS, why=" (seconds a gateway may reuse an allow; 0: never)"
    )
    settings = ForwardAuthSettings(
        **given(decision_cache_seconds=section.get("decision_cache_seconds", seconds))
    )
    section.close()
    return settings
