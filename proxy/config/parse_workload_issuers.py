"""An issuer's kind-specific blocks: `kubernetes` (service-account tokens) and `spiffe`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from proxy.config.addresses import base_url
from proxy.config.issues import key_path
from proxy.config.model import KubernetesSettings, SpiffeSettings
from proxy.config.parse_tls import path_value
from proxy.config.reader import Section, given
from proxy.config.values import (
    InvalidValueError,
    boolean,
    duration,
    int_between,
    trust_domain,
)

#: A TokenReview answer is reused at most this long: the point of asking is to notice deletions.
MAX_TOKEN_REVIEW_CACHE_SECONDS: Final = 300.0


def parse_kubernetes(section: Section) -> KubernetesSettings:
    api_server = section.get("api_server", _https_origin)
    if api_server is None and not section.has("api_server"):
        api_server = _in_cluster_api_server(section)
    kubernetes = KubernetesSettings(
        api_server=api_server or "",
        **given(
            ca_file=section.get("ca_file", path_value),
            token_file=section.get("token_file", path_value),
            token_review=section.get("token_review", boolean),
            token_review_cache_seconds=section.get("token_review_cache", _review_cache),
            token_review_cache_size=section.get(
                "token_review_cache_size", int_between(1, 1_000_000)
            ),
        ),
    )
    section.close()
    return kubernetes


def parse_spiffe(section: Section) -> SpiffeSettings:
    spiffe = SpiffeSettings(
        trust_domain=section.get("trust_domain", trust_domain, required=True) or ""
    )
    section.close()
    return spiffe


def _in_cluster_api_server(section: Section) -> str | None:
    """`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, as client-go's
    `rest.InClusterConfig` finds the API server from inside a pod."""
    environ: Mapping[str, str] = section.context.environ
    host = environ.get("KUBERNETES_SERVICE_HOST")
    if not host:
        section.issue(
            "required outside a pod (KUBERNETES_SERVICE_HOST is not set): the API server's"
            " https://host:port",
            key="api_server",
        )
        return None
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    shown = f"[{host}]" if ":" in host else host
    return section.context.convert(
        f"https://{shown}:{port}", key_path(section.path, "api_server"), _from_environment
    )


def _from_environment(value: object) -> str:
    try:
        return _https_origin(value)
    except InvalidValueError as problem:
        raise InvalidValueError(
            f"from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT: {problem}"
        ) from None


def _https_origin(value: object) -> str:
    origin = base_url(value)
    # The pod's token goes to this origin: never in the clear.
    if not origin.startswith("https://"):
        raise InvalidValueError("must be an https:// URL: the pod's token is sent to it")
    return origin


def _review_cache(value: object) -> float:
    seconds = duration(value)
    if seconds > MAX_TOKEN_REVIEW_CACHE_SECONDS:
        raise InvalidValueError(
            "must be at most 5m: a longer cache keeps accepting a deleted pod's token"
        )
    return seconds
