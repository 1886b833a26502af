"""Where the deployment files are, and how the tests read them.

YAML is read with a loader that refuses duplicate keys: PyYAML would silently keep the last one,
and Kubernetes, compose and Prometheus would each pick differently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from proxy.config.load import parse_settings
from proxy.config.model import Settings

ROOT: Final = Path(__file__).resolve().parents[2]
DOCKERFILE: Final = ROOT / "Dockerfile"
DOCKERIGNORE: Final = ROOT / ".dockerignore"
COMPOSE: Final = ROOT / "docker-compose.yml"
COMPOSE_IDGATE: Final = ROOT / "config" / "compose" / "idgate.yaml"
COMPOSE_DEX: Final = ROOT / "config" / "compose" / "dex.yaml"
KUBERNETES: Final = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION: Final = KUBERNETES / "kustomization.yaml"
SECRET_TEMPLATE: Final = KUBERNETES / "secret.template.yaml"
SERVICE_MONITOR_COMPONENT: Final = KUBERNETES / "components" / "servicemonitor"
PROMETHEUS: Final = ROOT / "deploy" / "prometheus"
ALERT_RULES: Final = PROMETHEUS / "idgate-alerts.yaml"
ALERT_TESTS: Final = PROMETHEUS / "idgate-alerts.test.yaml"
SCHEMAS: Final = Path(__file__).resolve().parent / "schemas"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that raises on a mapping key given twice."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key, deep=True) for key, _ in node.value]
    duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
    if duplicates:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {duplicates}", node.start_mark
        )
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))


def load_yaml_documents(text: str) -> list[Any]:
    """Every non-empty document of a multi-document YAML stream."""
    documents = yaml.load_all(text, Loader=_UniqueKeyLoader)
    return [document for document in documents if document is not None]


def read_yaml_documents(path: Path) -> list[Any]:
    return load_yaml_documents(path.read_text(encoding="utf-8"))


def stand_in(name: str) -> str:
    """A value for variable `name`, long enough for any secret idgate checks."""
    return f"stand-in-{name.lower()}-0123456789abcdef0123456789"


class _AnsweringEnvironment(Mapping[str, str]):
    """Has every variable (set to its stand-in) and records which ones were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return stand_in(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.asked)

    def __len__(self) -> int:
        return len(self.asked)


def config_variables(document: object) -> set[str]:
    """The environment variables an idgate config document names, as idgate's own `${VAR}`
    expansion finds them."""
    environ = _AnsweringEnvironment()
    parse_settings(document, environ)
    return environ.asked


def idgate_settings(document: object) -> Settings:
    """An idgate config document parsed as `idgate serve` would, every variable it names set to
    a stand-in; raises ConfigError listing every problem."""
    return parse_settings(document, _AnsweringEnvironment())


def kubernetes_object(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`) among the manifests kustomization.yaml lists."""
    found = [
        obj
        for resource in read_yaml(KUSTOMIZATION)["resources"]
        for obj in read_yaml_documents(KUBERNETES / resource)
        if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    obj: dict[str, Any] = found[0]
    return obj


def configmap_idgate_document() -> Any:
    """The idgate.yaml the ConfigMap carries, as a parsed YAML document."""
    return load_yaml(kubernetes_object("ConfigMap")["data"]["idgate.yaml"])
