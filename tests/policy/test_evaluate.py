"""Policy evaluation: every reason, deny over allow, audit mode, and the near misses."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from proxy.config.model import Policy, PolicyMode, Route, Rule
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.decision import Decision, Outcome
from proxy.policy.evaluate import evaluate
from proxy.reasons import Reason


def principal(
    *,
    user: str = "alice",
    email: str | None = "alice@example.com",
    groups: frozenset[str] = frozenset(),
    claims: dict[str, Any] | None = None,
    spiffe_id: str | None = None,
    service_account: str | None = None,
) -> Principal:
    return Principal(
        user=user,
        email=email,
        groups=groups,
        claims=MappingProxyType(claims or {}),
        source=CredentialSource.BEARER,
        expires_at=2e9,
        spiffe_id=spiffe_id,
        service_account=service_account,
    )


def route_with(
    *, allow: Rule | None = None, deny: Rule | None = None, mode: PolicyMode = PolicyMode.ENFORCE
) -> Route:
    return Route(name="app", policy=Policy(allow=allow, deny=deny, mode=mode))


def test_public_route_allows_anyone() -> None:
    """A public route allows an anonymous request, whatever its rules say."""
    route = Route(name="docs", policy=Policy(public=True, deny=Rule(authenticated=True)))
    decision = evaluate(route, None)
    assert (decision.outcome, decision.reason, decision.route) == (
        Outcome.ALLOW,
        Reason.PUBLIC,
        route,
    )


@pytest.mark.parametrize("mode", list(PolicyMode))
def test_anonymous_request_to_a_protected_route_is_unauthenticated(mode: PolicyMode) -> None:
    """No identity on a non-public route is unauthenticated, in audit mode too."""
    decision = evaluate(route_with(allow=Rule(authenticated=True), mode=mode), None)
    assert (decision.outcome, decision.reason) == (Outcome.UNAUTHENTICATED, Reason.NO_CREDENTIALS)
    assert not decision.lets_through


@pytest.mark.parametrize(
    ("rule", "who", "reason", "matched"),
    [
        (Rule(authenticated=True), principal(), Reason.AUTHENTICATED, "authenticated"),
        (Rule(groups=frozenset({"admins"})), principal(groups=frozenset({"admins", "x"})),
         Reason.GROUP, "group:admins"),
        (Rule(emails=frozenset({"alice@example.com"})), principal(), Reason.EMAIL,
         "email:alice@example.com"),
        (Rule(emails=frozenset({"Alice@Example.COM"})), principal(email="ALICE@example.com"),
         Reason.EMAIL, "email:alice@example.com"),
        (Rule(domains=frozenset({"example.com"})), principal(), Reason.DOMAIN,
         "domain:example.com"),
        (Rule(domains=frozenset({"example.com"})), principal(email="bob@EXAMPLE.com"),
         Reason.DOMAIN, "domain:example.com"),
        (Rule(users=frozenset({"alice"})), principal(), Reason.USER, "user:alice"),
        (Rule(claims=(("tier", frozenset({"gold"})),)), principal(claims={"tier": "gold"}),
         Reason.CLAIM, "claim:tier=gold"),
        (Rule(claims=(("realm_access.roles", frozenset({"ops"})),)),
         principal(claims={"realm_access": {"roles": ["dev", "ops"]}}),
         Reason.CLAIM, "claim:realm_access.roles=ops"),
        (Rule(claims=(("https://example.com/roles", frozenset({"ops"})),)),
         principal(claims={"https://example.com/roles": ["ops"]}),
         Reason.CLAIM, "claim:https://example.com/roles=ops"),
        (Rule(spiffe_ids=frozenset({"spiffe://corp/ns/ci/sa/builder"})),
         principal(spiffe_id="spiffe://corp/ns/ci/sa/builder"),
         Reason.SPIFFE_ID, "spiffe_id:spiffe://corp/ns/ci/sa/builder"),
        (Rule(service_accounts=frozenset({"payments/frontend"})),
         principal(service_account="payments/frontend"),
         Reason.SERVICE_ACCOUNT, "service_account:payments/frontend"),
        (Rule(service_accounts=frozenset({"monitoring/*"})),
         principal(service_account="monitoring/prometheus"),
         Reason.SERVICE_ACCOUNT, "service_account:monitoring/prometheus"),
    ],
)  # fmt: skip
def test_allow_names_the_condition_that_matched(
    rule: Rule, who: Principal, reason: Reason, matched: str
) -> None:
    """Each kind of allow condition allows with its own reason and names what matched."""
    decision = evaluate(route_with(allow=rule), who)
    assert (decision.outcome, decision.reason, decision.matched) == (Outcome.ALLOW, reason, matched)


@pytest.mark.parametrize(
    ("rule", "who"),
    [
        (Rule(), principal()),
        (Rule(groups=frozenset({"admins"})), principal(groups=frozenset({"Admins", "admins2"}))),
        (Rule(groups=frozenset({"admins"})), principal(claims={"groups": ["admins"]})),
        (Rule(users=frozenset({"alice"})), principal(user="Alice")),
        (Rule(users=frozenset({"alice"})), principal(user="alice ")),
        (Rule(emails=frozenset({"alice@example.com"})), principal(email="alice@example.com.evil")),
        (Rule(emails=frozenset({"alice@example.com"})), principal(email=None)),
        (Rule(domains=frozenset({"example.com"})), principal(email="a@evil-example.com")),
        (Rule(domains=frozenset({"example.com"})), principal(email="a@example.com.evil")),
        (Rule(domains=frozenset({"example.com"})), principal(email="a@sub.example.com")),
        (Rule(domains=frozenset({"example.com"})), principal(email="a@b@example.com")),
        (Rule(emails=frozenset({"a@b@example.com"})), principal(email="a@b@example.com")),
        (Rule(domains=frozenset({"example.com"})), principal(email="example.com")),
        (Rule(domains=frozenset({"example.com"})), principal(email="@example.com")),
        (Rule(domains=frozenset({"example.com"})), principal(email=None)),
        (Rule(claims=(("tier", frozenset({"gold"})),)), principal(claims={"tier": "golden"})),
        (Rule(claims=(("tier", frozenset({"gold"})),)), principal(claims={"tier": ["silver"]})),
        (Rule(claims=(("tier", frozenset({"gold"})),)), principal(claims={})),
        (Rule(claims=(("admin", frozenset({"true"})),)), principal(claims={"admin": True})),
        (Rule(claims=(("n", frozenset({"1"})),)), principal(claims={"n": 1})),
        (Rule(claims=(("tier", frozenset({"gold"})),)), principal(claims={"tier": {"gold": 1}})),
        (Rule(claims=(("a.b", frozenset({"x"})),)), principal(claims={"a": "b"})),
        (Rule(spiffe_ids=frozenset({"spiffe://corp/a"})), principal(spiffe_id=None)),
        (Rule(spiffe_ids=frozenset({"spiffe://corp/a"})), principal(spiffe_id="spiffe://corp/ab")),
        (Rule(users=frozenset({"spiffe://corp/a"})), principal(spiffe_id="spiffe://corp/a")),
        (Rule(service_accounts=frozenset({"payments/frontend"})), principal()),
        (
            Rule(service_accounts=frozenset({"payments/frontend"})),
            principal(service_account="payments/backend"),
        ),
        (
            Rule(service_accounts=frozenset({"payments/frontend"})),
            principal(service_account="payments-staging/frontend"),
        ),
        (
            Rule(service_accounts=frozenset({"monitoring/*"})),
            principal(service_account="monitoring-dev/prometheus"),
        ),
        (
            Rule(service_accounts=frozenset({"monitoring/*"})),
            principal(user="system:serviceaccount:monitoring:prometheus"),
        ),
    ],
)
def test_nothing_matched_is_not_allowed(rule: Rule, who: Principal) -> None:
    """Near misses (case, suffixes, look-alike domains, non-string claims) are denied."""
    decision = evaluate(route_with(allow=rule), who)
    assert (decision.outcome, decision.reason, decision.rule, decision.matched) == (
        Outcome.DENY,
        Reason.NOT_ALLOWED,
        "allow",
        None,
    )


def test_no_allow_block_denies_every_identity() -> None:
    """A route with neither public nor allow is closed to everyone."""
    decision = evaluate(route_with(), principal(groups=frozenset({"admins"})))
    assert (decision.outcome, decision.reason) == (Outcome.DENY, Reason.NOT_ALLOWED)


def test_deny_wins_over_allow() -> None:
    """A principal matching both blocks is denied, naming the deny condition."""
    route = route_with(
        allow=Rule(groups=frozenset({"staff"})),
        deny=Rule(emails=frozenset({"mallory@example.com"})),
    )
    decision = evaluate(route, principal(email="Mallory@example.com", groups=frozenset({"staff"})))
    assert (decision.outcome, decision.reason, decision.rule, decision.matched) == (
        Outcome.DENY,
        Reason.DENY_RULE,
        "deny",
        "email:mallory@example.com",
    )
    allowed = evaluate(route, principal(groups=frozenset({"staff"})))
    assert (allowed.outcome, allowed.reason) == (Outcome.ALLOW, Reason.GROUP)


def test_the_most_specific_condition_is_reported() -> None:
    """When several conditions match, the user beats email, domain, group, claim and the rest."""
    rule = Rule(
        authenticated=True,
        users=frozenset({"alice"}),
        domains=frozenset({"example.com"}),
        groups=frozenset({"staff"}),
    )
    who = principal(groups=frozenset({"staff"}))
    assert evaluate(route_with(allow=rule), who).reason is Reason.USER
    assert evaluate(route_with(allow=rule), principal(user="bob")).reason is Reason.DOMAIN


def test_several_matching_groups_report_one_stably() -> None:
    """With several matching groups the reported one is the same on every call."""
    rule = Rule(groups=frozenset({"b-team", "a-team", "c-team"}))
    who = principal(groups=frozenset({"c-team", "b-team", "a-team"}))
    assert {evaluate(route_with(allow=rule), who).matched for _ in range(5)} == {"group:a-team"}


@pytest.mark.parametrize(
    ("allow", "deny", "reason"),
    [
        (Rule(groups=frozenset({"admins"})), None, Reason.NOT_ALLOWED),
        (Rule(authenticated=True), Rule(users=frozenset({"alice"})), Reason.DENY_RULE),
    ],
)
def test_audit_mode_turns_a_denial_into_would_deny(
    allow: Rule, deny: Rule | None, reason: Reason
) -> None:
    """In audit mode a denied identity gets would_deny with the same reason, and goes through."""
    decision = evaluate(route_with(allow=allow, deny=deny, mode=PolicyMode.AUDIT), principal())
    assert (decision.outcome, decision.reason) == (Outcome.WOULD_DENY, reason)
    assert decision.lets_through


def test_audit_mode_still_allows_as_allow() -> None:
    """In audit mode an allowed identity is a plain allow, not would_deny."""
    route = route_with(allow=Rule(users=frozenset({"alice"})), mode=PolicyMode.AUDIT)
    decision = evaluate(route, principal())
    assert (decision.outcome, decision.reason) == (Outcome.ALLOW, Reason.USER)


@pytest.mark.parametrize("claim", ["scope", "scp"])
def test_space_separated_scope_claims_match_one_scope(claim: str) -> None:
    """A `scope` claim is a space-separated list (RFC 9068): one listed scope satisfies the rule."""
    rule = Rule(claims=((claim, frozenset({"billing:read"})),))
    decision = evaluate(
        route_with(allow=rule), principal(claims={claim: "openid billing:read profile"})
    )
    assert decision.outcome is Outcome.ALLOW
    assert decision.matched == f"claim:{claim}=billing:read"


def test_other_string_claims_are_not_split() -> None:
    """Only scope lists are split: a name with a space must match whole."""
    rule = Rule(claims=(("name", frozenset({"Alice"})),))
    decision = evaluate(route_with(allow=rule), principal(claims={"name": "Alice Smith"}))
    assert decision.outcome is Outcome.DENY


SRE_AT_CORP = Rule(
    all_of=(Rule(groups=frozenset({"sre"})), Rule(domains=frozenset({"corp.example"})))
)


def test_all_allows_only_who_meets_every_block() -> None:
    """`all: [{groups: [sre]}, {domains: [corp.example]}]` is sre AND the corp domain, and says
    which of its blocks was not met."""
    route = route_with(allow=SRE_AT_CORP)

    allowed = evaluate(route, principal(email="ann@corp.example", groups=frozenset({"sre"})))
    assert allowed == Decision(
        outcome=Outcome.ALLOW,
        reason=Reason.ALL,
        route=route,
        rule="allow",
        matched="all(group:sre, domain:corp.example)",
    )
    outsider = evaluate(route, principal(email="ann@other.example", groups=frozenset({"sre"})))
    assert outsider == Decision(
        outcome=Outcome.DENY, reason=Reason.NOT_ALLOWED, route=route, rule="allow.all[1]"
    )
    not_sre = evaluate(route, principal(email="ann@corp.example"))
    assert (not_sre.outcome, not_sre.rule) == (Outcome.DENY, "allow.all[0]")


def test_all_beside_other_conditions_is_one_more_way_in() -> None:
    """Conditions beside `all` keep their meaning: a block still matches on any one of them."""
    route = route_with(allow=Rule(users=frozenset({"root"}), all_of=SRE_AT_CORP.all_of))

    assert evaluate(route, principal(user="root", email=None)).matched == "user:root"
    assert evaluate(route, principal(email="x@corp.example")).rule == "allow.all[0]"


def test_nested_all_names_the_deepest_unmet_block() -> None:
    """An unmet block inside an unmet block is named by its full key path."""
    inner = Rule(domains=frozenset({"corp.example"}), all_of=(Rule(users=frozenset({"ann"})),))
    route = route_with(allow=Rule(all_of=(Rule(groups=frozenset({"sre"})), inner)))

    decision = evaluate(route, principal(user="bob", email=None, groups=frozenset({"sre"})))
    assert decision.rule == "allow.all[1].all[0]"


def test_all_in_deny_turns_away_only_who_meets_every_block() -> None:
    """A deny `all` denies contractors from outside only; either alone still passes."""
    deny = Rule(
        all_of=(
            Rule(groups=frozenset({"contractors"})),
            Rule(domains=frozenset({"vendor.example"})),
        )
    )
    route = route_with(allow=Rule(authenticated=True), deny=deny)

    both = evaluate(route, principal(email="v@vendor.example", groups=frozenset({"contractors"})))
    assert (both.outcome, both.rule, both.matched) == (
        Outcome.DENY,
        "deny",
        "all(group:contractors, domain:vendor.example)",
    )
    assert evaluate(route, principal(groups=frozenset({"contractors"}))).outcome is Outcome.ALLOW
