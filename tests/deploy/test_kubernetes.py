"""The Kubernetes manifests validate against their schemas, build with kustomize, are hardened,
and agree with each other and with the idgate config they carry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import Settings
from proxy.server.supervisor import stop_grace_seconds
from tests.deploy.dockerfile import parse_dockerfile
from tests.deploy.files import (
    DOCKERFILE,
    KUBERNETES,
    KUSTOMIZATION,
    SCHEMAS,
    SECRET_TEMPLATE,
    SERVICE_MONITOR_COMPONENT,
    config_variables,
    configmap_idgate_document,
    idgate_settings,
    kubernetes_object,
    load_yaml_documents,
    read_yaml,
    read_yaml_documents,
    stand_in,
)
from tests.deploy.tools import run, tool
from tests.e2e.tools import require_tool

#: The oldest Kubernetes the manifests are written for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS: Final = ("1.29.0", "latest")
BUILT_IN_MANIFESTS: Final = sorted(
    path.name for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml"
)
NAMESPACE: Final = "idgate"
SERVICE_MONITOR: Final = SERVICE_MONITOR_COMPONENT / "servicemonitor.yaml"


def _container() -> dict[str, Any]:
    (container,) = kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


def _pod_labels() -> dict[str, str]:
    template = kubernetes_object("Deployment")["spec"]["template"]
    labels: dict[str, str] = template["metadata"]["labels"]
    return labels


def _settings() -> Settings:
    return idgate_settings(configmap_idgate_document())


def _container_port(name: str) -> int:
    (port,) = (port for port in _container()["ports"] if port["name"] == name)
    number: int = port["containerPort"]
    return number


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.e2e
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", BUILT_IN_MANIFESTS)
def test_manifest_validates_against_the_kubernetes_schema(manifest: str, version: str) -> None:
    """Each built-in object validates strictly (no unknown field) against Kubernetes' schema."""
    validator = tool("kubernetes-validate", "pip install kubernetes-validate")
    versions = [] if version == "latest" else ["--kubernetes-version", version]

    output = run([validator, "--strict", *versions, str(KUBERNETES / manifest)])

    assert "passed" in output
    assert "WARN" not in output


@pytest.mark.e2e
def test_service_monitor_validates_against_the_prometheus_operator_schema() -> None:
    """The ServiceMonitor validates against the monitoring.coreos.com/v1 CRD schema."""
    validator = tool("check-jsonschema", "pip install check-jsonschema")
    schema = SCHEMAS / "servicemonitor_v1.json"

    run([validator, "--schemafile", str(schema), str(SERVICE_MONITOR)])


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl", "install kubectl: it builds kustomizations offline")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return load_yaml_documents(result.stdout)


@pytest.mark.e2e
def test_the_service_monitor_is_an_optional_component(tmp_path: Path) -> None:
    """The base builds without the Prometheus Operator's kinds (so `kubectl apply -k` works on
    any cluster); uncommenting `components:` in kustomization.yaml, as its comment says, adds
    the ServiceMonitor in idgate's namespace."""
    enabled = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, enabled)
    text = KUSTOMIZATION.read_text(encoding="utf-8")
    commented = "# components:\n#   - components/servicemonitor\n"
    assert commented in text
    (enabled / KUSTOMIZATION.name).write_text(
        text.replace(commented, commented.replace("# ", "")), encoding="utf-8"
    )

    base = {obj["kind"] for obj in _kustomize(KUBERNETES)}
    with_monitor = _kustomize(enabled)

    assert "ServiceMonitor" not in base
    (monitor,) = (obj for obj in with_monitor if obj["kind"] == "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert read_yaml(SERVICE_MONITOR_COMPONENT / "kustomization.yaml")["kind"] == "Component"


@pytest.mark.e2e
def test_kustomize_builds_every_listed_object_into_the_idgate_namespace() -> None:
    """`kubectl kustomize` renders every listed object, namespaced, with the image set."""
    rendered = _kustomize(KUBERNETES)
    listed = [
        obj
        for resource in read_yaml(KUSTOMIZATION)["resources"]
        for obj in read_yaml_documents(KUBERNETES / resource)
    ]
    (deployment,) = (obj for obj in rendered if obj["kind"] == "Deployment")
    (image,) = read_yaml(KUSTOMIZATION)["images"]

    assert sorted((obj["kind"], obj["metadata"]["name"]) for obj in rendered) == sorted(
        (obj["kind"], obj["metadata"]["name"]) for obj in listed
    )
    assert all(
        obj["metadata"].get("namespace") == NAMESPACE
        for obj in rendered
        if obj["kind"] != "Namespace"
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{image['newName']}:{image['newTag']}"
    )


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    """kustomization.yaml applies every manifest here except the Secret template, so applying
    it never overwrites the real Secret."""
    resources = read_yaml(KUSTOMIZATION)["resources"]
    manifests = {path.name for path in KUBERNETES.glob("*.yaml")}

    assert set(resources) == manifests - {KUSTOMIZATION.name, SECRET_TEMPLATE.name}
    assert len(resources) == len(set(resources))
    assert read_yaml(KUSTOMIZATION)["namespace"] == NAMESPACE
    assert kubernetes_object("Namespace")["metadata"]["name"] == NAMESPACE


def test_configmap_config_loads_with_the_deployment_environment() -> None:
    """The ConfigMap's idgate.yaml parses without an issue once the variables the Deployment
    sets are present, and it names no variable the Deployment does not set."""
    document = configmap_idgate_document()
    provided = {variable["name"] for variable in _container()["env"]}

    assert config_variables(document) <= provided
    parse_settings(document, {name: stand_in(name) for name in provided})


def test_config_is_mounted_where_idgate_serve_reads_it() -> None:
    """`serve --config` names the ConfigMap's key inside the read-only config mount."""
    container = _container()
    args = container["args"]
    path = Path(args[args.index("--config") + 1])
    (mount,) = (mount for mount in container["volumeMounts"] if mount["name"] == "config")
    volumes = kubernetes_object("Deployment")["spec"]["template"]["spec"]["volumes"]
    (volume,) = (volume for volume in volumes if volume["name"] == "config")

    assert args[0] == "serve"
    assert Path(mount["mountPath"]) == path.parent
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == kubernetes_object("ConfigMap")["metadata"]["name"]
    assert path.name in kubernetes_object("ConfigMap")["data"]


def test_deployment_is_hardened() -> None:
    """Non-root (the image's uid), read-only root, no privilege escalation, every capability
    dropped, RuntimeDefault seccomp, no service account token, CPU and memory bounded."""
    pod = kubernetes_object("Deployment")["spec"]["template"]["spec"]
    container = _container()
    security = container["securityContext"]
    (user,) = (
        item.arguments
        for item in parse_dockerfile(DOCKERFILE.read_text()).final_stage
        if item.keyword == "USER"
    )

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_probes_ask_healthz_and_readyz_on_the_listen_port() -> None:
    """Liveness probes /healthz and readiness /readyz, on the port `listen` names."""
    container = _container()
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    settings = _settings()

    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert _container_port(liveness["port"]) == settings.listen.port
    assert _container_port(readiness["port"]) == settings.listen.port
    assert settings.listen.host == "0.0.0.0"  # noqa: S104 (a pod must listen outside)


def test_termination_grace_outlasts_the_pre_stop_pause_and_the_drain() -> None:
    """The kubelet kills a pod terminationGracePeriodSeconds after it starts terminating, preStop
    pause included: that covers the pause and the longest a stopping idgate takes (the
    supervisor's stop grace, which bounds a single process too), so no drain is cut short."""
    pod = kubernetes_object("Deployment")["spec"]["template"]["spec"]
    program, pause = _container()["lifecycle"]["preStop"]["exec"]["command"]

    assert program == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= float(pause) + stop_grace_seconds(
        _settings().drain
    )


def test_metrics_port_is_metrics_listen() -> None:
    """The container's `metrics` port is `metrics.listen`, a port apart from the proxy's."""
    settings = _settings()

    assert settings.metrics.listen is not None
    assert _container_port("metrics") == settings.metrics.listen.port
    assert settings.metrics.listen.port != settings.listen.port


def test_workers_equal_the_cpu_limit() -> None:
    """`workers` is the container's CPU limit: one process per core it may use."""
    limit = str(_container()["resources"]["limits"]["cpu"])
    cores = int(limit.removesuffix("m")) / 1000 if limit.endswith("m") else float(limit)

    assert _settings().workers == cores


def test_writable_tmp_for_worker_metrics() -> None:
    """/tmp is a writable emptyDir: with workers > 1 the workers' metric files live there."""
    pod = kubernetes_object("Deployment")["spec"]["template"]["spec"]
    (mount,) = (mount for mount in _container()["volumeMounts"] if mount["mountPath"] == "/tmp")
    (volume,) = (volume for volume in pod["volumes"] if volume["name"] == mount["name"])

    assert "emptyDir" in volume
    assert not mount.get("readOnly", False)


def test_secret_template_holds_no_secret_and_every_key_the_deployment_reads() -> None:
    """The template's values are empty, and it has every key the Deployment takes from it."""
    (secret,) = read_yaml_documents(SECRET_TEMPLATE)
    read = {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for variable in _container()["env"]
        if variable["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    }

    assert secret["kind"] == "Secret"
    assert set(secret["stringData"].values()) == {""}
    assert "data" not in secret
    assert set(secret["stringData"]) == read


def test_every_secret_variable_comes_from_the_secret() -> None:
    """No secret value is written into the Deployment: every variable is a secretKeyRef."""
    assert all("value" not in variable for variable in _container()["env"])


def test_service_monitor_and_budget_select_the_idgate_pods() -> None:
    """Service, PodDisruptionBudget and NetworkPolicy select the pods; the ServiceMonitor
    selects the Service and scrapes its metrics port."""
    service = kubernetes_object("Service")
    (monitor,) = read_yaml_documents(SERVICE_MONITOR)
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]

    assert _selects(service["spec"]["selector"], _pod_labels())
    assert _selects(
        kubernetes_object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], _pod_labels()
    )
    assert _selects(
        kubernetes_object("NetworkPolicy", "idgate")["spec"]["podSelector"]["matchLabels"],
        _pod_labels(),
    )
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert ports[endpoint["port"]]["targetPort"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert {port["targetPort"] for port in ports.values()} == {"http", "metrics"}


def test_ingress_sends_every_served_host_to_the_service() -> None:
    """The Ingress routes public_url's host and every route's host, all paths, to the Service's
    `http` port, with TLS for each; its controller's namespace is the one the policy admits."""
    ingress = kubernetes_object("Ingress")["spec"]
    service = kubernetes_object("Service")
    settings = _settings()
    hosts = {urlsplit(settings.public_url).hostname} | {
        route.host for route in settings.routes if route.host
    }
    backends = {
        (rule["host"], path["path"], path["backend"]["service"]["name"])
        for rule in ingress["rules"]
        for path in rule["http"]["paths"]
    }
    admitted = kubernetes_object("NetworkPolicy", "idgate")["spec"]["ingress"][0]["from"]

    assert backends == {(host, "/", service["metadata"]["name"]) for host in hosts}
    assert {
        path["backend"]["service"]["port"]["name"]
        for rule in ingress["rules"]
        for path in rule["http"]["paths"]
    } == {"http"}
    assert {host for tls in ingress["tls"] for host in tls["hosts"]} == hosts
    assert admitted[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": f"ingress-{ingress['ingressClassName']}"
    }


def test_budget_keeps_a_pod_serving() -> None:
    """The disruption budget never lets every replica go at once, even at the autoscaler's
    minimum."""
    replicas = kubernetes_object("HorizontalPodAutoscaler")["spec"]["minReplicas"]

    assert kubernetes_object("PodDisruptionBudget")["spec"]["maxUnavailable"] < replicas


def test_autoscaler_scales_the_deployment_on_cpu() -> None:
    """The HorizontalPodAutoscaler owns the Deployment's replica count (which the Deployment
    leaves unset) and scales on CPU utilisation of the container's request."""
    autoscaler = kubernetes_object("HorizontalPodAutoscaler")["spec"]
    deployment = kubernetes_object("Deployment")
    (metric,) = autoscaler["metrics"]

    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert "replicas" not in deployment["spec"]
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    assert metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] < 100
    assert "cpu" in _container()["resources"]["requests"]


def test_replicas_share_sessions_in_redis_behind_sentinels() -> None:
    """With several replicas the ConfigMap keeps sessions in Redis (Sentinel), with passwords
    from the Secret, and the NetworkPolicy lets idgate reach the data nodes and sentinels; it
    asks for offline_access, so sessions are re-checked at the provider with a refresh token."""
    redis = _settings().session.redis
    egress = kubernetes_object("NetworkPolicy", "idgate")["spec"]["egress"]
    allowed = {(port["port"], port["protocol"]) for rule in egress for port in rule["ports"]}

    assert redis is not None
    assert "offline_access" in _settings().oidc.scopes
    assert redis.sentinel is not None
    assert redis.password is not None
    assert redis.sentinel.password is not None
    assert {(6379, "TCP"), (26379, "TCP")} <= allowed
    assert {address.port for address in redis.sentinel.addresses} == {26379}


def test_network_policy_denies_all_by_default() -> None:
    """One policy selects every pod in the namespace and allows nothing, both ways."""
    policy = kubernetes_object("NetworkPolicy", "default-deny")["spec"]

    assert policy == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_network_policy_admits_the_proxy_and_metrics_ports_only() -> None:
    """idgate's policy admits traffic to its `http` and `metrics` ports, and nothing else."""
    ingress = kubernetes_object("NetworkPolicy", "idgate")["spec"]["ingress"]

    assert sorted(port["port"] for rule in ingress for port in rule["ports"]) == [
        "http",
        "metrics",
    ]


def test_network_policy_lets_idgate_reach_dns_the_provider_and_every_upstream() -> None:
    """Egress allows DNS, the issuer's port, and the port of every route's upstream."""
    egress = kubernetes_object("NetworkPolicy", "idgate")["spec"]["egress"]
    allowed = {(port["port"], port["protocol"]) for rule in egress for port in rule["ports"]}
    settings = _settings()
    issuer = urlsplit(settings.oidc.issuer)
    upstreams = [urlsplit(route.upstream) for route in settings.routes if route.upstream]

    assert {(53, "UDP"), (53, "TCP")} <= allowed
    assert (issuer.port or 443, "TCP") in allowed
    for upstream in upstreams:
        default = 443 if upstream.scheme == "https" else 80
        assert (upstream.port or default, "TCP") in allowed
