"""The `oidc` section: which provider, which client, and how its tokens are checked."""

from __future__ import annotations

from proxy.config.addresses import http_url
from proxy.config.model import OIDCSettings, Prompt
from proxy.config.parse_issuers import claim_name
from proxy.config.reader import Section, given
from proxy.config.values import (
    algorithm,
    boolean,
    choice,
    duration,
    int_between,
    scope,
    secret,
    text,
)


def parse_oidc(section: Section) -> OIDCSettings:
    scopes = section.get_list("scopes", scope)
    algorithms = section.get_list("algorithms", algorithm)
    oidc = OIDCSettings(
        issuer=section.get("issuer", http_url, required=True) or "",
        client_id=section.get("client_id", text, required=True) or "",
        **given(
            client_secret=section.get("client_secret", secret),
            scopes=None if scopes is None else _unique(scopes),
            prompt=section.get_list("prompt", choice(Prompt), single=True),
            audiences=section.get_list("audiences", text),
            accept_client_id_audience=section.get("accept_client_id_audience", boolean),
            require_access_token_type=section.get("require_access_token_type", boolean),
            user_claim=section.get_list("user_claim", claim_name, single=True),
            email_claim=section.get_list("email_claim", claim_name, single=True),
            groups_claim=section.get_list("groups_claim", claim_name, single=True),
            jwks_uri=section.get("jwks_uri", http_url),
            algorithms=None if algorithms is None else _unique(algorithms),
            leeway_seconds=section.get(
                "leeway_seconds",
                int_between(0, 60, why=": a longer leeway keeps expired tokens usable"),
            ),
            jwks_refresh_seconds=section.get("jwks_refresh_interval", duration),
            jwks_min_refresh_seconds=section.get("jwks_min_refresh_interval", duration),
            http_timeout_seconds=section.get("http_timeout", duration),
        ),
    )
    section.close()
    # OIDC Core 3.1.2.1: "OpenID Connect requests MUST contain the openid scope value."
    if scopes and "openid" not in scopes:
        section.issue("must include openid", key="scopes")
    # OIDC Core 3.1.2.1: "If this parameter contains none with any other value, an error is
    # returned."
    if Prompt.NONE in oidc.prompt and len(oidc.prompt) > 1:
        section.issue("none cannot be combined with other values", key="prompt")
    # OIDC Core 2: an ID token's `aud` "MUST contain the OAuth 2.0 client_id of the Relying
    # Party", so accepting client_id on bearer tokens accepts every ID token idgate receives.
    if oidc.client_id in oidc.audiences and not oidc.accept_client_id_audience:
        section.issue(
            f"{oidc.client_id!r} is oidc.client_id, the audience of every ID token idgate "
            "receives at sign-in: list the audience of your API's access tokens instead, or set "
            "oidc.accept_client_id_audience: true to accept ID tokens as bearer tokens",
            key="audiences",
        )
    if oidc.jwks_min_refresh_seconds > oidc.jwks_refresh_seconds:
        section.issue(
            "must not be longer than jwks_refresh_interval", key="jwks_min_refresh_interval"
        )
    return oidc


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
