"""idgate without the `tracing` extra: everything imports and builds, and a `tracing` section is
refused with the line to run."""

from __future__ import annotations

from tests.support.python_process import run_python

#: Run in a fresh interpreter where `import opentelemetry` fails, as without the extra.
PROGRAM = """
import importlib, pkgutil, sys
sys.modules["opentelemetry"] = None
import proxy
for module in pkgutil.walk_packages(proxy.__path__, "proxy."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
from proxy.config.load import ConfigError, parse_settings
from proxy.server.app import build_app
document = {
    "public_url": "https://idgate.example.com",
    "oidc": {"issuer": "https://login.example.com", "client_id": "idgate"},
    "session": {"secret": "0123456789abcdef0123456789abcdef"},
    "routes": [{"name": "app", "upstream": "http://127.0.0.1:8080", "public": True}],
}
build_app(parse_settings(document, {}))
try:
    parse_settings({**document, "tracing": {"otlp_endpoint": "http://c:4318/v1/traces"}}, {})
except ConfigError as error:
    print(*error.issues, sep="\\n")
"""


def test_idgate_runs_without_opentelemetry_and_names_the_extra_when_asked_for_it() -> None:
    """Every module imports and the app builds without OpenTelemetry; a `tracing` section is
    then a config error that says which extra to install."""
    result = run_python(PROGRAM)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "tracing: set, but OpenTelemetry is not installed: install idgate with its tracing extra"
        " (pip install 'idgate[tracing]'), or remove this section"
    )
