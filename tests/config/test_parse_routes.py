"""Routes and their policies: what each key becomes, and every way a route can be refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import Policy, PolicyMode, Route, Rule, StepUp

Issues = Callable[..., list[str]]


def only_route(document: dict[str, Any], **route: object) -> dict[str, Any]:
    document["routes"] = [route]
    return document


def test_route_keys_map_onto_the_model(document: dict[str, Any]) -> None:
    """Host and methods are normalised in case, sets become frozensets, the rest is kept."""
    only_route(
        document,
        name="api.v2",
        host="API.Example.com",
        path="/api/",
        methods=["get", "Post"],
        upstream="https://backend.internal:8443/base",
        allowed_origins=["HTTPS://App.Example.com"],
        pass_access_token=True,
        timeout="45s",
        mode="audit",
        allow={
            "authenticated": True,
            "groups": ["admins"],
            "emails": ["Alice@Example.COM"],
            "domains": ["Example.com"],
            "users": ["bob"],
            "claims": {"realm_access.roles": ["ops", "dev"], "tenant": "acme"},
            "spiffe_ids": ["spiffe://example.org/ns/prod/sa/api"],
            "service_accounts": ["payments/frontend", "monitoring/*"],
        },
        deny={"groups": ["contractors"]},
    )

    (route,) = parse_settings(document, {}).routes

    assert route == Route(
        name="api.v2",
        host="api.example.com",
        path="/api/",
        methods=frozenset({"GET", "POST"}),
        upstream="https://backend.internal:8443/base",
        allowed_origins=frozenset({"https://app.example.com"}),
        pass_access_token=True,
        timeout_seconds=45.0,
        policy=Policy(
            mode=PolicyMode.AUDIT,
            allow=Rule(
                authenticated=True,
                groups=frozenset({"admins"}),
                emails=frozenset({"alice@example.com"}),
                domains=frozenset({"example.com"}),
                users=frozenset({"bob"}),
                claims=(
                    ("realm_access.roles", frozenset({"ops", "dev"})),
                    ("tenant", frozenset({"acme"})),
                ),
                spiffe_ids=frozenset({"spiffe://example.org/ns/prod/sa/api"}),
                service_accounts=frozenset({"payments/frontend", "monitoring/*"}),
            ),
            deny=Rule(groups=frozenset({"contractors"})),
        ),
    )


def test_all_requires_every_block_and_nests(document: dict[str, Any]) -> None:
    """`all` is a list of blocks read like allow itself, so they can hold an `all` of their own."""
    only_route(
        document,
        name="ops",
        allow={
            "users": ["root"],
            "all": [
                {"groups": ["sre"]},
                {"domains": ["Corp.Example"], "all": [{"emails": ["a@corp.example"]}]},
            ],
        },
    )

    assert parse_settings(document, {}).routes[0].policy.allow == Rule(
        users=frozenset({"root"}),
        all_of=(
            Rule(groups=frozenset({"sre"})),
            Rule(
                domains=frozenset({"corp.example"}),
                all_of=(Rule(emails=frozenset({"a@corp.example"})),),
            ),
        ),
    )


def test_route_defaults_come_from_the_model(document: dict[str, Any]) -> None:
    """A route with only a name and `public: true` matches everything and has no upstream."""
    only_route(document, name="open", public=True)

    assert parse_settings(document, {}).routes == (Route(name="open", policy=Policy(public=True)),)


def test_wildcard_host_is_kept(document: dict[str, Any]) -> None:
    """`*.example.com` is a valid host pattern, lower-cased like any host."""
    only_route(document, name="w", host="*.Example.com", public=True)

    assert parse_settings(document, {}).routes[0].host == "*.example.com"


def test_routes_keep_their_written_order(document: dict[str, Any]) -> None:
    """Routes match in the order written, so parsing keeps that order."""
    document["routes"] = [{"name": name, "public": True} for name in ("z", "a", "m")]

    assert [route.name for route in parse_settings(document, {}).routes] == ["z", "a", "m"]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"public": True}, "routes[0].name: required"),
        ({"name": "a b", "public": True}, "routes[0].name: use only letters"),
        ({"name": "_idgate", "public": True}, "routes[0].name: names starting with '_' are"),
        ({"name": "r", "host": "bad_host", "public": True}, "routes[0].host: not a valid host"),
        ({"name": "r", "host": "a.*.com", "public": True}, "routes[0].host: a wildcard is only"),
        ({"name": "r", "host": "app:8080", "public": True}, "routes[0].host: not a valid host"),
        ({"name": "r", "path": "api", "public": True}, "routes[0].path: must start with /"),
        ({"name": "r", "path": "/a/../b", "public": True}, "routes[0].path: must be a normalised"),
        ({"name": "r", "path": "/a//b", "public": True}, "routes[0].path: must be a normalised"),
        ({"name": "r", "path": "/a?b", "public": True}, "routes[0].path: a path prefix has no"),
        ({"name": "r", "methods": "GET", "public": True}, "routes[0].methods: must be a list of"),
        ({"name": "r", "methods": ["GET", "GE T"], "public": True}, "routes[0].methods[1]: not"),
        ({"name": "r", "upstream": "ftp://x", "public": True}, "routes[0].upstream: expected an"),
        ({"name": "r", "upstream": "http://x/?a", "public": True}, "routes[0].upstream: must not"),
        (
            {"name": "r", "allowed_origins": ["https://a.com/x"], "public": True},
            "routes[0].allowed_origins[0]: an origin is scheme://host[:port], with no path",
        ),
        ({"name": "r", "timeout": "soon", "public": True}, "routes[0].timeout: expected seconds"),
        ({"name": "r", "pass_access_token": "yes", "public": True}, "routes[0].pass_access_token"),
        ({"name": "r", "public": True, "mode": "dry-run"}, "routes[0].mode: must be one of"),
        ({"name": "r", "public": True, "upsteam": "http://x"}, "routes[0].upsteam: unknown key"),
        ({"name": "r", "public": True, "allow": {"groups": ["a"]}}, "routes[0].public: cannot be"),
        ({"name": "r", "public": True, "deny": {"groups": ["a"]}}, "routes[0].public: cannot be"),
        ({"name": "r"}, "routes[0].allow: required unless the route says public: true"),
        ({"name": "r", "public": False}, "routes[0].allow: required unless"),
        ({"name": "r", "deny": {"groups": ["a"]}}, "routes[0].allow: required unless"),
        ({"name": "r", "allow": {}}, "routes[0].allow: names no condition"),
        ({"name": "r", "allow": None}, "routes[0].allow: names no condition"),
        ({"name": "r", "allow": {"authenticated": False}}, "routes[0].allow: names no condition"),
        ({"name": "r", "allow": {"users": ["u"]}, "deny": {}}, "routes[0].deny: names no"),
        ({"name": "r", "allow": ["admins"]}, "routes[0].allow: expected a mapping"),
        (
            {"name": "r", "allow": {"users": ["u"]}, "deny": {"authenticated": True}},
            "routes[0].deny.authenticated: only allowed in allow",
        ),
        ({"name": "r", "allow": {"group": ["a"]}}, "routes[0].allow.group: unknown key; did you"),
        ({"name": "r", "allow": {"groups": "a"}}, "routes[0].allow.groups: must be a list of str"),
        ({"name": "r", "allow": {"groups": []}}, "routes[0].allow.groups: must not be empty"),
        ({"name": "r", "allow": {"groups": ["a", 5]}}, "routes[0].allow.groups[1]: expected a"),
        ({"name": "r", "allow": {"emails": ["alice"]}}, "routes[0].allow.emails[0]: not an email"),
        ({"name": "r", "allow": {"emails": ["a@b@c.com"]}}, "routes[0].allow.emails[0]: not an"),
        ({"name": "r", "allow": {"emails": ["a@"]}}, "routes[0].allow.emails[0]: not an email"),
        ({"name": "r", "allow": {"domains": ["@example.com"]}}, "routes[0].allow.domains[0]: a"),
        ({"name": "r", "allow": {"authenticated": "yes!"}}, "routes[0].allow.authenticated: exp"),
        ({"name": "r", "allow": {"claims": {}}}, "routes[0].allow.claims: must map at least one"),
        ({"name": "r", "allow": {"claims": ["a"]}}, "routes[0].allow.claims: expected a mapping"),
        (
            {"name": "r", "allow": {"claims": {"email_verified": True}}},
            "routes[0].allow.claims.email_verified: claims are compared as strings",
        ),
        (
            {"name": "r", "allow": {"claims": {"realm_access.roles": ["ops", 1]}}},
            'routes[0].allow.claims["realm_access.roles"][1]: claims are compared as strings',
        ),
        ({"name": "r", "allow": {"claims": {"": "x"}}}, 'routes[0].allow.claims[""]: a claim'),
        ({"name": "r", "allow": {"claims": {"tenant": None}}}, "routes[0].allow.claims.tenant: re"),
        (
            {"name": "r", "allow": {"spiffe_ids": ["https://example.org/x"]}},
            "routes[0].allow.spiffe_ids[0]: expected a SPIFFE ID",
        ),
        *(
            (
                {"name": "r", "allow": {"service_accounts": [account]}},
                "routes[0].allow.service_accounts[0]: expected <namespace>/<service account>",
            )
            for account in (
                "frontend",
                "system:serviceaccount:payments:frontend",
                "*/frontend",
                "payments/front*",
                "Payments/frontend",
                "payments/frontend/x",
                "payments/" + "a" * 254,
            )
        ),
        ({"name": "r", "allow": {"all": []}}, "routes[0].allow.all: must list at least one"),
        ({"name": "r", "allow": {"all": {"groups": ["a"]}}}, "routes[0].allow.all: must be a list"),
        ({"name": "r", "allow": {"all": [{"groups": ["a"]}, {}]}}, "routes[0].allow.all[1]: names"),
        (
            {"name": "r", "allow": {"all": [{"groups": ["a"]}, {"domain": ["x.com"]}]}},
            "routes[0].allow.all[1].domain: unknown key; did you mean domains?",
        ),
        (
            {"name": "r", "allow": {"users": ["u"]}, "deny": {"all": [{"authenticated": True}]}},
            "routes[0].deny.all[0].authenticated: only allowed in allow",
        ),
    ],
)
def test_each_route_problem_is_named_by_its_key_path(
    document: dict[str, Any], issues: Issues, route: dict[str, object], expected: str
) -> None:
    """A bad route key is reported at its exact path, saying what is wrong."""
    only_route(document, **route)

    reported = issues(document)

    assert any(issue.startswith(expected) for issue in reported), reported


def test_routes_must_be_a_non_empty_list(document: dict[str, Any], issues: Issues) -> None:
    """No routes, an empty list or a mapping instead of a list are each reported at `routes`."""
    document.pop("routes")
    assert issues(document) == ["routes: required"]
    document["routes"] = []
    assert issues(document) == [
        "routes: must list at least one route: with none, every request is a 404"
    ]
    document["routes"] = {"name": "app"}
    assert issues(document) == ["routes: must be a list of mappings, got a mapping"]


def test_a_route_that_is_not_a_mapping_is_reported(
    document: dict[str, Any], issues: Issues
) -> None:
    """A bare string in the routes list is reported at its index."""
    document["routes"].append("grafana")

    assert issues(document)[0] == "routes[1]: expected a mapping of keys to values, got a string"


def test_duplicate_route_names_name_both_routes(document: dict[str, Any], issues: Issues) -> None:
    """Route names are unique; the second use names the route that had it first."""
    document["routes"] = [
        {"name": "app", "public": True},
        {"name": "other", "public": True},
        {"name": "app", "public": True},
    ]

    assert issues(document) == ["routes[2].name: 'app' is already the name of routes[0]"]


def test_step_up_keys_map_onto_the_model(document: dict[str, Any]) -> None:
    """`step_up` becomes whole-second max_age, ordered distinct acr_values and an amr set."""
    only_route(
        document,
        name="vault",
        allow={"authenticated": True},
        step_up={"max_age": "15m", "acr_values": ["urn:mfa", "urn:hwk", "urn:mfa"], "amr": ["otp"]},
    )
    (route,) = parse_settings(document, {}).routes
    assert route.step_up == StepUp(
        max_age_seconds=900, acr_values=("urn:mfa", "urn:hwk"), amr=frozenset({"otp"})
    )


def test_a_route_without_step_up_has_none(document: dict[str, Any]) -> None:
    """No `step_up` key: any valid identity's sign-in will do."""
    only_route(document, name="r", allow={"authenticated": True})
    assert parse_settings(document, {}).routes[0].step_up is None


@pytest.mark.parametrize(
    ("step_up", "extra", "expected"),
    [
        ({}, {}, "routes[0].step_up: names no requirement"),
        ({"max_age": "1.5s"}, {}, "routes[0].step_up.max_age: must be a whole number"),
        ({"max_age": "soon"}, {}, "routes[0].step_up.max_age: expected seconds"),
        ({"acr_values": "urn:mfa"}, {}, "routes[0].step_up.acr_values: must be a list"),
        ({"acr_values": ["a b"]}, {}, "routes[0].step_up.acr_values[0]: use printable ASCII"),
        ({"acr_values": ['a"b']}, {}, "routes[0].step_up.acr_values[0]: use printable ASCII"),
        ({"amr": ["pwd", ""]}, {}, "routes[0].step_up.amr[1]: must not be empty"),
        ({"max_age": 60, "acr": ["x"]}, {}, "routes[0].step_up.acr: unknown key"),
        ({"max_age": 60}, {"public": True}, "routes[0].step_up: cannot be combined with public"),
    ],
)
def test_bad_step_up_is_refused(
    document: dict[str, Any],
    issues: Issues,
    step_up: dict[str, Any],
    extra: dict[str, Any],
    expected: str,
) -> None:
    """Every malformed `step_up` is refused with its key path."""
    policy: dict[str, Any] = extra or {"allow": {"authenticated": True}}
    only_route(document, name="r", step_up=step_up, **policy)
    assert any(issue.startswith(expected) for issue in issues(document)), issues(document)
