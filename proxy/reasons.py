"""Why idgate decided what it did: the same enum values are log fields and metric labels.

At the bottom of the import graph: decisions, errors, metrics and the decision log all name these.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # allow
    PUBLIC = "public"
    CORS_PREFLIGHT = "cors_preflight"
    """An uncredentialed CORS preflight on a route with `allow_cors_preflight`."""
    AUTHENTICATED = "authenticated"
    GROUP = "group"
    EMAIL = "email"
    DOMAIN = "domain"
    USER = "user"
    CLAIM = "claim"
    SPIFFE_ID = "spiffe_id"
    SERVICE_ACCOUNT = "service_account"
    CERTIFICATE = "certificate"
    ALL = "all"
    """Every block of an `all` condition matched."""
    # deny
    DENY_RULE = "deny_rule"
    NOT_ALLOWED = "not_allowed"
    ORIGIN = "origin"
    # unauthenticated
    NO_CREDENTIALS = "no_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason label, not a credential)
    INVALID_SESSION = "invalid_session"
    INVALID_CERTIFICATE = "invalid_certificate"
    SIGN_IN_FAILED = "sign_in_failed"
    STEP_UP = "step_up"
    """Identified and allowed, but the sign-in is older or weaker than the route's `step_up`."""
    # request-level failures decided before policy
    NO_ROUTE = "no_route"
    UNTRUSTED_GATEWAY = "untrusted_gateway"
    """A forward-auth check carrying original-request headers from a peer outside
    `trusted_proxies`: judging it as `GET /` would answer for a request nobody sent."""
    BAD_REQUEST = "bad_request"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    INTERNAL_ERROR = "internal_error"
    RATE_LIMITED = "rate_limited"


class TokenFailure(StrEnum):
    """Why a presented token was refused; the `reason` label of token-validation metrics."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    ALGORITHM = "algorithm"
    UNKNOWN_KEY = "unknown_key"
    SIGNATURE = "signature"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MISSING_CLAIM = "missing_claim"
    NONCE = "nonce"
    """An ID token that does not carry this sign-in's nonce."""
    REPLAYED = "replayed"
    """A logout token whose `jti` was already used."""
    SUBJECT = "subject"
    """A refreshed ID token that names another user."""
    ID_TOKEN = "id_token"  # noqa: S105 (a reason label, not a credential)
    """A bearer token that is an ID token: it carries `nonce`, `at_hash`, `c_hash` or `s_hash`,
    or its `aud` names idgate's own `client_id` (without `oidc.accept_client_id_audience`)."""
    TOKEN_TYPE = "token_type"  # noqa: S105 (a reason label, not a credential)
    """A bearer token without `typ: at+jwt` where `oidc.require_access_token_type` asks for it."""
    REVOKED = "revoked"
    """A bearer token of a user an operator revoked (`idgate revoke`), issued before that."""
    ISSUER_NOT_ACCEPTED = "issuer_not_accepted"
    """A token (or session) of an issuer the route's `issuers` does not list."""
    LIFETIME_TOO_LONG = "lifetime_too_long"
    """A token whose `exp - iat` exceeds its issuer's `max_token_lifetime`."""
    INACTIVE = "inactive"
    """An opaque token its issuer's introspection endpoint says is not active (RFC 7662 2.2):
    revoked, expired or never issued."""
    WRONG_TRUST_DOMAIN = "wrong_trust_domain"
    """A JWT-SVID whose `sub` is not a SPIFFE ID of its issuer's `spiffe.trust_domain`."""
    TOKEN_REVIEW = "token_review"  # noqa: S105 (a reason label, not a credential)
    """A service-account token the Kubernetes API server's TokenReview calls unauthenticated
    (its pod or service account was deleted, or it was never the cluster's)."""
