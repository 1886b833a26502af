"""The one check of a provider-signed JWT, shared by access, ID and logout tokens.

The checks follow RFC 8725 (JWT Best Current Practices): the algorithm must be on our allowlist
whatever the token claims, and never `none` or HMAC; the key comes only from the provider's JWKS,
never from a `jwk`, `jku`, `x5u` or `x5c` header; `iss` is compared exactly and `aud` must name one
of the audiences the caller accepts; `exp`, `nbf` and `iat` are checked with the configured leeway.
Every failure is an InvalidToken carrying its TokenFailure.

The token is parsed once (three segments, joserfc's strict base64url); the JOSE header, the same
for every token of one key, is decoded and checked once per distinct header segment (a bounded
cache: a flood of made-up headers only costs its own decoding). The signature is checked by
joserfc's algorithm for the header's `alg` with the provider's key; the claims are checked here,
so each refusal maps to exactly one TokenFailure.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Protocol

from joserfc.errors import JoseError
from joserfc.jwa import JWS_ALGORITHMS, JWSAlgModel
from joserfc.jwk import Key
from joserfc.util import urlsafe_b64decode

from proxy.config.model import ASYMMETRIC_ALGORITHMS
from proxy.errors import InvalidToken
from proxy.reasons import TokenFailure

MAX_TOKEN_CHARS: Final = 16 * 1024

_TIME_CLAIMS: Final = ("exp", "nbf", "iat")

#: The algorithms a provider token may ever be verified with; a configuration can only narrow it.
#: Taken from joserfc's models directly: its registry lookup warns on every `EdDSA` token (RFC 9864
#: deprecates the name, but providers still send it).
_ALGORITHMS: Final[Mapping[str, JWSAlgModel]] = {
    model.name: model for model in JWS_ALGORITHMS if model.name in ASYMMETRIC_ALGORITHMS
}

#: Distinct JOSE headers remembered: a few per issuer key (each `kid` and `alg` its own).
_HEADERS_REMEMBERED: Final = 64

HeaderCheck = Callable[[Mapping[str, Any]], None]
ClaimsCheck = Callable[[Mapping[str, Any]], None]


class TokenRules(Protocol):
    """What a token's issuer settles: its exact `iss`, the algorithms its keys may verify, and the
    clock skew tolerated (`OIDCSettings`, or a named issuer's rules)."""

    @property
    def issuer(self) -> str | None:
        """None: `iss` is neither required nor compared, for a JWT-SVID issuer that names no
        `issuer` (JWT-SVID 3 does not require one; its trust domain is checked instead)."""
        ...

    @property
    def algorithms(self) -> tuple[str, ...]: ...

    @property
    def leeway_seconds(self) -> int: ...


class KeySource(Protocol):
    async def key_for(self, kid: str | None, alg: str) -> Key:
        """The provider key for this kid that verifies `alg`; raises InvalidToken otherwise."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedToken:
    """A compact JWS parsed once, its header checked, nothing verified yet."""

    header: Mapping[str, Any]
    """Read-only: tokens with the same header segment share it."""
    kid: str | None
    claims: dict[str, Any]
    """Unverified: good only for choosing who verifies the token (its `iss`)."""
    signing_input: bytes
    """RFC 7515 5.2: the header and payload segments as sent, joined by a dot."""
    signature_segment: bytes


@dataclass(frozen=True, slots=True)
class _Header:
    fields: Mapping[str, Any]
    kid: str | None


def parse_token(token: str) -> ParsedToken:
    """The token parsed (three segments, strict base64url, JSON objects) and its header
    checked as far as no verifier's settings are needed: an algorithm idgate knows, a string
    `kid`, no `crit`. Raises InvalidToken."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(TokenFailure.TOO_LARGE)
    if not token.isascii():
        raise InvalidToken(TokenFailure.MALFORMED)
    # RFC 7515 7.1: BASE64URL(UTF8(JWS Protected Header)) || '.' || BASE64URL(JWS Payload) || '.'
    # || BASE64URL(JWS Signature)
    segments = token.encode("ascii").split(b".")
    if len(segments) != 3:
        raise InvalidToken(TokenFailure.MALFORMED)
    header_segment, payload_segment, signature_segment = segments
    header = _checked_header(header_segment)
    try:
        payload = urlsafe_b64decode(payload_segment)
    except ValueError as error:
        raise InvalidToken(TokenFailure.MALFORMED) from error
    return ParsedToken(
        header=header.fields,
        kid=header.kid,
        claims=_claims_of(payload),
        signing_input=header_segment + b"." + payload_segment,
        signature_segment=signature_segment,
    )


@lru_cache(maxsize=_HEADERS_REMEMBERED)
def _checked_header(segment: bytes) -> _Header:
    """The header segment decoded and checked; a refusal raises and is not remembered."""
    try:
        header = json.loads(urlsafe_b64decode(segment))
        named = "alg" in header
    # Not base64url, not UTF-8 JSON, nested past the recursion limit, or JSON that is no
    # container (`"alg" in 5`).
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidToken(TokenFailure.MALFORMED) from error
    if not named:
        raise InvalidToken(TokenFailure.ALGORITHM)
    if not isinstance(header, dict):
        raise InvalidToken(TokenFailure.MALFORMED)
    alg = header["alg"]
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise InvalidToken(TokenFailure.ALGORITHM)
    kid = header.get("kid")
    if not isinstance(kid, str | None):
        raise InvalidToken(TokenFailure.MALFORMED)
    # RFC 7515 4.1.11: a JWS whose `crit` lists an extension the recipient does not understand is
    # invalid; idgate understands none. RFC 7797's unencoded payload (`b64`, critical or not) has
    # no place in a JWT: refused rather than read either way.
    if "crit" in header or "b64" in header:
        raise InvalidToken(TokenFailure.MALFORMED)
    return _Header(MappingProxyType(header), kid)


async def decode_provider_jwt(
    token: str | ParsedToken,
    *,
    oidc: TokenRules,
    keys: KeySource,
    audiences: Sequence[str],
    required: Sequence[str],
    check_header: HeaderCheck | None = None,
    check_kind: ClaimsCheck | None = None,
) -> dict[str, Any]:
    """The claims of a token the provider signed for one of `audiences`; raises InvalidToken.
    `token` may come parsed already (`parse_token`), so it is parsed once however it is routed.

    `aud` is always required, and `iss` unless the rules name none; `required` names the other
    claims that must be present.
    `check_header` sees the JOSE header before any key is looked up, and raises InvalidToken.
    `check_kind` sees the claims once the signature is verified and before any claim is checked,
    so a token of the wrong kind is refused as such whatever its audience or age.
    """
    parsed = token if isinstance(token, ParsedToken) else parse_token(token)
    algorithm = _allowed_algorithm(parsed.header.get("alg"), oidc)
    if check_header is not None:
        check_header(parsed.header)
    signature = _signature_of(parsed)
    key = await keys.key_for(parsed.kid, algorithm.name)
    _verify_signature(parsed, signature, algorithm, key)
    claims = parsed.claims
    if check_kind is not None:
        check_kind(claims)
    _check_claims(claims, oidc=oidc, audiences=audiences, required=required)
    return claims


def _allowed_algorithm(alg: Any, oidc: TokenRules) -> JWSAlgModel:
    # RFC 8725 3.1: "Libraries MUST enable the caller to specify a supported set of algorithms
    # and MUST NOT use any other algorithms when performing cryptographic operations." The config
    # already refuses symmetric ones; intersecting again means no caller can enable `none` or HMAC.
    algorithm = _ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if algorithm is None or alg not in oidc.algorithms:
        raise InvalidToken(TokenFailure.ALGORITHM)
    return algorithm


def _signature_of(parsed: ParsedToken) -> bytes:
    try:
        return urlsafe_b64decode(parsed.signature_segment)
    except ValueError as error:
        raise InvalidToken(TokenFailure.MALFORMED) from error


def _verify_signature(
    parsed: ParsedToken, signature: bytes, algorithm: JWSAlgModel, key: Key
) -> None:
    try:
        algorithm.check_key(key)
        valid = algorithm.verify(parsed.signing_input, signature, key)
    # A key of another type or curve than the algorithm needs: it cannot verify this token.
    except JoseError as error:
        raise InvalidToken(TokenFailure.ALGORITHM) from error
    if not valid:
        raise InvalidToken(TokenFailure.SIGNATURE)


def _claims_of(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError) as error:
        raise InvalidToken(TokenFailure.MALFORMED) from error
    if not isinstance(claims, dict):
        raise InvalidToken(TokenFailure.MALFORMED)
    return claims


def _check_claims(
    claims: dict[str, Any], *, oidc: TokenRules, audiences: Sequence[str], required: Sequence[str]
) -> None:
    expected = oidc.issuer
    for name in ("aud", *required, *(() if expected is None else ("iss",))):
        if claims.get(name) is None:
            raise InvalidToken(TokenFailure.MISSING_CLAIM)
    _check_times(claims, oidc.leeway_seconds)
    _check_audience(claims["aud"], audiences)
    # RFC 7519 4.1.2 and 4.1.7: `sub` is a StringOrURI and `jti` a case-sensitive string.
    if not isinstance(claims.get("sub", ""), str) or not isinstance(claims.get("jti", ""), str):
        raise InvalidToken(TokenFailure.MALFORMED)
    if expected is not None:
        _check_issuer(claims["iss"], expected)


def _check_times(claims: dict[str, Any], leeway: float) -> None:
    # RFC 7519 4.1.4-4.1.6: each "MUST be a number containing a NumericDate value": never null, a
    # numeric string or a boolean, which callers reading these claims must never see, and never
    # NaN (which Python's JSON parser accepts), which would compare as neither past nor future.
    for name in _TIME_CLAIMS:
        if name in claims and not _is_numeric_date(claims[name]):
            raise InvalidToken(TokenFailure.MALFORMED)
    now = time.time()
    # 4.1.4: "the current date/time MUST be before the expiration date/time".
    if "exp" in claims and claims["exp"] <= now - leeway:
        raise InvalidToken(TokenFailure.EXPIRED)
    # 4.1.5: not before `nbf`; nor is a token issued (`iat`) in the future valid yet.
    for name in ("nbf", "iat"):
        if name in claims and claims[name] > now + leeway:
            raise InvalidToken(TokenFailure.NOT_YET_VALID)


def _is_numeric_date(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _check_audience(audience: Any, accepted: Sequence[str]) -> None:
    # RFC 7519 4.1.3: an array of case-sensitive strings, or one string; an empty one names nobody.
    if not audience:
        raise InvalidToken(TokenFailure.MISSING_CLAIM)
    named = [audience] if isinstance(audience, str) else audience
    if not isinstance(named, list) or not all(isinstance(name, str) for name in named):
        raise InvalidToken(TokenFailure.AUDIENCE)
    if not any(name in named for name in accepted):
        raise InvalidToken(TokenFailure.AUDIENCE)


def _check_issuer(issuer: Any, expected: str) -> None:
    # RFC 7519 4.1.1: "The "iss" value is a case-sensitive string": one string, compared whole
    # (`https://issuer.example.evil` is not `https://issuer.example`).
    if not isinstance(issuer, str):
        raise InvalidToken(TokenFailure.MALFORMED)
    if issuer != expected:
        raise InvalidToken(TokenFailure.ISSUER)
