"""docker-compose.yml validates against the Compose spec, and idgate, Dex and whoami in it are
wired to each other: one issuer URL, one client, one secret, the published ports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import Settings
from proxy.config.values import duration
from proxy.explain import explain, principal_for_explain
from proxy.server.supervisor import stop_grace_seconds
from tests.deploy.files import COMPOSE, COMPOSE_DEX, COMPOSE_IDGATE, config_variables, read_yaml
from tests.deploy.tools import run, tool

#: Compose interpolation: `$$`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`.
_INTERPOLATION: Final = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def _interpolate(value: object, environ: Mapping[str, str]) -> Any:
    """`value` as compose resolves it in `environ`; a required variable that is unset fails."""
    if isinstance(value, dict):
        return {key: _interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        given = environ.get(name)
        unset = given is None or (given == "" and op is not None and op.startswith(":"))
        if unset and op is not None and op.endswith("?"):
            pytest.fail(f"compose requires {name}: {arg}")
        if unset and op is not None:
            return str(arg)
        return given or ""

    return _INTERPOLATION.sub(replace, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as `docker compose up` sees it with no variable set in the shell."""
    resolved: dict[str, Any] = _interpolate(read_yaml(COMPOSE), {})
    return resolved


@pytest.fixture(scope="module")
def settings(compose: dict[str, Any]) -> Settings:
    """The compose idgate config, parsed with the environment compose gives the container."""
    return parse_settings(read_yaml(COMPOSE_IDGATE), compose["services"]["idgate"]["environment"])


@pytest.fixture(scope="module")
def dex() -> dict[str, Any]:
    config: dict[str, Any] = read_yaml(COMPOSE_DEX)
    return config


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port) for each `ADDRESS:HOST:CONTAINER` entry."""
    published: dict[int, tuple[str, int]] = {}
    for entry in service["ports"]:
        address, host_port, container_port = entry.split(":")
        published[int(container_port)] = (address, int(host_port))
    return published


def _bind_mount(service: dict[str, Any], source: str) -> dict[str, Any]:
    (mount,) = (mount for mount in service["volumes"] if mount["source"] == source)
    assert mount["type"] == "bind"
    assert mount["read_only"] is True
    volume: dict[str, Any] = mount
    return volume


@pytest.mark.e2e
def test_compose_file_validates_against_the_compose_spec() -> None:
    """check-jsonschema's vendored Compose spec schema accepts docker-compose.yml."""
    validator = tool("check-jsonschema", "pip install check-jsonschema")

    run([validator, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])


def test_idgate_config_loads_with_the_environment_compose_gives_it(
    compose: dict[str, Any],
) -> None:
    """Every variable the compose idgate config names is set, non-empty, by compose itself,
    and the config parses without an issue."""
    environment = compose["services"]["idgate"]["environment"]
    document = read_yaml(COMPOSE_IDGATE)

    assert config_variables(document) <= {name for name, value in environment.items() if value}
    parse_settings(document, environment)


def test_idgate_reads_the_mounted_config_on_its_published_ports(
    compose: dict[str, Any], settings: Settings
) -> None:
    """The config is mounted read-only at IDGATE_CONFIG; `listen` and `metrics.listen` are
    published on the host's loopback only."""
    idgate = compose["services"]["idgate"]
    mount = _bind_mount(idgate, "./" + str(COMPOSE_IDGATE.relative_to(COMPOSE.parent)))
    published = _published(idgate)

    assert mount["target"] == idgate["environment"]["IDGATE_CONFIG"]
    assert settings.listen.host == "0.0.0.0"  # noqa: S104 (a container must listen outside)
    assert settings.metrics.listen is not None
    assert published.keys() == {settings.listen.port, settings.metrics.listen.port}
    assert {address for address, _ in published.values()} == {"127.0.0.1"}
    assert urlsplit(settings.public_url).port == published[settings.listen.port][1]


def test_idgate_runs_hardened(compose: dict[str, Any]) -> None:
    """Read-only root with a /tmp tmpfs, no capabilities, no privilege gain."""
    idgate = compose["services"]["idgate"]

    assert idgate["read_only"] is True
    assert idgate["tmpfs"] == ["/tmp"]
    assert idgate["cap_drop"] == ["ALL"]
    assert idgate["security_opt"] == ["no-new-privileges:true"]


def test_docker_waits_for_idgate_to_drain_before_killing_it(
    compose: dict[str, Any], settings: Settings
) -> None:
    """`stop_grace_period` covers the longest a stopping idgate takes: Docker's default 10s
    would kill it in the middle of its drain."""
    grace = duration(compose["services"]["idgate"]["stop_grace_period"])

    assert grace >= stop_grace_seconds(settings.drain)


def test_browser_and_idgate_reach_dex_at_the_issuer_url(
    compose: dict[str, Any], settings: Settings, dex: dict[str, Any]
) -> None:
    """Dex's issuer is idgate's; its host is a *.localhost name (the browser's loopback, RFC
    6761) that is also Dex's alias inside the compose network, on the port Dex publishes."""
    issuer = urlsplit(settings.oidc.issuer)
    service = compose["services"]["dex"]
    assert issuer.hostname is not None
    assert issuer.port is not None

    assert dex["issuer"] == settings.oidc.issuer
    assert issuer.hostname.endswith(".localhost")
    assert issuer.hostname in service["networks"]["default"]["aliases"]
    assert int(dex["web"]["http"].rpartition(":")[2]) == issuer.port
    assert _published(service)[issuer.port] == ("127.0.0.1", issuer.port)


def test_dex_reads_the_mounted_config(compose: dict[str, Any]) -> None:
    """`dex serve` is given the path where config/compose/dex.yaml is mounted."""
    service = compose["services"]["dex"]
    mount = _bind_mount(service, "./" + str(COMPOSE_DEX.relative_to(COMPOSE.parent)))

    assert service["command"][:2] == ["dex", "serve"]
    assert service["command"][-1] == mount["target"]


def test_dex_knows_idgate_as_its_client(
    compose: dict[str, Any], settings: Settings, dex: dict[str, Any]
) -> None:
    """Dex has one client: idgate's client_id, its callback URL, and the secret idgate sends."""
    (client,) = dex["staticClients"]
    dex_environment = compose["services"]["dex"]["environment"]
    callback = f"{settings.public_url}{settings.prefix}/callback"

    assert client["id"] == settings.oidc.client_id
    assert client["redirectURIs"] == [callback]
    assert settings.oidc.client_secret is not None
    assert dex_environment[client["secretEnv"]] == settings.oidc.client_secret.reveal()


def test_every_route_reaches_whoami(compose: dict[str, Any], settings: Settings) -> None:
    """Each route's upstream is the whoami service on the port whoami is told to listen on."""
    whoami = compose["services"]["whoami"]
    port = int(whoami["command"][whoami["command"].index("--port") + 1])

    for route in settings.routes:
        assert route.upstream is not None
        upstream = urlsplit(route.upstream)
        assert (upstream.hostname, upstream.port) == ("whoami", port)
    assert "ports" not in whoami


@pytest.mark.parametrize(
    ("email", "path", "status"),
    [
        (None, "/", 401),
        (None, "/public", 200),
        ("alice@example.com", "/", 200),
        ("alice@example.com", "/admin", 200),
        ("bob@example.com", "/", 200),
        ("bob@example.com", "/admin", 403),
        ("mallory@example.org", "/", 403),
        ("mallory@example.org", "/public", 200),
    ],
)
def test_demo_users_get_the_answers_the_dex_config_promises(
    settings: Settings, dex: dict[str, Any], email: str | None, path: str, status: int
) -> None:
    """The demo users Dex defines get the answers its comments describe."""
    users = {user["email"] for user in dex["staticPasswords"]}
    assert email is None or email in users
    assert settings.oidc.user_claim == ("email",)
    principal = principal_for_explain(user=email, email=email, groups=[], claims={})

    answer = explain(settings, method="GET", url=settings.public_url + path, principal=principal)

    assert answer.status == status


def test_dex_demo_passwords_are_bcrypt_hashes(dex: dict[str, Any]) -> None:
    """Every demo user has a bcrypt hash Dex accepts (cost 10 or more), not a clear password."""
    for user in dex["staticPasswords"]:
        match = re.fullmatch(r"\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}", user["hash"])
        assert match is not None, user["email"]
        assert int(match["cost"]) >= 10


def test_compose_mounts_only_files_that_exist() -> None:
    """Every bind-mounted source exists in the repository."""
    for service in read_yaml(COMPOSE)["services"].values():
        for mount in service.get("volumes", []):
            assert (COMPOSE.parent / PurePosixPath(mount["source"])).is_file(), mount["source"]
