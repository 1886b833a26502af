"""An issuer's kind-specific blocks: `kubernetes` (service-account tokens) and `spiffe`
(JWT-SVIDs), and the generic issuer keys each of these kinds does without."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from proxy.config.addresses import base_url
from proxy.config.issues import key_path
from proxy.config.model import (
    ASYMMETRIC_ALGORITHMS,
    IssuerKind,
    IssuerSettings,
    KubernetesSettings,
    SpiffeSettings,
)
from proxy.config.parse_tls import path_value
from proxy.config.reader import Section, given
from proxy.config.values import (
    InvalidValueError,
    boolean,
    duration_at_most,
    int_between,
    trust_domain,
)

T = TypeVar("T")

#: A TokenReview answer is reused at most this long: the point of asking is to notice deletions.
MAX_TOKEN_REVIEW_CACHE_SECONDS: Final = 300.0
_review_cache = duration_at_most(
    MAX_TOKEN_REVIEW_CACHE_SECONDS, why=": a longer cache keeps accepting a deleted pod's token"
)
#: JWT-SVID 2.1: `alg` "MUST be set to one of the values defined in RFC 7518 sections 3.3, 3.4,
#: or 3.5": RSA, ECDSA and RSA-PSS; EdDSA is not among them.
JWT_SVID_ALGORITHMS: Final = ASYMMETRIC_ALGORITHMS - {"EdDSA"}


def with_kind_settings(section: Section, issuer: IssuerSettings) -> IssuerSettings:
    """`issuer` with its kind's block read from the issuer's `section`; a block of another kind,
    or a generic key the kind does without, is reported."""
    kubernetes = _block(section, issuer.kind, IssuerKind.KUBERNETES, parse_kubernetes)
    spiffe = _block(section, issuer.kind, IssuerKind.SPIFFE, parse_spiffe)
    if issuer.kind is not IssuerKind.OIDC and section.has("claims"):
        section.issue(
            f"not for kind {issuer.kind}: the identity is what the token names"
            " (the service account, or the SPIFFE ID)",
            key="claims",
        )
    if kubernetes is not None:
        for key in ("discovery", "jwks_uri", "ca_file"):
            if section.has(key):
                section.issue(
                    "not for kind kubernetes: discovery and keys come from kubernetes.api_server,"
                    " verified with kubernetes.ca_file",
                    key=key,
                )
        return dataclasses.replace(issuer, kubernetes=kubernetes)
    if spiffe is not None:
        _require_for_spiffe(section, issuer)
        algorithms = _svid_algorithms(section, issuer.algorithms)
        return dataclasses.replace(issuer, spiffe=spiffe, algorithms=algorithms)
    return issuer


def _block(
    section: Section, kind: IssuerKind, block_kind: IssuerKind, parse: Callable[[Section], T]
) -> T | None:
    key = block_kind.value
    if kind is block_kind:
        return parse(section.section(key))
    if section.has(key):
        section.issue(f"only for kind: {key}", key=key)
    return None


def _require_for_spiffe(section: Section, issuer: IssuerSettings) -> None:
    if issuer.jwks_uri is None and not section.has("jwks_uri"):
        section.issue(
            "required: the trust domain's bundle endpoint (a SPIFFE bundle is a JWKS)",
            key="jwks_uri",
        )


def _svid_algorithms(section: Section, algorithms: tuple[str, ...]) -> tuple[str, ...]:
    refused = [name for name in algorithms if name not in JWT_SVID_ALGORITHMS]
    if refused and section.has("algorithms"):
        section.issue(
            f"{', '.join(refused)}: not a JWT-SVID algorithm (JWT-SVID 2.1)", key="algorithms"
        )
    return tuple(name for name in algorithms if name in JWT_SVID_ALGORITHMS)


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
