"""Loading settings: the example config, defaults, every issue with its key path, env, secrets."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.config.load import (
    DEFAULT_LISTEN,
    ConfigError,
    ConfigIssue,
    load_settings,
    parse_settings,
)
from proxy.config.model import (
    ListenAddress,
    LogSettings,
    MetricsSettings,
    OIDCSettings,
    PolicyMode,
    RateLimitSettings,
    RedisSettings,
    Secret,
    SessionSettings,
    StepUp,
)
from tests.support.certificates import CertificateAuthority

Issues = Callable[..., list[str]]

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "idgate.example.yaml"
CLIENT_SECRET = "client-secret-do-not-print"
SESSION_SECRET = "session-secret-do-not-print-0123456789"
EXAMPLE_ENV = {"IDGATE_CLIENT_SECRET": CLIENT_SECRET, "IDGATE_SESSION_SECRET": SESSION_SECRET}


def test_example_config_parses_with_its_two_variables_set() -> None:
    """The annotated example is valid once its two secrets are in the environment."""
    settings = load_settings(EXAMPLE, EXAMPLE_ENV)

    assert settings.oidc.client_secret == Secret(CLIENT_SECRET)
    assert settings.session.secrets == (Secret(SESSION_SECRET),)
    assert [route.name for route in settings.routes] == [
        "status",
        "grafana",
        "billing-api",
        "payroll",
        "admin",
        "jenkins",
        "deploy",
        "wiki",
        "oncall",
    ]
    assert [issuer.name for issuer in settings.all_issuers] == [
        "oidc",
        "partner",
        "github-actions",
        "tools-sso",
        "cluster",
    ]


def test_example_config_shows_every_kind_of_route() -> None:
    """The example has a public, a group, a claims, a step-up, a deny, an audit, a one-issuer,
    a decision-only and an all-of route."""
    routes = {route.name: route for route in load_settings(EXAMPLE, EXAMPLE_ENV).routes}

    assert routes["status"].policy.public
    assert routes["grafana"].policy.allow is not None
    assert routes["grafana"].policy.allow.groups == {"sre", "engineering"}
    assert routes["billing-api"].policy.allow is not None
    assert dict(routes["billing-api"].policy.allow.claims)["realm_access.roles"] == {
        "billing-admin",
        "billing-service",
    }
    assert routes["payroll"].step_up == StepUp(max_age_seconds=900, acr_values=("urn:example:mfa",))
    assert routes["admin"].policy.deny is not None
    assert routes["jenkins"].policy.mode is PolicyMode.AUDIT
    assert routes["deploy"].issuers == frozenset({"github-actions"})
    assert routes["wiki"].upstream is None
    assert routes["oncall"].policy.allow is not None
    assert len(routes["oncall"].policy.allow.all_of) == 2


def test_example_config_without_its_variables_names_both() -> None:
    """Without the environment the example fails on exactly the two secret references."""
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, {})

    assert [issue.path for issue in caught.value.issues] == ["oidc.client_secret", "session.secret"]


def test_without_reading_secrets_no_secret_variable_is_needed(document: dict[str, Any]) -> None:
    """Not reading secrets covers every secret: client_secret, session secrets, Redis URL and
    passwords; every other `${VAR}` is still required."""
    document["oidc"]["client_secret"] = "${CLIENT_SECRET}"
    document["session"] = {
        "secret": ["${SESSION_SECRET}", "${OLD_SESSION_SECRET}"],
        "store": "redis",
        "redis": {"url": "${REDIS_URL}", "password": "${REDIS_PASSWORD}"},
    }

    settings = parse_settings(document, {}, read_secrets=False)

    assert settings.session.redis is not None
    document["oidc"]["client_id"] = "${CLIENT_ID}"
    with pytest.raises(ConfigError, match="CLIENT_ID is not set"):
        parse_settings(document, {}, read_secrets=False)


def test_without_reading_secrets_the_example_loads_with_no_variables() -> None:
    """For commands that use no secret (explain), the secret references need no variable."""
    settings = load_settings(EXAMPLE, {}, read_secrets=False)

    assert settings.oidc.client_secret is not None
    assert settings.oidc.client_secret.reveal() != ""


def test_minimal_config_takes_every_default_from_the_model(document: dict[str, Any]) -> None:
    """Keys left out get the model's defaults; the loader invents none except listen."""
    settings = parse_settings(document, {})

    assert settings.listen == DEFAULT_LISTEN == ListenAddress(host="127.0.0.1", port=4180)
    assert settings.workers is None
    assert settings.prefix == "/oauth2"
    assert settings.allowed_redirect_domains == ()
    assert settings.trusted_proxies == ()
    assert settings.oidc == OIDCSettings(issuer="https://login.example.com", client_id="idgate")
    assert settings.session == SessionSettings(secrets=(Secret(document["session"]["secret"]),))
    assert settings.metrics == MetricsSettings()
    assert settings.log == LogSettings()


def test_every_issue_is_reported_at_once(document: dict[str, Any], issues: Issues) -> None:
    """One run lists the problems of every section, in reading order, not just the first."""
    document["workers"] = 0
    document["oidc"]["clent_id"] = "typo"
    document["session"]["lifetime"] = "forever"
    document["routes"].append({"name": "open", "upstream": "http://127.0.0.1:9000"})
    document["log"] = {"level": "chatty"}

    assert issues(document) == [
        "workers: must be at least 1",
        "oidc.clent_id: unknown key; did you mean client_id?",
        (
            'session.lifetime: expected seconds or a duration such as "90s", "30m", "12h",'
            ' "1h30m" or "500ms"'
        ),
        (
            "routes[1].allow: required unless the route says public: true (no route is open by"
            " default; a deny block alone admits nobody)"
        ),
        "log.level: must be one of: DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ]


def test_config_error_carries_issues_and_prints_one_per_line() -> None:
    """ConfigError's text is its issues as `path: message` lines, for `idgate check` to print."""
    error = ConfigError(
        (
            ConfigIssue(path="routes[2].allow.groups", message="must be a list of strings"),
            ConfigIssue(path="", message="the document is empty"),
        )
    )

    assert str(error) == "routes[2].allow.groups: must be a list of strings\nthe document is empty"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(listen=":8080"), 'listen: expected "host:port"'),
        (lambda d: d.update(listen="::1:8080"), "listen: an IPv6 address needs brackets"),
        (lambda d: d.update(listen="0.0.0.0:70000"), "listen: must be between 0 and 65535"),
        (lambda d: d.update(listen={"host": "::", "prot": 80}), "listen.port: required"),
        (lambda d: d.update(listen={"host": "::", "prot": 80}), "listen.prot: unknown key"),
        (lambda d: d.update(workers="many"), "workers: expected a whole number, got a string"),
        (lambda d: d.update(workers=True), "workers: expected a whole number, got true/false"),
        (lambda d: d.pop("public_url"), "public_url: required"),
        (lambda d: d.update(public_url="ftp://x.example.com"), "public_url: expected an absolute"),
        (lambda d: d.update(public_url="https://x.example.com/app"), "public_url: must be scheme"),
        (lambda d: d.update(public_url="https://x.example.com/?a=1"), "public_url: must not have"),
        (
            lambda d: d.update(public_url="https://u:p@x.example.com"),
            "public_url: must not contain",
        ),
        (
            lambda d: d.update(public_url="https://x.example.com:99999"),
            "public_url: has an invalid",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["good.example.com", "bad domain"]),
            "allowed_redirect_domains[1]: not a valid host name",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["tools.example.com:x"]),
            'allowed_redirect_domains[0]: a port is a number from 1 to 65535 after one ":"',
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["tools.example.com:0"]),
            "allowed_redirect_domains[0]: a port is a number from 1 to 65535",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["tools.example.com:65536"]),
            "allowed_redirect_domains[0]: a port is a number from 1 to 65535",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["tools.example.com:"]),
            "allowed_redirect_domains[0]: a port is a number from 1 to 65535",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["tools.example.com:80:80"]),
            "allowed_redirect_domains[0]: a port is a number from 1 to 65535",
        ),
        (
            lambda d: d.update(allowed_redirect_domains=["bad domain:8443"]),
            "allowed_redirect_domains[0]: not a valid host name",
        ),
        (lambda d: d.update(trusted_proxies="10.0.0.0/8"), "trusted_proxies: must be a list of"),
        (lambda d: d.update(trusted_proxies=["10.0.0.0/33"]), "trusted_proxies[0]: not an IP"),
        (lambda d: d.update(prefix="/oauth2/"), "prefix: must start with / and not end with /"),
        (lambda d: d.update(prefix="oauth2"), "prefix: must start with /"),
        (lambda d: d.update(prefix="/a//b"), "prefix: must be a normalised path"),
        (lambda d: d.update(proxy_prefix="/x"), "proxy_prefix: unknown key"),
        (lambda d: d.pop("oidc"), "oidc.issuer: required"),
        (lambda d: d.update(oidc="https://login"), "oidc: expected a mapping of keys to values"),
        (lambda d: d["oidc"].pop("client_id"), "oidc.client_id: required"),
        (lambda d: d["oidc"].update(client_id=""), "oidc.client_id: must not be empty"),
        (lambda d: d["oidc"].update(issuer="login.example.com"), "oidc.issuer: expected an"),
        (lambda d: d["oidc"].update(jwks_uri="file:///keys"), "oidc.jwks_uri: expected an"),
        (lambda d: d["oidc"].update(scopes=["email"]), "oidc.scopes: must include openid"),
        (lambda d: d["oidc"].update(scopes=["openid", 'a"b']), "oidc.scopes[1]: a scope is"),
        (lambda d: d["oidc"].update(audiences=[]), "oidc.audiences: must not be empty"),
        (
            lambda d: d["oidc"].update(audiences=["https://api.example.com", "idgate"]),
            "oidc.audiences: 'idgate' is oidc.client_id, the audience of every ID token",
        ),
        (
            lambda d: d["oidc"].update(accept_client_id_audience="yes"),
            "oidc.accept_client_id_audience: expected true or false",
        ),
        (
            lambda d: d["oidc"].update(require_access_token_type=1),
            "oidc.require_access_token_type: expected true or false",
        ),
        (
            lambda d: d["oidc"].update(authorization_params={"prompt": "login"}),
            "oidc.authorization_params.prompt: idgate sets this parameter itself; use oidc.prompt",
        ),
        (
            lambda d: d["oidc"].update(authorization_params={"redirect_uri": "https://x"}),
            "oidc.authorization_params.redirect_uri: idgate sets this parameter itself",
        ),
        (
            lambda d: d["oidc"].update(authorization_params={"hd": 7}),
            "oidc.authorization_params.hd: expected a string",
        ),
        (
            lambda d: d["oidc"].update(authorization_params=["hd"]),
            "oidc.authorization_params: expected a mapping",
        ),
        (lambda d: d["oidc"].update(user_claim=7), "oidc.user_claim: expected a string"),
        (lambda d: d["oidc"].update(algorithms=["RS256", "none"]), "oidc.algorithms[1]: `none`"),
        (lambda d: d["oidc"].update(algorithms=["HS256"]), "oidc.algorithms[0]: HS256 is HMAC"),
        (lambda d: d["oidc"].update(algorithms=["RS1"]), "oidc.algorithms[0]: unknown algorithm"),
        (lambda d: d["oidc"].update(leeway_seconds=61), "oidc.leeway_seconds: must be between 0"),
        (lambda d: d["oidc"].update(http_timeout=0), "oidc.http_timeout: must be a positive"),
        (
            lambda d: d["oidc"].update(jwks_refresh_interval="5s", jwks_min_refresh_interval="1m"),
            "oidc.jwks_min_refresh_interval: must not be longer than jwks_refresh_interval",
        ),
        (lambda d: d.pop("session"), "session.secret: required"),
        (lambda d: d["session"].update(secret=[]), "session.secret: must not be empty"),
        (lambda d: d["session"].update(store="memcached"), "session.store: must be one of: cookie"),
        (lambda d: d["session"].update(store="redis"), "session.redis: required when store"),
        (
            lambda d: d["session"].update(store="redis", redis_url="http://cache"),
            "session.redis_url: expected a redis://",
        ),
        (lambda d: d["session"].update(cookie_name="a b"), "session.cookie_name: a cookie name"),
        (lambda d: d["session"].update(cookie_name="a;b"), "session.cookie_name: a cookie name"),
        (
            lambda d: d["session"].update(cookie_domain="other.com"),
            "session.cookie_domain: must be public_url's host or a parent domain of it",
        ),
        (
            lambda d: d["session"].update(idle_timeout=-1),
            "session.idle_timeout: must be a positive",
        ),
        (
            lambda d: d["session"].update(lifetime="1.5s"),
            "session.lifetime: must be a whole number",
        ),
        (lambda d: d.update(metrics={"listen": "x"}), 'metrics.listen: expected "host:port"'),
        (lambda d: d.update(metrics={"port": 9090}), "metrics.port: unknown key"),
        (
            lambda d: d.update(listen="0.0.0.0:8080", metrics={"listen": "0.0.0.0:8080"}),
            "metrics.listen: must differ from listen",
        ),
        (
            lambda d: d.update(log={"decisions": "sometimes"}),
            "log.decisions: expected true or false",
        ),
        (
            lambda d: d["routes"][0]["allow"].update(certificate_fingerprints=["ab:cd"]),
            "routes[0].allow.certificate_fingerprints[0]: expected a SHA-256 fingerprint",
        ),
        (
            lambda d: d["routes"][0]["allow"].update(certificate_spki_pins=["AAAA"]),
            "routes[0].allow.certificate_spki_pins[0]: expected the base64 SHA-256",
        ),
        (
            lambda d: d["routes"][0]["allow"].update(certificate_issuers=["/nonexistent/ca.pem"]),
            "routes[0].allow.certificate_issuers[0]: cannot read the file",
        ),
        (
            lambda d: d.update(rate_limits={"sign_in_per_minute": -1}),
            "rate_limits.sign_in_per_minute: must be between 0 and 1000000",
        ),
        (
            lambda d: d.update(rate_limits={"failed_auth": 10}),
            "rate_limits.failed_auth: unknown key",
        ),
        (
            lambda d: d.update(forward_auth={"decision_cache_seconds": 61}),
            "forward_auth.decision_cache_seconds: must be between 0 and 60",
        ),
        (
            lambda d: d.update(pages={"help_url": "javascript:alert(1)"}),
            "pages.help_url: expected an absolute http or https URL",
        ),
        (lambda d: d.update(pages={"help": "https://x.example"}), "pages.help: unknown key"),
        (
            lambda d: d.update(pages={"help_url": "https://x.example/?a b"}),
            "pages.help_url: must not contain spaces",
        ),
        (
            lambda d: d.update({True: 1}),
            "a key written on/off/yes/no is read by YAML as true/false",
        ),
        (lambda d: d["oidc"].update({3: "x"}), "oidc: keys must be strings, got a number"),
    ],
)
def test_each_problem_is_named_by_its_key_path(
    document: dict[str, Any],
    issues: Issues,
    change: Callable[[dict[str, Any]], object],
    expected: str,
) -> None:
    """A bad value is reported at the exact key that holds it, with what was expected."""
    change(document)

    assert any(issue.startswith(expected) for issue in issues(document)), issues(document)


@pytest.mark.parametrize("data", [None, [], "public_url: x"])
def test_a_document_that_is_not_a_mapping_is_reported(data: object, issues: Issues) -> None:
    """An empty file or a top-level list still produces issues, with every required key named."""
    reported = issues(data)

    assert "public_url: required" in reported
    assert "routes: required" in reported


def test_a_valid_document_reports_nothing(document: dict[str, Any], issues: Issues) -> None:
    """The minimal document is valid, so the table above tests one change at a time."""
    assert issues(document) == []


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("10.1.2.3:8080", ListenAddress(host="10.1.2.3", port=8080)),
        ("[::1]:8080", ListenAddress(host="::1", port=8080)),
        ("localhost:0", ListenAddress(host="localhost", port=0)),
        ({"host": "::", "port": 4180}, ListenAddress(host="::", port=4180)),
        ({"host": "127.0.0.1", "port": "${PORT}"}, ListenAddress(host="127.0.0.1", port=9999)),
    ],
)
def test_listen_accepts_host_port_bracketed_ipv6_and_a_mapping(
    document: dict[str, Any], listen: object, expected: ListenAddress
) -> None:
    """`listen` is "host:port", "[v6]:port" or {host, port}; a port may come from ${VAR}."""
    document["listen"] = listen

    assert parse_settings(document, {"PORT": "9999"}).listen == expected


def test_allowed_redirect_domains_may_name_a_port(document: dict[str, Any]) -> None:
    """An allowed redirect domain, dotted or not, may carry a port; hosts are lower-cased and
    the port written as a plain number."""
    document["allowed_redirect_domains"] = [
        "Tools.Example.com:8443",
        ".apps.example.com:08443",
        "wiki.example.com",
        ".corp.example.com",
    ]

    assert parse_settings(document, {}).allowed_redirect_domains == (
        "tools.example.com:8443",
        ".apps.example.com:8443",
        "wiki.example.com",
        ".corp.example.com",
    )


def test_trusted_proxies_become_networks(document: dict[str, Any]) -> None:
    """Single addresses become /32 or /128 networks and host bits are dropped (strict=False)."""
    document["trusted_proxies"] = ["10.0.0.0/8", "192.168.1.7/24", "127.0.0.1", "::1"]

    assert parse_settings(document, {}).trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.0/24"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (45, 45),
        ("45", 45),
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("1h30m", 5400),
        ("1d", 86400),
    ],
)
def test_session_durations_are_seconds_or_unit_strings(
    document: dict[str, Any], written: object, seconds: int
) -> None:
    """Durations take plain seconds or number-unit parts (s, m, h, d)."""
    document["session"]["lifetime"] = written

    assert parse_settings(document, {}).session.lifetime_seconds == seconds


@pytest.mark.parametrize("written", ["12 hours", "h", "1y", "-5", -5, 0, "0s", [1], ".nan"])
def test_bad_durations_are_issues(
    document: dict[str, Any], issues: Issues, written: object
) -> None:
    """Anything but a positive number of seconds or unit parts is refused with the key path."""
    document["session"]["refresh_interval"] = written

    assert [issue.split(":")[0] for issue in issues(document)] == ["session.refresh_interval"]


def test_timeouts_accept_fractions_of_a_second(document: dict[str, Any]) -> None:
    """Timeouts may be shorter than a second ("500ms", 2.5)."""
    document["oidc"]["http_timeout"] = "500ms"
    document["routes"][0]["timeout"] = 2.5

    settings = parse_settings(document, {})

    assert settings.oidc.http_timeout_seconds == 0.5
    assert settings.routes[0].timeout_seconds == 2.5


def test_session_secret_list_is_kept_newest_first(document: dict[str, Any]) -> None:
    """A list of session secrets keeps its order: the first seals, all of them open."""
    document["session"]["secret"] = ["n" * 32, "o" * 32]

    assert parse_settings(document, {}).session.secrets == (Secret("n" * 32), Secret("o" * 32))


def test_short_session_secret_is_reported_by_index_with_the_reason(
    document: dict[str, Any], issues: Issues
) -> None:
    """Each secret needs 32 characters because the session keys derive from it."""
    document["session"]["secret"] = ["n" * 32, "too-short-secret"]

    (reported,) = issues(document)

    assert reported.startswith("session.secret[1]: must be at least 32 characters")
    assert "encryption and signing keys are derived from it" in reported


def test_secrets_never_appear_in_repr_or_issue_messages(
    document: dict[str, Any], issues: Issues
) -> None:
    """Client secret, session secrets and the Redis URL are masked in repr and never quoted."""
    document["oidc"]["client_secret"] = "${CLIENT}"
    document["session"].update(store="redis", redis_url="redis://:hunter2-redis@cache:6379")
    settings = parse_settings(document, {"CLIENT": CLIENT_SECRET})

    assert settings.session.redis == RedisSettings(url=Secret("redis://:hunter2-redis@cache:6379"))
    for text in (repr(settings), str(settings)):
        assert CLIENT_SECRET not in text
        assert SESSION_SECRET[:20] not in text
        assert "hunter2" not in text

    document["session"].update(secret="hunter2-short", redis_url="http://:hunter2@cache")
    document["oidc"]["client_secret"] = 12345
    reported = "\n".join(issues(document))
    assert reported.count("\n") == 2
    assert "hunter2" not in reported
    assert "12345" not in reported


def test_bearer_audiences_exclude_the_client_unless_opted_in(document: dict[str, Any]) -> None:
    """Unset audiences accept no bearer token; `accept_client_id_audience` adds client_id (and
    allows listing it), and `require_access_token_type` is read as a boolean."""
    assert parse_settings(document, {}).oidc.accepted_audiences == ()

    document["oidc"].update(accept_client_id_audience=True)
    assert parse_settings(document, {}).oidc.accepted_audiences == ("idgate",)

    document["oidc"].update(audiences=["idgate", "api"], require_access_token_type="true")
    oidc = parse_settings(document, {}).oidc
    assert oidc.accepted_audiences == ("idgate", "api")
    assert oidc.require_access_token_type


def test_authorization_params_are_kept_in_order_and_expand(document: dict[str, Any]) -> None:
    """Extra sign-in parameters are read as name/value pairs, `${VAR}` expanded."""
    document["oidc"]["authorization_params"] = {"hd": "${DOMAIN}", "login_hint": "alice"}

    oidc = parse_settings(document, {"DOMAIN": "example.com"}).oidc

    assert oidc.authorization_params == (("hd", "example.com"), ("login_hint", "alice"))


def test_env_variables_expand_in_every_string(document: dict[str, Any]) -> None:
    """${VAR} and ${VAR:-default} expand in scalars, list items and claim values."""
    document["oidc"].update(client_id="${CLIENT_ID}", audiences=["${AUD:-api}"])
    document["workers"] = "${WORKERS}"
    document["routes"][0]["allow"] = {"claims": {"tenant": "${TENANT}"}}
    document["routes"][0]["pass_access_token"] = "${PASS_TOKEN}"
    environ = {"CLIENT_ID": "from-env", "WORKERS": "3", "TENANT": "acme", "PASS_TOKEN": "true"}

    settings = parse_settings(document, environ)

    assert settings.oidc.client_id == "from-env"
    assert settings.oidc.audiences == ("api",)
    assert settings.workers == 3
    assert settings.routes[0].policy.allow is not None
    assert settings.routes[0].policy.allow.claims == (("tenant", frozenset({"acme"})),)
    assert settings.routes[0].pass_access_token


def test_dollar_dollar_brace_is_a_literal(document: dict[str, Any]) -> None:
    """`$${` writes a literal `${`, which is not expanded further."""
    document["oidc"]["client_id"] = "$${NOT_A_VAR}"

    assert parse_settings(document, {}).oidc.client_id == "${NOT_A_VAR}"


def test_undefined_variable_names_the_key_and_the_variable(
    document: dict[str, Any], issues: Issues
) -> None:
    """A reference to an unset variable without default is an issue at that key, naming it."""
    document["routes"][0]["allow"]["groups"] = ["staff", "${ADMIN_GROUP}"]

    assert issues(document) == [
        "routes[0].allow.groups[1]: environment variable ADMIN_GROUP is not set"
    ]


def test_variable_values_cannot_inject_yaml_or_further_references(document: dict[str, Any]) -> None:
    """A value holding YAML or another ${...} stays one plain string; nothing is re-parsed."""
    document["oidc"]["client_id"] = "${X}"
    document["oidc"]["user_claim"] = "${Y}"
    environ = {"X": "a\nclient_secret: stolen\nb: c", "Y": "${X}"}

    settings = parse_settings(document, environ)

    assert settings.oidc.client_id == "a\nclient_secret: stolen\nb: c"
    assert settings.oidc.client_secret is None
    assert settings.oidc.user_claim == ("${X}",)


def test_load_settings_reads_a_file(document: dict[str, Any], tmp_path: Path) -> None:
    """load_settings parses the YAML file at the path and expands from the given environment."""
    path = tmp_path / "idgate.yaml"
    path.write_text(
        "public_url: https://idgate.example.com\n"
        "oidc: {issuer: 'https://login.example.com', client_id: '${ID}'}\n"
        f"session: {{secret: {document['session']['secret']}}}\n"
        "routes:\n  - {name: app, public: true}\n",
        encoding="utf-8",
    )

    assert load_settings(path, {"ID": "idgate"}).oidc.client_id == "idgate"


def test_rate_limits_are_on_by_default_and_each_can_be_turned_off(
    document: dict[str, Any],
) -> None:
    """Without a `rate_limits` section every limit is on; `0` turns one off."""
    assert parse_settings(document, {}).rate_limits == RateLimitSettings()
    document["rate_limits"] = {"callback_per_minute": 0, "failed_auth_per_minute": 30}
    limits = parse_settings(document, {}).rate_limits
    assert (limits.sign_in_per_minute, limits.callback_per_minute) == (120, 0)
    assert limits.failed_auth_per_minute == 30


def test_forward_auth_decisions_hold_a_few_seconds_unless_turned_off(
    document: dict[str, Any],
) -> None:
    """Without a `forward_auth` section a gateway may reuse an allow for 5 s; `0` turns it off."""
    assert parse_settings(document, {}).forward_auth.decision_cache_seconds == 5
    document["forward_auth"] = {"decision_cache_seconds": 0}
    assert parse_settings(document, {}).forward_auth.decision_cache_seconds == 0


def test_pages_help_url_is_optional(document: dict[str, Any]) -> None:
    """No help link unless `pages.help_url` names one; it is kept as written."""
    assert parse_settings(document, {}).pages.help_url is None
    document["pages"] = {"help_url": "https://desk.example.com/new?form=access#top"}
    assert (
        parse_settings(document, {}).pages.help_url
        == "https://desk.example.com/new?form=access#top"
    )


def test_device_conditions_are_read_into_the_rule(document: dict[str, Any], tmp_path: Path) -> None:
    """Fingerprints are stored without colons in lower case; issuer files as their CA
    certificates; DNS names in lower case."""
    ca = CertificateAuthority.create("device CA")
    issuers = tmp_path / "device-ca.pem"
    issuers.write_bytes(ca.root.pem)
    digest = "AB:" * 31 + "AB"
    document["routes"][0]["allow"] = {
        "certificate_fingerprints": [digest],
        "certificate_issuers": [str(issuers)],
        "certificate_dns_names": ["Laptop-17.Corp.Example"],
    }
    rule = parse_settings(document, {}).routes[0].policy.allow
    assert rule is not None
    assert rule.certificate_fingerprints == frozenset({"ab" * 32})
    assert rule.certificate_issuers == (ca.root.der,)
    assert rule.certificate_dns_names == frozenset({"laptop-17.corp.example"})
