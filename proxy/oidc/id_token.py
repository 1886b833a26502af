"""ID tokens from the code flow, checked as OpenID Connect Core 1.0 section 3.1.3.7 requires.

The signature, `alg`, exact `iss`, `aud` and times are checked by `decode_provider_jwt`; this
module adds what is particular to ID tokens: the authorized party and the nonce of the sign-in.
"""

from __future__ import annotations

import hmac
from typing import Any, Final

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.oidc.provider_jwt import KeySource, decode_provider_jwt
from proxy.reasons import TokenFailure

_REQUIRED: Final = ("exp", "iat", "sub")


async def verify_id_token(
    token: str,
    *,
    oidc: OIDCSettings,
    keys: KeySource,
    nonce: str | None,
    subject: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token issued to this client.

    At sign-in, `nonce` is the one the sign-in sent. After a refresh, `nonce` is None and
    `subject` the session's user: OIDC Core 12.2 says a refreshed ID token's "sub Claim Value
    MUST be the same as in the ID Token issued at the time of the original authentication" and it
    "SHOULD NOT have a nonce Claim".
    """
    # 3.1.3.7 (3): "The Client MUST validate that the aud (audience) Claim contains its client_id
    # value registered at the Issuer identified by the iss (issuer) Claim as an audience."
    required = _REQUIRED if nonce is None else (*_REQUIRED, "nonce")
    claims = await decode_provider_jwt(
        token, oidc=oidc, keys=keys, audiences=(oidc.client_id,), required=required
    )
    _check_authorized_party(claims, oidc.client_id)
    if nonce is not None:
        _check_nonce(claims["nonce"], nonce)
    if not claims["sub"]:
        raise InvalidToken(TokenFailure.MISSING_CLAIM, "ID token has an empty sub")
    if subject is not None and claims["sub"] != subject:
        raise InvalidToken(TokenFailure.SUBJECT, "refreshed ID token names another user")
    return claims


def _check_authorized_party(claims: dict[str, Any], client_id: str) -> None:
    audience = claims["aud"]
    several = isinstance(audience, list) and len(audience) > 1
    azp = claims.get("azp")
    # 3.1.3.7 (4): "If the ID Token contains multiple audiences, the Client SHOULD verify that an
    # azp Claim is present."
    if several and azp is None:
        raise InvalidToken(TokenFailure.MISSING_CLAIM, "ID token for several audiences has no azp")
    # 3.1.3.7 (5): "If an azp (authorized party) Claim is present, the Client SHOULD verify that
    # its client_id is the Claim Value."
    if azp is not None and azp != client_id:
        raise InvalidToken(TokenFailure.AUDIENCE, "ID token azp is another client")


def _check_nonce(found: Any, sent: str) -> None:
    # 3.1.3.7 (11): "If a nonce value was sent in the Authentication Request, a nonce Claim MUST
    # be present and its value checked to verify that it is the same value as the one that was
    # sent in the Authentication Request." Compared in constant time: the nonce binds the token
    # to this browser's sign-in.
    if not isinstance(found, str) or not hmac.compare_digest(
        found.encode("utf-8"), sent.encode("utf-8")
    ):
        raise InvalidToken(TokenFailure.NONCE, "ID token nonce is not this sign-in's")
