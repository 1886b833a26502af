"""What the demo prints when ready: the URL, the users, the metrics, and a curl line to copy."""

from __future__ import annotations

import shlex
from pathlib import Path

from proxy.demo.banner import READY_LINE, Ready, ready_text

READY = Ready(
    public_url="http://127.0.0.1:4180",
    issuer_url="http://127.0.0.1:4100",
    metrics_url="http://127.0.0.1:4181/metrics",
    config_path=Path("/tmp/idgate demo/idgate-demo.yaml"),
    service_client_id="demo-service",
    service_secret="demo-service-secret",
    token="header.payload.signature",
)


def test_curl_line_is_a_runnable_command() -> None:
    """The curl line splits, as a shell would, into the bearer header and the API URL."""
    lines = ready_text(READY).splitlines()
    curl = next(line for line in lines if line.startswith("curl -H"))
    assert shlex.split(curl) == [
        "curl",
        "-H",
        "Authorization: Bearer header.payload.signature",
        "http://127.0.0.1:4180/api/whoami",
    ]


def test_ready_text_names_url_users_metrics_and_config() -> None:
    """The text names the URL to open, each user with groups, the metrics URL and the config."""
    text = ready_text(READY)
    assert "Open     http://127.0.0.1:4180/" in text
    assert "alice  engineering, admins" in text
    assert "carol  sales" in text
    assert "http://127.0.0.1:4181/metrics" in text
    assert "idgate explain -c '/tmp/idgate demo/idgate-demo.yaml'" in text
    assert "DEV ONLY" in text
    assert text.rstrip().splitlines()[-1] == READY_LINE
