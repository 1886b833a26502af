"""Which provider-signed JWTs are access tokens: an ID token is never a bearer credential.

An ID token tells idgate, the client, who signed in (OIDC Core 2: its `aud` "MUST contain the
OAuth 2.0 client_id of the Relying Party"); it is no access token for an API, and both kinds are
signed with the same keys. So a bearer token is refused as an ID token when it carries a claim only
ID tokens carry, or when its `aud` names idgate's own `client_id` (unless the operator opted in
with `oidc.accept_client_id_audience`). Where the provider marks its access tokens with
`typ: at+jwt` (RFC 9068), `oidc.require_access_token_type` refuses anything else it signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.oidc.provider_jwt import ClaimsCheck, HeaderCheck
from proxy.reasons import TokenFailure

#: OIDC Core 2 (`nonce`), 3.2.2.10 and 3.3.2.11 (`at_hash`, `c_hash`), FAPI 1.0 Advanced 5.1
#: (`s_hash`): claims an ID token carries to bind it to one sign-in; an access token has no use for
#: them (RFC 9068 2.2 lists none of them).
ID_TOKEN_CLAIMS: Final = ("nonce", "at_hash", "c_hash", "s_hash")

#: RFC 9068 2.1: "Resource servers MUST verify that the typ header value is at+jwt or
#: application/at+jwt"; RFC 7515 4.1.9 lets the "application/" prefix be omitted, and media types
#: compare case-insensitively (RFC 2045 5.1).
_ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, not a credential)
_MEDIA_PREFIX: Final = "application/"


def refuse_id_tokens(oidc: OIDCSettings | None) -> ClaimsCheck:
    """A check of verified claims that raises InvalidToken(ID_TOKEN) for an ID token; with the
    `oidc` block (for its own issuer), also for a token whose `aud` names idgate's client."""

    def check(claims: Mapping[str, Any]) -> None:
        audience = claims.get("aud")
        named = [audience] if isinstance(audience, str) else audience
        for_client = oidc is not None and isinstance(named, list) and oidc.client_id in named
        if for_client and oidc is not None and oidc.accept_client_id_audience:
            return  # the operator accepts tokens for idgate's client, ID tokens included
        if for_client or any(name in claims for name in ID_TOKEN_CLAIMS):
            raise InvalidToken(TokenFailure.ID_TOKEN)

    return check


def access_token_type_check(*, required: bool) -> HeaderCheck | None:
    """The JOSE header check `require_access_token_type` asks for; None when it is off."""
    return _require_access_token_type if required else None


def _require_access_token_type(header: Mapping[str, Any]) -> None:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix(_MEDIA_PREFIX) != _ACCESS_TOKEN_TYPE:
        raise InvalidToken(TokenFailure.TOKEN_TYPE)
