"""`idgate explain`: the route, decision and answer the proxy would give, without a server."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from proxy.config.model import (
    ListenAddress,
    OIDCSettings,
    Policy,
    PolicyMode,
    Route,
    Rule,
    Secret,
    SessionSettings,
    Settings,
    StepUp,
)
from proxy.explain import (
    explain,
    principal_for_explain,
    principal_from_token,
    token_issuer,
    token_notes,
    unverified_claims,
)
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.decision import Outcome
from proxy.reasons import Reason
from tests.support.python_process import run_python

ROUTES = (
    Route(
        name="admin",
        host="tools.example.com",
        path="/admin",
        upstream="http://127.0.0.1:9001",
        policy=Policy(allow=Rule(groups=frozenset({"admins"}))),
    ),
    Route(
        name="audited",
        host="tools.example.com",
        path="/beta",
        upstream="http://127.0.0.1:9002",
        policy=Policy(allow=Rule(groups=frozenset({"beta"})), mode=PolicyMode.AUDIT),
    ),
    Route(
        name="gate",
        host="gate.example.com",
        policy=Policy(allow=Rule(domains=frozenset({"example.com"}))),
    ),
    Route(
        name="docs",
        host="tools.example.com",
        path="/docs",
        upstream="http://127.0.0.1:9003",
        policy=Policy(public=True),
    ),
    Route(
        name="vault",
        host="tools.example.com",
        path="/vault",
        upstream="http://127.0.0.1:9004",
        policy=Policy(allow=Rule(groups=frozenset({"admins"}))),
        step_up=StepUp(acr_values=("urn:mfa",)),
    ),
)

SRE_AT_CORP = Route(
    name="ops",
    host="ops.example.com",
    upstream="http://127.0.0.1:9005",
    policy=Policy(
        allow=Rule(
            all_of=(Rule(groups=frozenset({"sre"})), Rule(domains=frozenset({"corp.example"})))
        )
    ),
)

SETTINGS = Settings(
    listen=ListenAddress(host="127.0.0.1", port=4180),
    public_url="https://auth.example.com",
    oidc=OIDCSettings(
        issuer="https://issuer.example.com",
        client_id="idgate",
        audiences=("https://api.example.com",),
        user_claim=("preferred_username",),
    ),
    session=SessionSettings(secrets=(Secret("s" * 32),)),
    routes=(*ROUTES, SRE_AT_CORP),
)

ADMIN = principal_for_explain(
    user="alice", email="alice@example.com", groups=["admins"], claims={"tier": "gold"}
)
MFA_ADMIN = principal_for_explain(
    user="alice", email="alice@example.com", groups=["admins"], claims={"acr": "urn:mfa"}
)
GUEST = principal_for_explain(user="bob", email="bob@other.io", groups=[], claims={})


def test_allowed_request_is_forwarded_with_its_reason() -> None:
    """An allowed request names route, reason, matched condition and a 200 forward."""
    result = explain(
        SETTINGS,
        method="get",
        url="https://Tools.Example.com:8443/x/../admin//users",
        principal=ADMIN,
    )
    assert result.route is not None
    assert result.route.name == "admin"
    assert result.decision is not None
    assert (result.decision.outcome, result.decision.reason) == (Outcome.ALLOW, Reason.GROUP)
    assert (result.host, result.method, result.status) == ("tools.example.com", "GET", 200)
    text = result.render()
    assert "/admin/users" in text
    assert "admin (host tools.example.com" in text
    assert "group:admins" in text
    assert "200 (forwarded to http://127.0.0.1:9001)" in text


@pytest.mark.parametrize(
    ("url", "who", "status", "phrase"),
    [
        ("https://tools.example.com/admin", GUEST, 403, "forbidden"),
        ("https://tools.example.com/admin", None, 401, "not signed in"),
        ("https://tools.example.com/docs/intro", None, 200, "forwarded to http://127.0.0.1:9003"),
        ("https://tools.example.com/adminx", ADMIN, 404, "no route: 404"),
        ("https://elsewhere.io/admin", ADMIN, 404, "no route: 404"),
        ("https://gate.example.com/any", ADMIN, 202, "/oauth2/auth allows it"),
        ("https://gate.example.com/any", GUEST, 403, "forbidden"),
        ("https://tools.example.com/vault", ADMIN, 401, "a more recent or stronger sign-in"),
        ("https://tools.example.com/vault", MFA_ADMIN, 200, "forwarded to http://127.0.0.1:9004"),
    ],
)
def test_answers_the_status_the_proxy_would(
    url: str, who: Principal | None, status: int, phrase: str
) -> None:
    """Each outcome maps to the proxy's answer: 200, 202, 401, 403 or 404."""
    result = explain(SETTINGS, method="GET", url=url, principal=who)
    assert result.status == status
    assert phrase in result.render()


def test_audit_mode_says_the_request_goes_through_as_would_deny() -> None:
    """A denial under audit mode is reported as allowed and logged as would_deny."""
    result = explain(
        SETTINGS, method="GET", url="https://tools.example.com/beta/x", principal=GUEST
    )
    assert result.decision is not None
    assert result.decision.outcome is Outcome.WOULD_DENY
    assert result.status == 200
    text = result.render()
    assert "would_deny" in text
    assert "audit mode" in text
    assert "not_allowed" in text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://tools.example.com/admin%2Fusers", 400),
        ("https://tools.example.com/a%zz", 400),
        ("https://tools.example.com/public/..;/admin", 400),
        ("https://tools.example.com/a\tb", 400),
        ("https://[tools.example.com/admin", 400),
        ("tools.example.com/admin", 400),
        ("https://tools.example.com/" + "a" * 9000, 431),
    ],
)
def test_malformed_url_explains_the_refusal(url: str, status: int) -> None:
    """A malformed path or URL gives the 400 (or 431) the proxy would answer, and why."""
    result = explain(SETTINGS, method="GET", url=url, principal=ADMIN)
    assert (result.status, result.route, result.decision) == (status, None, None)
    assert result.problem
    assert f"malformed: {result.problem}" in result.render()


def test_a_bare_path_matches_only_host_less_routes() -> None:
    """A URL without a host is explained against routes that match any host."""
    result = explain(SETTINGS, method="GET", url="/admin", principal=ADMIN)
    assert (result.host, result.status) == ("", 404)


def test_an_ipv6_host_keeps_its_brackets_like_the_server() -> None:
    """An IPv6 literal host is matched as `[::1]`, the form the proxy derives from Host."""
    result = explain(SETTINGS, method="GET", url="http://[::1]:4180/admin", principal=None)
    assert result.host == "[::1]"


def test_query_and_fragment_are_not_part_of_the_path() -> None:
    """The query and fragment never take part in route matching."""
    result = explain(
        SETTINGS, method="GET", url="https://tools.example.com/docs?x=/admin#/admin", principal=None
    )
    assert result.path is not None
    assert result.path.decoded == "/docs"
    assert result.status == 200


def test_the_query_is_never_echoed() -> None:
    """A query string (which may carry a token) does not appear in the explanation."""
    result = explain(
        SETTINGS,
        method="GET",
        url="https://tools.example.com/docs?access_token=s3cr3t",
        principal=None,
    )
    assert "s3cr3t" not in result.render()


def test_principal_for_explain_builds_a_non_expiring_bearer_identity() -> None:
    """The command-line identity carries user, email, groups and claims, and does not expire."""
    assert ADMIN is not None
    assert (ADMIN.user, ADMIN.email) == ("alice", "alice@example.com")
    assert ADMIN.groups == frozenset({"admins"})
    assert dict(ADMIN.claims) == {"tier": "gold"}
    assert ADMIN.source is CredentialSource.BEARER
    assert ADMIN.expires_at > 4e9


def test_a_service_account_user_meets_the_service_accounts_condition() -> None:
    """`--user system:serviceaccount:NS:NAME` is explained as that Kubernetes service account,
    so a `service_accounts` wildcard matches it as it would the service account's token."""
    route = Route(
        name="metrics",
        upstream="http://127.0.0.1:9005",
        policy=Policy(allow=Rule(service_accounts=frozenset({"monitoring/*"}))),
    )
    settings = dataclasses.replace(SETTINGS, routes=(route,))

    def decide(user: str) -> tuple[Outcome, Reason, str | None]:
        who = principal_for_explain(user=user, email=None, groups=[], claims={})
        decision = explain(settings, method="GET", url="/metrics", principal=who).decision
        assert decision is not None
        return decision.outcome, decision.reason, decision.matched

    assert decide("system:serviceaccount:monitoring:prometheus") == (
        Outcome.ALLOW,
        Reason.SERVICE_ACCOUNT,
        "service_account:monitoring/prometheus",
    )
    assert decide("system:serviceaccount:payments:prometheus")[0] is Outcome.DENY
    assert decide("monitoring/prometheus")[0] is Outcome.DENY


def test_principal_for_explain_without_a_user_is_anonymous() -> None:
    """No user means an anonymous request, whatever else was given."""
    assert principal_for_explain(user=None, email="a@b.c", groups=["x"], claims={}) is None


def test_the_pure_core_runs_without_aiohttp() -> None:
    """Explain and the modules it runs import nothing from aiohttp, so no server is involved."""
    code = (
        "import sys, proxy.explain, proxy.endpoints.redirects\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'aiohttp'], 'aiohttp imported'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "https://tools.example.com/healthz",
        "https://x.test/oauth2/jwks",
        "https://x.test/oauth2/ext_authz/admin",
    ],
)
def test_own_endpoints_are_reported_as_such(url: str) -> None:
    """idgate's own endpoints are not routes; explain says so instead of naming a route (an
    Envoy ext_authz check path included, as the server dispatches it)."""
    result = explain(SETTINGS, method="GET", url=url, principal=None)
    assert result.endpoint is not None
    assert result.route is None
    assert "own" in result.render()


def test_a_dot_segment_cannot_reach_a_route_through_an_endpoint_path() -> None:
    """`/healthz/../admin` is the admin route after normalisation, not the health endpoint."""
    result = explain(
        SETTINGS, method="GET", url="https://tools.example.com/healthz/../admin", principal=None
    )
    assert result.endpoint is None
    assert result.route is not None
    assert result.route.name == "admin"
    assert result.status == 401


def test_an_all_rule_names_the_block_that_allowed_or_was_not_met() -> None:
    """explain shows which block decided (`rule:`) and which condition (`matched:`)."""
    ann = principal_for_explain(user="ann", email="ann@corp.example", groups=["sre"], claims={})
    bob = principal_for_explain(user="bob", email="bob@else.example", groups=["sre"], claims={})

    allowed = explain(SETTINGS, method="GET", url="https://ops.example.com/", principal=ann)
    denied = explain(SETTINGS, method="GET", url="https://ops.example.com/", principal=bob)

    assert "rule:      allow\n" in allowed.render()
    assert "matched:   all(group:sre, domain:corp.example)" in allowed.render()
    assert "rule:      allow.all[1]: none of its conditions is met" in denied.render()
    assert "identity:  user bob, email bob@else.example, groups sre" in denied.render()


def jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped string with these claims and a signature nobody checks here."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


GOOD_CLAIMS = {
    "iss": "https://issuer.example.com",
    "aud": ["https://api.example.com"],
    "exp": 2_000_000_000,
    "preferred_username": "ann",
    "email": "ann@corp.example",
    "groups": ["sre"],
}


def test_a_token_s_claims_give_the_identity_the_proxy_would_see() -> None:
    """--token: the configured claim names map the decoded claims to the identity, as for a
    verified bearer token."""
    claims = unverified_claims(jwt(GOOD_CLAIMS))
    issuer = token_issuer(claims, SETTINGS)
    assert issuer == SETTINGS.oidc.as_issuer
    principal = principal_from_token(claims, issuer)

    assert principal is not None
    assert (principal.user, principal.email, principal.groups) == (
        "ann",
        "ann@corp.example",
        frozenset({"sre"}),
    )
    assert principal.expires_at == 2_000_000_000


def test_token_notes_say_nothing_was_verified_and_why_the_proxy_would_refuse() -> None:
    """Every note is on its own line; a token good in form gets the unverified warning and the
    issuer it is read as."""
    oidc = SETTINGS.oidc.as_issuer
    unverified, issuer = token_notes(GOOD_CLAIMS, oidc, now=1e9)
    assert unverified.startswith("token:     claims decoded WITHOUT verification: the signature,")
    assert issuer == "token:     read as a token of issuer oidc"
    stranger = {"iss": "https://evil.example", "exp": 10}
    assert token_issuer(stranger, SETTINGS) is None
    notes = "\n".join(token_notes(stranger, None, now=1e9))
    assert "iss is 'https://evil.example', which no configured issuer has" in notes
    assert "exp has passed" in notes
    wrong = {"iss": "https://issuer.example.com", "aud": "idgate", "exp": 2_000_000_000}
    notes = "\n".join(token_notes(wrong, oidc, now=1e9))
    assert "aud names none of issuer oidc's audiences" in notes
    assert "no user in preferred_username (issuer oidc's user claims)" in notes


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("not-a-jwt", "not a signed JWT"),
        ("a.b.c.d.e", "not a signed JWT"),
        ("a.!!!.c", "not base64url-encoded JSON"),
        (f"a.{base64.urlsafe_b64encode(b'[1]').decode()}.c", "not a JSON object"),
    ],
)
def test_a_malformed_token_says_what_is_wrong_without_echoing_it(token: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        unverified_claims(token)
    assert token not in str(raised.value)


def test_robots_txt_is_idgate_s_own_unless_a_public_route_serves_it() -> None:
    """/robots.txt is idgate's answer on a protected host, and the public route's on its host."""
    protected = explain(
        SETTINGS, method="GET", url="https://tools.example.com/robots.txt", principal=None
    )
    public_settings = Settings(
        public_url=SETTINGS.public_url,
        oidc=SETTINGS.oidc,
        session=SETTINGS.session,
        routes=(Route(name="site", upstream="http://127.0.0.1:9", policy=Policy(public=True)),),
    )
    public = explain(
        public_settings, method="GET", url="https://www.example.com/robots.txt", principal=None
    )

    assert protected.endpoint is not None
    assert "endpoint:  idgate's own `robots.txt` endpoint" in protected.render()
    assert (public.endpoint, public.route) == (None, public_settings.routes[0])
