"""The `idgate` command as an operator runs it: a separate process, the shipped example config."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import SECRET_ENVIRONMENT, base_document, running_idgate
from tests.e2e.tools import require_tool

EXAMPLE = Path(__file__).parents[2] / "config" / "idgate.example.yaml"


def idgate(
    *args: str, secrets: bool = True, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m proxy ARGS`, with the example's secrets in the environment unless told not to,
    and `config` as IDGATE_CONFIG."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
    if secrets:
        environment |= SECRET_ENVIRONMENT
    if config is not None:
        environment["IDGATE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_is_installed() -> None:
    """`idgate --version` works through the installed console script, not only `python -m`."""
    script = require_tool(
        str(Path(sys.executable).with_name("idgate")), "pip install -e . installs `idgate`"
    )

    done = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )

    assert (done.returncode, done.stdout.strip()) == (0, "idgate 0.1.0")


def test_check_accepts_the_example_config() -> None:
    """The shipped example is valid once its secrets are in the environment."""
    done = idgate("check", "-c", str(EXAMPLE))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{EXAMPLE}: ok (9 routes)"
    assert done.stderr == ""


def test_check_without_the_secrets_names_both_keys() -> None:
    """Unset secret variables are errors at their key paths, exit 1."""
    done = idgate("check", "-c", str(EXAMPLE), secrets=False)

    assert done.returncode == 1
    assert (
        f"{EXAMPLE}: oidc.client_secret: environment variable IDGATE_CLIENT_SECRET" in done.stderr
    )
    assert f"{EXAMPLE}: session.secret: environment variable IDGATE_SESSION_SECRET" in done.stderr


def test_check_names_every_problem_of_a_broken_copy(tmp_path: Path) -> None:
    """Errors in a copy of the example exit 1, each printed with its key path; no secret shown."""
    broken = tmp_path / "idgate.yaml"
    source = EXAMPLE.read_text(encoding="utf-8")
    for before, after in (
        ("groups: [sre, engineering]", "groups: []"),
        ("leeway_seconds: 30", "leeway_secs: 30"),
        ("mode: audit", "mode: watch"),
    ):
        assert before in source
        source = source.replace(before, after, 1)
    broken.write_text(source, encoding="utf-8")

    done = idgate("check", "-c", str(broken))

    assert done.returncode == 1
    assert done.stdout == ""
    problems = done.stderr.splitlines()
    assert len(problems) == 3
    assert f"{broken}: routes[1].allow.groups: must not be empty" in problems
    assert f"{broken}: oidc.leeway_secs: unknown key; did you mean leeway_seconds?" in problems
    assert any(line.startswith(f"{broken}: routes[5].mode: ") for line in problems)
    for secret in SECRET_ENVIRONMENT.values():
        assert secret not in done.stderr


def test_explain_prints_the_route_and_the_decision() -> None:
    """explain names the matching route and the decision with its reason, without a server."""
    allowed = idgate(
        "explain",
        "-c",
        str(EXAMPLE),
        *shlex.split("--url https://grafana.example.com/d/home --user alice --group sre"),
    )
    denied = idgate(
        "explain",
        "-c",
        str(EXAMPLE),
        *shlex.split(
            "--url https://admin.example.com/ --user eve --email eve@example.com"
            " --group contractors"
        ),
    )

    assert allowed.returncode == 0, allowed.stderr
    assert "route:     grafana (host grafana.example.com" in allowed.stdout
    assert "decision:  allow" in allowed.stdout
    assert "reason:    group" in allowed.stdout
    assert "answer:    200 (forwarded to http://grafana.internal:3000)" in allowed.stdout
    assert denied.returncode == 4, denied.stderr
    assert "route:     admin (" in denied.stdout
    assert "decision:  deny" in denied.stdout
    assert "reason:    deny_rule" in denied.stdout
    assert "answer:    403 (forbidden)" in denied.stdout


def test_the_readme_explain_line_runs_as_written_without_secrets() -> None:
    """README's own explain example, with no IDGATE_* variable set, prints what README shows and
    exits 4 (denied)."""
    readme = (EXAMPLE.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ idgate explain ", 1)[1].split("\n```", 1)[0]
    command, shown = block.split("\nrequest:", 1)

    done = idgate("explain", *shlex.split(command.replace("\\\n", " ")), secrets=False)

    assert done.returncode == 4, done.stderr
    assert done.stdout.strip() == f"request:{shown}".strip()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ("--url https://grafana.example.com/ --user ann --group sre", 0),
        ("--url https://jenkins.example.com/ --user ann", 0),
        ("--url https://grafana.example.com/", 3),
        ("--url https://admin.example.com/payroll --user ann --group hr", 3),
        ("--url https://grafana.example.com/ --user ann --group guests", 4),
        ("--url https://nowhere.example.com/", 5),
        ("--url https://grafana.example.com/oauth2/userinfo", 0),
    ],
)
def test_explain_exits_with_a_status_per_outcome(args: str, code: int) -> None:
    """0 let through (audit included), 3 sign-in needed (step-up included), 4 denied, 5 no
    route; scripts and CI can test a policy change by the exit status alone."""
    done = idgate("explain", "-c", str(EXAMPLE), *shlex.split(args), secrets=False)

    assert (done.returncode, done.stderr) == (code, "")


async def test_explain_takes_a_real_token_and_says_it_was_not_verified(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """A token from the provider gives the identity through the configured claim names; its
    claims are read without verification, and the token itself is never printed."""
    routes = [
        {
            "name": "ops",
            "upstream": "http://127.0.0.1:9",
            "allow": {"all": [{"groups": ["admins"]}, {"domains": ["example.com"]}]},
        }
    ]
    config = tmp_path / "idgate.yaml"
    document = base_document(oidc_provider.issuer, routes) | {"public_url": "http://127.0.0.1"}
    config.write_text(yaml.safe_dump(document), "utf-8")
    alice = await oidc_provider.token_for_user("alice")
    bob = await oidc_provider.token_for_user("bob")

    allowed = idgate("explain", "-c", str(config), "--url", "/x", "--token", alice, secrets=False)
    denied = idgate("explain", "-c", str(config), "--url", "/x", "--token", bob, secrets=False)

    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.stdout.startswith("token:     claims decoded WITHOUT verification")
    assert "token:     read as a token of issuer oidc" in allowed.stdout
    assert "would refuse" not in allowed.stdout, "a good token has nothing the proxy would refuse"
    assert "identity:  user alice, email alice@example.com" in allowed.stdout
    assert "matched:   all(group:admins, domain:example.com)" in allowed.stdout
    assert denied.returncode == 4
    assert "rule:      allow.all[0]: none of its conditions is met" in denied.stdout
    assert alice not in allowed.stdout + allowed.stderr


def test_serve_refuses_a_broken_config_before_listening(tmp_path: Path) -> None:
    """`idgate serve` with an invalid config exits 1 with the key path and never listens."""
    broken = tmp_path / "idgate.yaml"
    broken.write_text("public_url: not-a-url\n", encoding="utf-8")

    done = idgate("serve", "-c", str(broken))

    assert done.returncode == 1
    assert f"{broken}: public_url: " in done.stderr
    assert "listening" not in done.stderr


def test_serve_stops_cleanly_on_sigterm(oidc_provider: OidcProvider, tmp_path: Path) -> None:
    """A running `idgate serve` exits 0 on SIGTERM, saying so in its log."""
    routes = [{"name": "public", "path": "/", "upstream": "http://127.0.0.1:9", "public": True}]
    with running_idgate(tmp_path, base_document(oidc_provider.issuer, routes)) as process:
        code = process.stop()

    assert code == 0
    assert any(
        entry.get("msg", "").startswith("idgate stopping") for entry in process.log_entries()
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check"], f"{EXAMPLE}: ok (9 routes)"),
        (["explain", "--url", "https://status.example.com/"], "route:     status ("),
    ],
)
def test_config_comes_from_idgate_config_when_c_is_absent(args: list[str], expected: str) -> None:
    """IDGATE_CONFIG is the default for -c."""
    done = idgate(*args, config=EXAMPLE)

    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
