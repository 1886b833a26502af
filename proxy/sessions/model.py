"""SessionRecord: everything idgate keeps about one signed-in browser, and its wire form.

The record is the same whichever store holds it; the cookie store seals it into the cookie, the
Redis store seals it into Redis under a per-session key. The serialised form carries a version
so a record written by an older idgate is refused cleanly (the user signs in again) rather than
misread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from proxy.config.model import BROWSER_ISSUER
from proxy.identity.principal import NO_SIGN_IN, CredentialSource, Principal, SignIn

FORMAT_VERSION: Final = 1


class SessionFormatError(ValueError):
    """Bytes that opened fine but are not a record this version understands."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    session_id: str
    """Random, new at every login; never derived from anything the provider sends."""
    subject: str
    """The provider's `sub`; back-channel logout by `sub` matches on it."""
    provider_sid: str | None
    """The provider's session id (`sid`), for back-channel logout by `sid`."""
    user: str
    email: str | None
    groups: frozenset[str]
    claims: Mapping[str, Any]
    """ID-token (and userinfo) claims that policies read; read-only."""
    id_token: str | None
    """Kept only as `id_token_hint` for RP-initiated logout."""
    access_token: str | None
    refresh_token: str | None
    created_at: float
    """Unix time of the login: the absolute lifetime counts from here."""
    last_seen_at: float
    """Unix time of the last request: the idle timeout counts from here."""
    verified_at: float
    """Unix time the provider last vouched for the user (login or refresh)."""
    sign_in: SignIn = NO_SIGN_IN
    """`auth_time`, `acr`, `amr` of the sign-in's verified ID token; a refresh does not change
    them (it is no new authentication). A record written before they were kept has none."""

    def principal(self, *, expires_at: float) -> Principal:
        return Principal(
            user=self.user,
            email=self.email,
            groups=self.groups,
            claims=self.claims,
            source=CredentialSource.SESSION,
            expires_at=expires_at,
            sign_in=self.sign_in,
            issuer=BROWSER_ISSUER,
        )

    def seen(self, now: float) -> SessionRecord:
        return replace(self, last_seen_at=now)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": FORMAT_VERSION,
                "id": self.session_id,
                "sub": self.subject,
                "sid": self.provider_sid,
                "user": self.user,
                "email": self.email,
                "groups": sorted(self.groups),
                "claims": dict(self.claims),
                "idt": self.id_token,
                "at": self.access_token,
                "rt": self.refresh_token,
                "created": self.created_at,
                "seen": self.last_seen_at,
                "verified": self.verified_at,
                "auth_time": self.sign_in.auth_time,
                "acr": self.sign_in.acr,
                "amr": sorted(self.sign_in.amr),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionRecord:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
                raise SessionFormatError("unknown session format")
            return cls(
                session_id=_str(raw["id"]),
                subject=_str(raw["sub"]),
                provider_sid=_optional_str(raw["sid"]),
                user=_str(raw["user"]),
                email=_optional_str(raw["email"]),
                groups=frozenset(_str(group) for group in raw["groups"]),
                claims=MappingProxyType(_object(raw["claims"])),
                id_token=_optional_str(raw["idt"]),
                access_token=_optional_str(raw["at"]),
                refresh_token=_optional_str(raw["rt"]),
                created_at=float(raw["created"]),
                last_seen_at=float(raw["seen"]),
                verified_at=float(raw["verified"]),
                sign_in=SignIn(
                    auth_time=_optional_float(raw.get("auth_time")),
                    acr=_optional_str(raw.get("acr")),
                    amr=frozenset(_str(method) for method in _list(raw.get("amr", []))),
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, SessionFormatError):
                raise
            raise SessionFormatError("malformed session record") from None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise SessionFormatError("malformed session record")
    return value


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SessionFormatError("malformed session record")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise SessionFormatError("malformed session record")
    return value


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SessionFormatError("malformed session record")
    return float(value)


def _optional_str(value: object) -> str | None:
    return None if value is None else _str(value)
