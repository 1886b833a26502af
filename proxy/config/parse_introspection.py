"""An issuer's `introspection` block: endpoint, client credentials, cache ceiling."""

from __future__ import annotations

from proxy.config.addresses import http_url
from proxy.config.model import IntrospectionSettings, Secret
from proxy.config.reader import Section, given
from proxy.config.values import boolean, int_between, secret, text

#: The ceiling on reusing an answer: a revoked token keeps working at most this long.
MAX_CACHE_SECONDS = 300


def parse_introspection(issuer: Section) -> IntrospectionSettings | None:
    if not issuer.has("introspection"):
        return None
    block = issuer.section("introspection")
    settings = IntrospectionSettings(
        client_id=block.get("client_id", text, required=True) or "",
        client_secret=block.get("client_secret", secret, required=True) or Secret(""),
        **given(
            endpoint=block.get("endpoint", http_url),
            cache_seconds=block.get(
                "cache_seconds",
                int_between(
                    0,
                    MAX_CACHE_SECONDS,
                    why=": a revoked token keeps working as long as its answer is reused",
                ),
            ),
            require_audience=block.get("require_audience", boolean),
        ),
    )
    block.close()
    return settings
