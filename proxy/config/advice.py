"""Configurations that load but may not do what the operator means: warnings, not errors.

`idgate check` prints them and still exits 0; `idgate serve` logs them at start and on reload.
Pure, like the loader: settings in, issues out.
"""

from __future__ import annotations

from proxy.config.issues import ConfigIssue
from proxy.config.model import Settings


def config_warnings(settings: Settings) -> tuple[ConfigIssue, ...]:
    """Every warning about `settings`, each at its key path."""
    oidc = settings.oidc
    warnings: list[ConfigIssue] = []
    if oidc.accept_client_id_audience:
        warnings.append(
            ConfigIssue(
                path="oidc.accept_client_id_audience",
                message=(
                    f"bearer tokens for {oidc.client_id!r} (oidc.client_id) are accepted, and so "
                    "is every ID token idgate's users receive at sign-in: a leaked ID token opens "
                    "routes. Meant for migrating from oauth2-proxy; list your API's audiences in "
                    "oidc.audiences and remove this option once clients send access tokens"
                ),
            )
        )
    elif not oidc.audiences and not settings.issuers:
        warnings.append(
            ConfigIssue(
                path="oidc.audiences",
                message=(
                    "not set, so no bearer token is accepted (sessions and client certificates "
                    "still are); to accept API access tokens, list the `aud` your provider puts in "
                    "them (its resource or API identifier), e.g. audiences: [https://api.example.com]"
                ),
            )
        )
    for index, issuer in enumerate(settings.issuers):
        if issuer.introspection is not None and not issuer.introspection.require_audience:
            warnings.append(
                ConfigIssue(
                    path=f"issuers[{index}].introspection.require_audience",
                    message=(
                        f"opaque tokens of {issuer.name!r} are accepted without an `aud`: any "
                        "active token of that provider, whichever API it was issued for, opens "
                        "the routes that accept the issuer. Narrow them with a claims condition "
                        "on client_id or scope"
                    ),
                )
            )
    for index, route in enumerate(settings.routes):
        if route.upstream_tls is not None and route.upstream_tls.insecure_skip_verify:
            warnings.append(
                ConfigIssue(
                    path=f"routes[{index}].upstream_tls.insecure_skip_verify",
                    message=(
                        f"route {route.name!r} accepts any certificate from its upstream: "
                        "anyone on the path can read and change its traffic. Give the "
                        "upstream's CA in ca_file instead"
                    ),
                )
            )
        if route.allow_cors_preflight and route.methods and "OPTIONS" not in route.methods:
            warnings.append(
                ConfigIssue(
                    path=f"routes[{index}].allow_cors_preflight",
                    message=(
                        f"route {route.name!r} lists methods without OPTIONS, so no preflight "
                        "ever matches it: add OPTIONS to methods"
                    ),
                )
            )
    return tuple(warnings)
