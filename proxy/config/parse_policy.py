"""A route's policy: `public: true`, or `allow` and optional `deny` blocks, and `mode`."""

from __future__ import annotations

from collections.abc import Callable

from proxy.config.addresses import email, email_domain, hostname, service_account
from proxy.config.certificate_values import ca_certificates, certificate_fingerprint, spki_pin
from proxy.config.model import Policy, PolicyMode, Rule
from proxy.config.reader import Section, given
from proxy.config.values import (
    boolean,
    choice,
    claim_value,
    spiffe_id,
    text,
)

_CONDITIONS = (
    "authenticated",
    "groups",
    "emails",
    "domains",
    "users",
    "claims",
    "spiffe_ids",
    "service_accounts",
    "certificate_fingerprints",
    "certificate_spki_pins",
    "certificate_dns_names",
    "certificate_emails",
    "certificate_issuers",
    "all",
)


def parse_policy(route: Section) -> Policy:
    public = route.get("public", boolean)
    mode = route.get("mode", choice(PolicyMode))
    allow = _rule(route, "allow")
    deny = _rule(route, "deny")
    has_rules = route.has("allow") or route.has("deny")
    # SPEC: "no route is ever open unless it says `public: true`".
    if public and has_rules:
        route.issue(
            "cannot be combined with allow or deny: a public route admits everyone", key="public"
        )
    elif not public and not route.has("allow"):
        route.issue(
            "required unless the route says public: true (no route is open by default;"
            " a deny block alone admits nobody)",
            key="allow",
        )
    return Policy(**given(public=public, allow=allow, deny=deny, mode=mode))


def _rule(route: Section, key: str) -> Rule | None:
    if not route.has(key):
        return None
    return _block(route.section(key), in_deny=key == "deny")


def _block(block: Section, *, in_deny: bool) -> Rule:
    """One block, `all`'s parts included (each one a block of its own, read the same way)."""
    authenticated = block.get("authenticated", boolean)
    if in_deny and authenticated is not None:
        block.issue(
            "only allowed in allow: in deny it would turn away every signed-in user",
            key="authenticated",
        )
    rule = Rule(
        **given(
            authenticated=authenticated,
            groups=_set(block, "groups", text),
            emails=_set(block, "emails", email),
            domains=_set(block, "domains", email_domain),
            users=_set(block, "users", text),
            claims=_claims(block),
            spiffe_ids=_set(block, "spiffe_ids", spiffe_id),
            service_accounts=_set(block, "service_accounts", service_account),
            certificate_fingerprints=_set(
                block, "certificate_fingerprints", certificate_fingerprint
            ),
            certificate_spki_pins=_set(block, "certificate_spki_pins", spki_pin),
            certificate_dns_names=_set(block, "certificate_dns_names", hostname),
            certificate_emails=_set(block, "certificate_emails", email),
            certificate_issuers=_issuers(block),
            all_of=_all_of(block, in_deny=in_deny),
        )
    )
    block.close()
    if not authenticated and not any(block.has(name) for name in _CONDITIONS[1:]):
        block.issue(f"names no condition: give at least one of {', '.join(_CONDITIONS)}")
    return rule


def _all_of(block: Section, *, in_deny: bool) -> tuple[Rule, ...] | None:
    parts = block.sections("all")
    if parts is None:
        return None
    if not parts:
        block.issue("must list at least one block", key="all")
    return tuple(_block(part, in_deny=in_deny) for part in parts)


def _issuers(block: Section) -> tuple[bytes, ...] | None:
    files = block.get_list("certificate_issuers", ca_certificates)
    return None if files is None else tuple(der for certificates in files for der in certificates)


def _set(block: Section, key: str, convert: Callable[[object], str]) -> frozenset[str] | None:
    values = block.get_list(key, convert)
    return None if values is None else frozenset(values)


def _claims(block: Section) -> tuple[tuple[str, frozenset[str]], ...] | None:
    if not block.has("claims"):
        return None
    claims = block.section("claims")
    pairs: list[tuple[str, frozenset[str]]] = []
    for path in claims.present_keys():
        if not path:
            claims.issue("a claim path must not be empty", key=path)
        values = claims.get_list(path, claim_value, single=True, required=True)
        if values:
            pairs.append((path, frozenset(values)))
    claims.close()
    if not claims.present_keys():
        claims.issue("must map at least one claim path to its accepted values")
    return tuple(pairs)
