"""Policy evaluation: (route, principal) -> Decision, pure and total; anything unmatched denies.

Order: public allows anyone; no identity is unauthenticated; a matching `deny` block denies even
when `allow` would match; a matching `allow` block allows, naming the block and the condition
that matched (a block matches when any one of its conditions does; its `all` condition when every
one of its own blocks does),
unless the route's `step_up` asks for a more recent or stronger sign-in than the identity's
(unauthenticated, reason `step_up`: signing in again can fix it); everything else is denied. In
audit mode a denial becomes `would_deny` and the request goes through, but an anonymous request
or an unmet step-up stays unauthenticated: audit never opens a route to a weaker sign-in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from proxy.config.model import PolicyMode, Route, Rule
from proxy.identity.claims import SPACE_SEPARATED_CLAIMS, claim_at, claim_strings
from proxy.identity.principal import DeviceCertificate, Principal
from proxy.policy.certificate_issuers import issued_by
from proxy.policy.decision import Decision, Outcome
from proxy.policy.step_up import unmet
from proxy.reasons import Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class _Hit:
    reason: Reason
    matched: str


def device_hits(rule: Rule, device: DeviceCertificate) -> Iterator[_Hit]:
    """The device conditions (`certificate_*`) of `rule` that the client certificate meets."""
    if device.sha256 in rule.certificate_fingerprints:
        yield _Hit(reason=Reason.CERTIFICATE, matched=f"certificate_fingerprint:{device.sha256}")
    if device.spki_sha256 in rule.certificate_spki_pins:
        yield _Hit(reason=Reason.CERTIFICATE, matched=f"certificate_spki_pin:{device.spki_sha256}")
    names = rule.certificate_dns_names & device.dns_names
    if names:
        yield _Hit(reason=Reason.CERTIFICATE, matched=f"certificate_dns_name:{min(names)}")
    emails = _lowered(rule.certificate_emails) & device.emails
    if emails:
        yield _Hit(reason=Reason.CERTIFICATE, matched=f"certificate_email:{min(emails)}")
    if rule.certificate_issuers:
        issuer = issued_by(device.der, rule.certificate_issuers)
        if issuer is not None:
            yield _Hit(reason=Reason.CERTIFICATE, matched=f"certificate_issuer:{issuer}")


def evaluate(route: Route, principal: Principal | None, *, now: float | None = None) -> Decision:
    """The decision for `principal` asking for `route` at Unix time `now` (default: the current
    time); deny wins over allow, and an allow needs the route's `step_up` met."""
    policy = route.policy
    if policy.public:
        return Decision(outcome=Outcome.ALLOW, reason=Reason.PUBLIC, route=route)
    if principal is None:
        return Decision(outcome=Outcome.UNAUTHENTICATED, reason=Reason.NO_CREDENTIALS, route=route)
    denied = Outcome.WOULD_DENY if policy.mode is PolicyMode.AUDIT else Outcome.DENY
    hit = None if policy.deny is None else next(_hits(policy.deny, principal), None)
    if hit is not None:
        return Decision(
            outcome=denied, reason=Reason.DENY_RULE, route=route, rule="deny", matched=hit.matched
        )
    hit = None if policy.allow is None else next(_hits(policy.allow, principal), None)
    if hit is None:
        unmet_block = "allow" if policy.allow is None else _unmet(policy.allow, principal, "allow")
        return Decision(outcome=denied, reason=Reason.NOT_ALLOWED, route=route, rule=unmet_block)
    if route.step_up is not None:
        failed = unmet(route.step_up, principal.sign_in, now=time.time() if now is None else now)
        if failed is not None:
            return Decision(
                outcome=Outcome.UNAUTHENTICATED,
                reason=Reason.STEP_UP,
                route=route,
                rule="step_up",
                matched=f"step_up:{failed}",
            )
    return Decision(
        outcome=Outcome.ALLOW, reason=hit.reason, route=route, rule="allow", matched=hit.matched
    )


def _unmet(rule: Rule, principal: Principal, path: str) -> str:
    """The key path of the block `principal` does not meet (no condition of `rule` matched): the
    first unmet block of its `all`, followed down, or `rule` itself."""
    for index, part in enumerate(rule.all_of):
        if next(_hits(part, principal), None) is None:
            return _unmet(part, principal, f"{path}.all[{index}]")
    return path


def _hits(rule: Rule, principal: Principal) -> Iterator[_Hit]:
    """The conditions of `rule` that `principal` meets, most specific first."""
    if rule.all_of:
        parts = [next(_hits(part, principal), None) for part in rule.all_of]
        met = [part for part in parts if part is not None]
        if len(met) == len(parts):
            matched = ", ".join(part.matched for part in met)
            yield _Hit(reason=Reason.ALL, matched=f"all({matched})")
    if principal.user in rule.users:
        yield _Hit(reason=Reason.USER, matched=f"user:{principal.user}")
    email = _email_parts(principal.email)
    if email is not None:
        address, domain = email
        if address in _lowered(rule.emails):
            yield _Hit(reason=Reason.EMAIL, matched=f"email:{address}")
        if domain in _lowered(rule.domains):
            yield _Hit(reason=Reason.DOMAIN, matched=f"domain:{domain}")
    groups = rule.groups & principal.groups
    if groups:
        yield _Hit(reason=Reason.GROUP, matched=f"group:{min(groups)}")
    for path, accepted in rule.claims:
        value = claim_at(principal.claims, path)
        values = claim_strings(value, space_separated=path in SPACE_SEPARATED_CLAIMS) & accepted
        if values:
            yield _Hit(reason=Reason.CLAIM, matched=f"claim:{path}={min(values)}")
    yield from _workload_hits(rule, principal)
    if principal.certificate is not None:
        yield from device_hits(rule, principal.certificate)
    if rule.authenticated:
        yield _Hit(reason=Reason.AUTHENTICATED, matched="authenticated")


def _workload_hits(rule: Rule, principal: Principal) -> Iterator[_Hit]:
    """The workload identities of `rule` that `principal` has: a SPIFFE ID (certificate or
    JWT-SVID alike), a Kubernetes service account."""
    if principal.spiffe_id is not None and principal.spiffe_id in rule.spiffe_ids:
        yield _Hit(reason=Reason.SPIFFE_ID, matched=f"spiffe_id:{principal.spiffe_id}")
    account = principal.service_account
    if account is not None and _service_account_listed(account, rule.service_accounts):
        yield _Hit(reason=Reason.SERVICE_ACCOUNT, matched=f"service_account:{account}")


def _service_account_listed(account: str, listed: frozenset[str]) -> bool:
    """`namespace/name` is listed itself, or its namespace is with `namespace/*`."""
    namespace = account.partition("/")[0]
    return account in listed or f"{namespace}/*" in listed


def _email_parts(email: str | None) -> tuple[str, str] | None:
    """(address, domain), lower case, when the address has exactly one "@" with text either side."""
    if email is None or email.count("@") != 1:
        return None
    address = email.lower()
    local_part, domain = address.split("@")
    return (address, domain) if local_part and domain else None


@lru_cache(maxsize=1024)
def _lowered(values: frozenset[str]) -> frozenset[str]:
    """Config sets lower-cased once, not on every request (keyed by the config's own frozensets)."""
    return frozenset(value.lower() for value in values)
