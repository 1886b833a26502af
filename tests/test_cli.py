"""`idgate check`, `explain` and `revoke` in process: exit codes, and what they print where."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from proxy.cli import (
    EXIT_ADMIN,
    EXIT_CONFIG,
    EXIT_DENIED,
    EXIT_NO_ROUTE,
    EXIT_OK,
    EXIT_SIGN_IN,
    EXIT_USAGE,
    main,
)

SECRET = "cli-test-session-secret-0123456789abcdef"
ENVIRON = {"IDGATE_SESSION_SECRET": SECRET}

VALID = """\
public_url: https://idgate.example.com
oidc:
  issuer: https://login.example.com
  client_id: idgate
  audiences: [https://api.example.com]
session:
  secret: ${IDGATE_SESSION_SECRET}
routes:
  - name: status
    host: status.example.com
    upstream: http://status.internal:8080
    public: true
  - name: admin
    path: /admin
    upstream: http://admin.internal:8080
    allow:
      groups: [admins]
    deny:
      users: [mallory]
  - name: beta
    path: /beta
    upstream: http://beta.internal:8080
    mode: audit
    allow:
      groups: [beta]
  - name: api
    path: /api
    upstream: http://api.internal:8080
    allow:
      claims:
        scope: admin:read
"""

BROKEN = """\
public_url: https://idgate.example.com/some/path
oidc:
  issuer: https://login.example.com
  client_id: idgate
  algorithms: [HS256]
session:
  secret: too-short
routes:
  - name: admin
    upstream: http://admin.internal:8080
    allow:
      groups: []
  - name: admin
    upstream: http://other.internal:8080
    alow:
      users: [alice]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "idgate.yaml"
    path.write_text(VALID, encoding="utf-8")
    return path


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, environ: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `idgate ARGV` with ENVIRON unless another one is given."""
    code = main(list(argv), ENVIRON if environ is None else environ)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_accepts_a_valid_config(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid config exits 0 and says how many routes it has."""
    code, out, err = run(capsys, "check", "-c", str(config))

    assert code == EXIT_OK
    assert out == f"{config}: ok (4 routes)\n"
    assert err == ""


@pytest.mark.parametrize(
    ("oidc_lines", "warned"),
    [
        ("", "oidc.audiences: not set, so no bearer token is accepted"),
        (
            "  audiences: [https://api.example.com, idgate]\n  accept_client_id_audience: true\n",
            "oidc.accept_client_id_audience: bearer tokens for 'idgate' (oidc.client_id)",
        ),
    ],
    ids=["no-audiences", "client-id-opt-in"],
)
def test_check_prints_warnings_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], oidc_lines: str, warned: str
) -> None:
    """A config that works but refuses every bearer token, or accepts ID tokens as bearer tokens,
    exits 0 with `ok` on stdout and one `warning:` line on stderr at the key it is about."""
    path = tmp_path / "idgate.yaml"
    path.write_text(
        VALID.replace("  audiences: [https://api.example.com]\n", oidc_lines), encoding="utf-8"
    )

    code, out, err = run(capsys, "check", "-c", str(path))

    assert code == EXIT_OK
    assert out == f"{path}: ok (4 routes)\n"
    [line] = err.splitlines()
    assert line.startswith(f"{path}: warning: {warned}")


def test_check_refuses_the_client_id_as_a_bearer_audience(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Listing client_id among the bearer audiences without the opt-in is an error, exit 1."""
    path = tmp_path / "idgate.yaml"
    path.write_text(
        VALID.replace("[https://api.example.com]", "[https://api.example.com, idgate]"),
        encoding="utf-8",
    )

    code, out, err = run(capsys, "check", "-c", str(path))

    assert code == EXIT_CONFIG
    assert out == ""
    assert err.startswith(f"{path}: oidc.audiences: 'idgate' is oidc.client_id")
    assert "oidc.accept_client_id_audience: true" in err


def test_check_prints_every_issue_with_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every problem, not just the first, is one stderr line: file, key path, message; exit 1."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")

    code, out, err = run(capsys, "check", "-c", str(broken), environ={})

    assert code == EXIT_CONFIG
    assert out == ""
    lines = err.splitlines()
    paths = [line.removeprefix(f"{broken}: ").split(":", 1)[0] for line in lines]
    assert sorted(paths) == sorted(
        [
            "public_url",
            "oidc.algorithms[0]",
            "session.secret",
            "routes[0].allow.groups",
            "routes[1].name",
            "routes[1].alow",
            "routes[1].allow",
        ]
    )
    assert all(line.startswith(f"{broken}: ") for line in lines)
    assert f"{broken}: routes[1].alow: unknown key; did you mean allow?" in lines


def test_check_never_prints_a_secret_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret that is refused (too short) is named by its key path, never shown."""
    short = "short-but-secret-value"
    path = tmp_path / "idgate.yaml"
    path.write_text(VALID.replace("${IDGATE_SESSION_SECRET}", short), encoding="utf-8")

    code, _, err = run(capsys, "check", "-c", str(path))

    assert code == EXIT_CONFIG
    assert f"{path}: session.secret: must be at least 32 characters" in err
    assert short not in err


def test_check_never_prints_redis_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis passwords (data nodes, sentinels, one in a URL) appear neither when the config is
    accepted nor when its Redis block has problems."""
    redis = (
        "  store: redis\n"
        "  redis:\n"
        "    sentinel: {master: m, addresses: ['s:26379'], password: sentinel-hunter2}\n"
        "    password: ${REDIS_PASSWORD}\n"
    )
    path = tmp_path / "idgate.yaml"
    path.write_text(VALID.replace("session:\n", "session:\n" + redis), encoding="utf-8")
    environ = ENVIRON | {"REDIS_PASSWORD": "data-hunter2"}

    accepted = run(capsys, "check", "-c", str(path), environ=environ)
    broken = VALID.replace(
        "session:\n", "session:\n" + redis + "    url: redis://:url-hunter2@cache\n"
    )
    path.write_text(broken, encoding="utf-8")
    refused = run(capsys, "check", "-c", str(path), environ=environ)

    assert (accepted[0], refused[0]) == (EXIT_OK, EXIT_CONFIG)
    assert "session.redis: exactly one of url, sentinel or cluster" in refused[2]
    assert "hunter2" not in "".join(accepted[1:] + refused[1:])


def test_check_names_an_unset_environment_variable(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `${VAR}` that is not set is an error at the key that uses it."""
    code, _, err = run(capsys, "check", "-c", str(config), environ={})

    assert code == EXIT_CONFIG
    assert err == (
        f"{config}: session.secret: environment variable IDGATE_SESSION_SECRET is not set\n"
    )


def test_check_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config file that cannot be read is exit 1 with the file named."""
    missing = tmp_path / "nope.yaml"

    code, _, err = run(capsys, "check", "-c", str(missing))

    assert code == EXIT_CONFIG
    assert err.startswith(f"{missing}: ")
    assert "cannot read" in err


def test_config_defaults_to_idgate_config(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without -c, IDGATE_CONFIG names the file."""
    code, out, _ = run(capsys, "check", environ=ENVIRON | {"IDGATE_CONFIG": str(config)})

    assert code == EXIT_OK
    assert out == f"{config}: ok (4 routes)\n"


def test_missing_config_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Neither -c nor IDGATE_CONFIG: exit 2 with argparse's usage message."""
    with pytest.raises(SystemExit) as exited:
        main(["check"], {})

    assert exited.value.code == EXIT_USAGE
    assert "-c/--config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected", "exit_code"),
    [
        (
            [
                "--url",
                "https://idgate.example.com/admin/users",
                "--user",
                "ann",
                "--group",
                "admins",
            ],
            ["route:     admin (", "decision:  allow", "reason:    group", "rule:      allow"],
            EXIT_OK,
        ),
        (
            ["--url", "https://idgate.example.com/admin", "--user", "mallory", "--group", "admins"],
            ["decision:  deny", "reason:    deny_rule", "rule:      deny", "answer:    403"],
            EXIT_DENIED,
        ),
        (
            ["--url", "https://idgate.example.com/admin", "--user", "ann"],
            ["reason:    not_allowed", "rule:      allow: none of its conditions is met"],
            EXIT_DENIED,
        ),
        (
            ["--url", "https://idgate.example.com/admin"],
            ["identity:  anonymous", "decision:  unauthenticated", "answer:    401"],
            EXIT_SIGN_IN,
        ),
        (
            ["--method", "POST", "--url", "https://idgate.example.com/beta/x", "--user", "ann"],
            ["route:     beta (", "decision:  would_deny", "answer:    200 (audit mode"],
            EXIT_OK,
        ),
        (
            ["--url", "https://status.example.com/"],
            ["route:     status (", "decision:  allow", "reason:    public"],
            EXIT_OK,
        ),
        (
            ["--url", "https://idgate.example.com/nothing-here"],
            ["route:     no route: 404", "answer:    404"],
            EXIT_NO_ROUTE,
        ),
        (["--url", "https://idgate.example.com/a\tb"], ["answer:    400"], EXIT_NO_ROUTE),
        (["--url", "https://idgate.example.com/oauth2/userinfo"], ["endpoint:  "], EXIT_OK),
    ],
)
def test_explain_prints_route_and_decision_and_exits_per_outcome(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: list[str],
    exit_code: int,
) -> None:
    """explain prints the matching route, the rule and condition that decided, and exits 0 when
    the request gets through, 3 when it needs a sign-in, 4 when denied, 5 when refused before
    any policy (no route, malformed URL)."""
    code, out, err = run(capsys, "explain", "-c", str(config), *args)

    assert code == exit_code
    assert err == ""
    for line in expected:
        assert line in out


def test_explain_never_prints_the_query(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The URL's query (which may carry a token or code) is left out of the output."""
    code, out, _ = run(
        capsys, "explain", "-c", str(config), "--url", "https://status.example.com/?code=s3cret"
    )

    assert code == EXIT_OK
    assert "s3cret" not in out


def test_explain_with_claims(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--claim NAME=VALUE (repeatable) gives the identity claims that a claims rule matches."""
    code, out, _ = run(
        capsys,
        "explain",
        "-c",
        str(config),
        "--url",
        "https://idgate.example.com/api/v1",
        "--user",
        "ann",
        "--claim",
        "scope=admin:read",
        "--claim",
        "tenant=acme",
    )

    assert code == EXIT_OK
    assert "decision:  allow" in out
    assert "matched:   claim:scope=admin:read" in out


def test_explain_as_a_token_of_a_named_issuer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--issuer NAME explains the request as a token of that issuer: a route limited to other
    issuers refuses it, one that lists it decides by its policy; an unknown name is a usage
    error."""
    path = tmp_path / "idgate.yaml"
    path.write_text(
        VALID.replace(
            "    allow:\n      groups: [admins]",
            "    issuers: [oidc]\n    allow:\n      groups: [admins]",
        )
        + "issuers:\n  - name: partner\n    issuer: https://partner.example.com\n"
        "    jwks_uri: https://partner.example.com/keys\n    audiences: [partner-api]\n",
        encoding="utf-8",
    )
    url = ("--url", "https://idgate.example.com/admin/x", "--user", "ann", "--group", "admins")

    code, out, _ = run(capsys, "explain", "-c", str(path), *url, "--issuer", "partner")
    assert code == EXIT_SIGN_IN
    assert "issuers oidc" in out
    assert "decision:  unauthenticated" in out
    assert "matched:   issuer:partner" in out
    assert "answer:    401 (the route does not accept this issuer's tokens)" in out

    code, out, _ = run(capsys, "explain", "-c", str(path), *url)
    assert code == EXIT_OK
    assert "decision:  allow" in out

    code, _, err = run(capsys, "explain", "-c", str(path), *url, "--issuer", "partners")
    assert code == EXIT_USAGE
    assert "--issuer 'partners': the issuers are oidc, partner" in err


def test_explain_refuses_a_malformed_claim(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --claim without `=` is a usage error, exit 2."""
    code, out, err = run(
        capsys,
        "explain",
        "-c",
        str(config),
        "--url",
        "https://idgate.example.com/admin",
        "--user",
        "ann",
        "--claim",
        "scope",
    )

    assert code == EXIT_USAGE
    assert out == ""
    assert "--claim 'scope': expected NAME=VALUE" in err


def test_explain_with_a_broken_config_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain validates the config first: issues on stderr, exit 1, nothing explained."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")

    code, out, err = run(
        capsys, "explain", "-c", str(broken), "--url", "https://idgate.example.com/"
    )

    assert code == EXIT_CONFIG
    assert out == ""
    assert f"{broken}: routes[0].allow.groups: must not be empty" in err.splitlines()


def test_render_nginx_prints_a_server_block_per_host(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`idgate render nginx` prints the config for inside http {}: the status host's server,
    the default server, idgate at the address given."""
    code = main(
        ["render", "nginx", "-c", str(config), "--listen", "8080", "--idgate", "10.0.0.5:4180"],
        ENVIRON,
    )
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "server_name status.example.com;" in out
    assert "listen 8080 default_server;" in out
    assert "server 10.0.0.5:4180;" in out


def test_render_nginx_names_a_decision_only_route_without_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A route nginx has nowhere to send is an error that says which --upstream to give."""
    path = tmp_path / "idgate.yaml"
    path.write_text(VALID.replace("    upstream: http://beta.internal:8080\n", ""), "utf-8")

    code = main(["render", "nginx", "-c", str(path)], ENVIRON)

    assert code == EXIT_CONFIG
    assert "--upstream beta=URL" in capsys.readouterr().err
    assert (
        main(["render", "nginx", "-c", str(path), "--upstream", "beta=http://b:80"], ENVIRON) == 0
    )
    assert main(["render", "nginx", "-c", str(path), "--upstream", "beta"], ENVIRON) == EXIT_USAGE


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["--lift"],
        ["--list", "--user", "alice"],
        ["--lift", "--list"],
    ],
)
def test_revoke_needs_a_list_or_one_target(
    config: Path, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`idgate revoke` takes --list alone, or --user/--session (optionally --lift): else usage."""
    assert main(["revoke", "-c", str(config), *arguments], ENVIRON) == EXIT_USAGE
    assert "give --list" in capsys.readouterr().err


def test_revoke_without_a_metrics_listener_says_so(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no metrics.listen there is no admin listener: exit 3 with the reason."""
    assert main(["revoke", "-c", str(config), "--user", "alice"], ENVIRON) == EXIT_ADMIN
    assert "metrics.listen is not configured" in capsys.readouterr().err


def test_revoke_reports_an_unreachable_admin_listener(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A listener that does not answer is exit 3, and the admin token is never printed."""
    code = main(
        ["revoke", "-c", str(config), "--list", "--admin-url", "http://127.0.0.1:9"], ENVIRON
    )
    assert code == EXIT_ADMIN
    err = capsys.readouterr().err
    assert err.startswith("idgate revoke: http://127.0.0.1:9")
    assert SECRET not in err


def test_sessions_with_the_cookie_store_says_listing_needs_redis(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the cookie store nothing lists sessions: exit 1 and what would, before any call."""
    assert main(["sessions", "-c", str(config), "--user", "alice"], ENVIRON) == EXIT_CONFIG
    assert "listing sessions needs session.store: redis" in capsys.readouterr().err


def test_sessions_reports_an_unreachable_admin_listener(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the Redis store the listing asks the admin listener; one that does not answer is
    exit 3, the admin token never printed."""
    path = tmp_path / "idgate.yaml"
    redis = "  store: redis\n  redis_url: redis://127.0.0.1:9/0\n"
    path.write_text(VALID.replace("session:\n", "session:\n" + redis), encoding="utf-8")
    arguments = ["sessions", "-c", str(path), "--user", "alice"]
    assert main([*arguments, "--admin-url", "http://127.0.0.1:9"], ENVIRON) == EXIT_ADMIN
    err = capsys.readouterr().err
    assert err.startswith("idgate sessions: http://127.0.0.1:9")
    assert SECRET not in err


def test_explain_needs_no_secret_variables(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain uses no secret, so an environment without IDGATE_SESSION_SECRET still explains."""
    code, out, err = run(
        capsys, "explain", "-c", str(config), "--url", "https://status.example.com/", environ={}
    )

    assert (code, err) == (EXIT_OK, "")
    assert "decision:  allow" in out


def _token(claims: dict[str, object]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


def test_explain_takes_a_token_and_says_it_was_not_verified(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--token: the identity comes from the token's claims, decoded without verification."""
    token = _token({"sub": "ann", "groups": ["admins"], "iss": "https://login.example.com"})

    code, out, _ = run(
        capsys, "explain", "-c", str(config), "--url", "https://x.example/admin", "--token", token
    )

    assert code == EXIT_OK
    assert "token:     claims decoded WITHOUT verification" in out
    assert "aud names none of issuer oidc's audiences: the proxy would refuse it" in out
    assert "identity:  user ann, email -, groups admins" in out
    assert "matched:   group:admins" in out
    assert token not in out


@pytest.mark.parametrize(
    "extra", [["--token", "not-a-token"], ["--token", _token({"sub": "a"}), "--user", "bob"]]
)
def test_explain_refuses_a_malformed_token_or_a_second_identity(
    config: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    """A token that is no JWT, or given beside --user, is a usage error; nothing is explained."""
    code, out, err = run(
        capsys, "explain", "-c", str(config), "--url", "https://x.example/admin", *extra
    )

    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("--token")
