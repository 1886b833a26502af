"""The `issuers` list: named sources of bearer tokens, each with its keys, audiences and claims.

The `oidc` block is the issuer named `oidc`; the entries here add others (service tokens from
another provider, workloads). A token is matched to its issuer by its exact `iss`, so two issuers
that take bearer tokens may not share one.
"""

from __future__ import annotations

import re
from typing import Final

from proxy.config.addresses import http_url
from proxy.config.model import (
    BROWSER_ISSUER,
    ClaimMapping,
    IssuerKind,
    IssuerSettings,
    OIDCSettings,
    UpstreamTLS,
)
from proxy.config.parse_introspection import parse_introspection
from proxy.config.parse_tls import path_value
from proxy.config.parse_workload_issuers import with_kind_settings
from proxy.config.reader import Section, given
from proxy.config.tls_context import TLSFileError, build_client_context
from proxy.config.values import (
    InvalidValueError,
    algorithm,
    boolean,
    choice,
    duration,
    int_between,
    text,
    whole_seconds,
)

_ISSUER_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
#: Kinds whose issuer is an OAuth authorization server, which may introspect its tokens.
_INTROSPECTABLE: Final = frozenset({IssuerKind.OIDC})
_LEEWAY: Final = int_between(0, 60, why=": a longer leeway keeps expired tokens usable")


def parse_issuers(top: Section, oidc: OIDCSettings) -> tuple[IssuerSettings, ...]:
    sections = top.sections("issuers")
    if sections is None:
        return ()
    issuers: list[IssuerSettings] = []
    first_name: dict[str, str] = {BROWSER_ISSUER: "oidc"}
    # Only issuers that take bearer tokens are chosen by `iss`: the `oidc` block without
    # audiences serves sessions only and may share its `iss` with a named issuer.
    first_iss: dict[str, str] = {oidc.issuer: "oidc"} if oidc.accepted_audiences else {}
    introspecting: str | None = None
    for section in sections:
        issuer = _issuer(section)
        earlier = first_name.setdefault(issuer.name, section.path)
        if issuer.name and earlier != section.path:
            section.issue(f"{issuer.name!r} is already the name of {earlier}", key="name")
        if issuer.issuer is not None:
            earlier = first_iss.setdefault(issuer.issuer, section.path)
            if earlier != section.path:
                section.issue(
                    f"{earlier} has the same issuer: a token's `iss` must name one issuer",
                    key="issuer",
                )
        if issuer.introspection is not None:
            # An opaque token names no issuer: with two that introspect, every token would be
            # shown to both providers, each able to replay the other's tokens.
            if introspecting is not None:
                section.issue(
                    f"{introspecting} introspects opaque tokens already: only one issuer may",
                    key="introspection",
                )
            introspecting = introspecting or section.path
        issuers.append(issuer)
    return tuple(issuers)


def _issuer(section: Section) -> IssuerSettings:
    kind = section.get("kind", choice(IssuerKind)) or IssuerKind.OIDC
    algorithms = section.get_list("algorithms", algorithm)
    issuer = IssuerSettings(
        name=section.get("name", issuer_name, required=True) or "",
        audiences=section.get_list("audiences", text, required=True) or (),
        claims=parse_claims(section.section("claims")),
        **given(
            kind=kind,
            issuer=section.get("issuer", http_url, required=kind is IssuerKind.OIDC),
            discovery=section.get("discovery", http_url),
            jwks_uri=section.get("jwks_uri", http_url),
            ca_file=section.get("ca_file", path_value),
            algorithms=None if algorithms is None else tuple(dict.fromkeys(algorithms)),
            max_token_lifetime_seconds=section.get("max_token_lifetime", whole_seconds),
            require_access_token_type=section.get("require_access_token_type", boolean),
            leeway_seconds=section.get("leeway", _LEEWAY),
            jwks_refresh_seconds=section.get("jwks_refresh_interval", duration),
            jwks_min_refresh_seconds=section.get("jwks_min_refresh_interval", duration),
            http_timeout_seconds=section.get("http_timeout", duration),
            introspection=parse_introspection(section),
        ),
    )
    issuer = with_kind_settings(section, issuer)
    section.close()
    if issuer.introspection is not None and kind not in _INTROSPECTABLE:
        section.issue("only an oidc issuer's tokens can be introspected", key="introspection")
    if issuer.discovery is not None and issuer.jwks_uri is not None:
        section.issue(
            "discovery and jwks_uri exclude each other: keys come from one", key="jwks_uri"
        )
    if issuer.jwks_min_refresh_seconds > issuer.jwks_refresh_seconds:
        section.issue(
            "must not be longer than jwks_refresh_interval", key="jwks_min_refresh_interval"
        )
    if issuer.ca_file is not None:
        try:
            build_client_context(UpstreamTLS(ca_file=issuer.ca_file))
        except TLSFileError as error:
            section.issue(str(error), key="ca_file")
    return issuer


def parse_claims(section: Section) -> ClaimMapping:
    """An issuer's `claims`: `user`, `email` and `groups`, each one claim name or a list."""
    mapping = ClaimMapping(
        **given(
            user=section.get_list("user", claim_name, single=True),
            email=section.get_list("email", claim_name, single=True),
            groups=section.get_list("groups", claim_name, single=True),
        )
    )
    section.close()
    return mapping


def claim_name(value: object) -> str:
    """A claim name, a dotted path, or an RFC 6901 JSON Pointer (starting with `/`)."""
    name = text(value)
    # RFC 6901 3: "~" is escaped as "~0" and "/" as "~1"; any other "~" is no pointer at all.
    if name.startswith("/") and re.search(r"~(?![01])", name):
        raise InvalidValueError("a JSON Pointer writes '~' as ~0 and '/' as ~1 (RFC 6901)")
    return name


def issuer_name(value: object) -> str:
    name = text(value)
    if not _ISSUER_NAME.match(name):
        raise InvalidValueError(
            "use lower-case letters, digits and '-', starting with a letter or digit"
            " (it becomes a metric label and a header value)"
        )
    if name == BROWSER_ISSUER:
        raise InvalidValueError("`oidc` is the name of the issuer the oidc block describes")
    return name
