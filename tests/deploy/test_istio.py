"""deploy/istio: the mesh's ext_authz provider and the CUSTOM AuthorizationPolicy.

No Istio schema ships with a package this project installs, so the files are checked against the
minimal structural schemas below (the keys Istio's MeshConfig `envoyExtAuthzHttp` provider and
`security.istio.io/v1` AuthorizationPolicy define, nothing else allowed), and then against what
idgate expects: the check path prefix, the headers it identifies by and answers with, and the
Service deploy/kubernetes creates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jsonschema  # type: ignore[import-untyped]  # no stubs; check-jsonschema installs it

from proxy.endpoints.own_paths import Endpoint
from proxy.forward.identity_headers import ASSERTION, EMAIL, GROUPS, USER
from tests.deploy.files import KUBERNETES, ROOT, kubernetes_object, read_yaml
from tests.e2e.gateways import GATEWAYS_DOC

ISTIO: Final = ROOT / "deploy" / "istio"
MESH_CONFIG: Final = ISTIO / "mesh-config.yaml"
POLICY: Final = ISTIO / "authorization-policy.yaml"

_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


def _closed(properties: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


#: Istio MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider.
_EXT_AUTHZ_HTTP: Final = _closed(
    {
        "service": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "timeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"},
        "pathPrefix": {"type": "string", "pattern": "^/"},
        "failOpen": {"type": "boolean"},
        "statusOnError": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
        "includeRequestHeadersInCheck": _STRINGS,
        "includeAdditionalHeadersInCheck": {"type": "object"},
        "includeRequestBodyInCheck": {"type": "object"},
        "headersToUpstreamOnAllow": _STRINGS,
        "headersToDownstreamOnDeny": _STRINGS,
        "headersToDownstreamOnAllow": _STRINGS,
    },
    required=("service", "port"),
)
MESH_SCHEMA: Final = _closed(
    {
        "apiVersion": {"const": "install.istio.io/v1alpha1"},
        "kind": {"const": "IstioOperator"},
        "spec": _closed(
            {
                "meshConfig": _closed(
                    {
                        "extensionProviders": {
                            "type": "array",
                            "items": _closed(
                                {"name": {"type": "string"}, "envoyExtAuthzHttp": _EXT_AUTHZ_HTTP},
                                required=("name", "envoyExtAuthzHttp"),
                            ),
                        }
                    }
                )
            }
        ),
    },
    required=("apiVersion", "kind", "spec"),
)
_OPERATION_KEYS: Final = ("hosts", "notHosts", "paths", "notPaths", "methods", "notMethods")
_OPERATION: Final = _closed(dict.fromkeys((*_OPERATION_KEYS, "ports", "notPorts"), _STRINGS))
POLICY_SCHEMA: Final = _closed(
    {
        "apiVersion": {"const": "security.istio.io/v1"},
        "kind": {"const": "AuthorizationPolicy"},
        "metadata": _closed(
            {"name": {"type": "string"}, "namespace": {"type": "string"}}, required=("name",)
        ),
        "spec": _closed(
            {
                "selector": _closed({"matchLabels": {"type": "object"}}),
                "action": {"enum": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
                "provider": _closed({"name": {"type": "string"}}),
                "rules": {
                    "type": "array",
                    "items": _closed(
                        {
                            "from": {"type": "array"},
                            "to": {"type": "array", "items": _closed({"operation": _OPERATION})},
                            "when": {"type": "array"},
                        }
                    ),
                },
            }
        ),
    },
    required=("apiVersion", "kind", "metadata", "spec"),
)


def _validated(path: Path, schema: dict[str, Any]) -> Any:
    document = read_yaml(path)
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


def _provider() -> dict[str, Any]:
    mesh = _validated(MESH_CONFIG, MESH_SCHEMA)
    (provider,) = mesh["spec"]["meshConfig"]["extensionProviders"]
    found: dict[str, Any] = provider
    return found


def test_the_files_have_the_structure_istio_defines() -> None:
    """Every key is one Istio knows, in the place it belongs (no typo passes silently)."""
    _validated(MESH_CONFIG, MESH_SCHEMA)
    _validated(POLICY, POLICY_SCHEMA)


def test_the_provider_asks_idgates_service_at_its_check_prefix() -> None:
    """The provider names the Service deploy/kubernetes creates, its port, and idgate's
    ext_authz prefix, and refuses requests when idgate cannot answer."""
    provider = _provider()["envoyExtAuthzHttp"]
    service = kubernetes_object("Service")
    namespace = read_yaml(KUBERNETES / "kustomization.yaml")["namespace"]
    (http,) = (port for port in service["spec"]["ports"] if port["name"] == "http")

    assert provider["service"] == f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    assert provider["port"] == http["port"]
    assert provider["pathPrefix"] == f"/oauth2/{Endpoint.EXT_AUTHZ}"
    assert provider["failOpen"] is False


def test_the_provider_passes_the_credentials_and_the_identity() -> None:
    """idgate sees the bearer token and the session cookie; the workload gets every identity
    header on allow; a browser gets the sign-in redirect and the refreshed cookie."""
    provider = _provider()["envoyExtAuthzHttp"]

    assert {"authorization", "cookie", "accept"} <= set(provider["includeRequestHeadersInCheck"])
    identity = {name.lower() for name in (USER, EMAIL, GROUPS, ASSERTION)}
    assert identity <= set(provider["headersToUpstreamOnAllow"])
    assert {"location", "www-authenticate", "set-cookie"} <= set(
        provider["headersToDownstreamOnDeny"]
    )
    assert "set-cookie" in provider["headersToDownstreamOnAllow"]


def test_the_policy_sends_every_request_but_idgates_own_to_the_provider() -> None:
    """CUSTOM with the mesh's provider, and idgate's own endpoints left out (a check of the
    sign-in callback would need a session that the callback is about to create)."""
    policy = _validated(POLICY, POLICY_SCHEMA)["spec"]

    assert policy["action"] == "CUSTOM"
    assert policy["provider"]["name"] == _provider()["name"]
    (rule,) = policy["rules"]
    (target,) = rule["to"]
    assert target["operation"]["notPaths"] == ["/oauth2/*"]


def test_the_docs_show_both_files_as_they_are() -> None:
    """docs/gateways.md shows the files whole, so the page cannot drift from what is checked."""
    page = GATEWAYS_DOC.read_text(encoding="utf-8")

    assert MESH_CONFIG.read_text(encoding="utf-8") in page
    assert POLICY.read_text(encoding="utf-8") in page
