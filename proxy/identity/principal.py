"""Who is asking: the one identity type every identifier produces and every policy reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CredentialSource(StrEnum):
    """Where the identity came from; a decision-log field and metric label."""

    BEARER = "bearer"
    CLIENT_CERT = "client_cert"
    SESSION = "session"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignIn:
    """When and how the user last authenticated at the provider (OIDC Core 2 `auth_time`, `acr`,
    `amr`), from verified claims; empty for an identity that carries none (a client certificate,
    a token without them), which meets no route's `step_up`."""

    auth_time: float | None = None
    acr: str | None = None
    amr: frozenset[str] = frozenset()


NO_SIGN_IN = SignIn()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCertificate:
    """The verified client certificate behind an identity, for the device conditions of a policy
    (`certificate_*`): a certificate proves which device asks, as a token proves who."""

    der: bytes
    sha256: str
    """SHA-256 of the DER certificate, lower-case hex."""
    spki_sha256: str
    """SHA-256 of the DER SubjectPublicKeyInfo, base64 (Envoy's `verify_certificate_spki`,
    HPKP's pin): stays the same when a certificate is renewed with the same key."""
    dns_names: frozenset[str]
    """dNSName SANs, lower case."""
    emails: frozenset[str]
    """rfc822Name SANs, lower case."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    user: str
    """Value of the first of its issuer's user claims present (default `sub`)."""
    email: str | None
    groups: frozenset[str]
    claims: Mapping[str, Any]
    """Verified claims, read-only; policies reach nested values by dotted path."""
    source: CredentialSource
    expires_at: float
    """Unix time after which this identity must not be used (token `exp`, session end)."""
    spiffe_id: str | None = None
    service_account: str | None = None
    """`<namespace>/<name>` of a Kubernetes service-account token (issuer kind `kubernetes`), for
    the `service_accounts` condition; None for any other identity."""
    sign_in: SignIn = NO_SIGN_IN
    """For a session, from the ID token of its sign-in; for a bearer token, from its claims."""
    certificate: DeviceCertificate | None = None
    """For a client-certificate identity whose certificate idgate saw (not one a proxy only
    vouched for by SPIFFE ID)."""
    issuer: str | None = None
    """Name of the issuer whose token this identity comes from (`oidc` for a browser session);
    None for a client certificate, which no token issuer vouches for."""
