"""A route's `upstream_tls`: what it becomes, every problem at its key, and the insecure warning."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from proxy.config.advice import config_warnings
from proxy.config.load import parse_settings
from proxy.config.model import UpstreamTLS
from tests.config.conftest import Issues
from tests.support.certificates import CertificateAuthority


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """An upstream CA, and a client certificate with its key, as PEM files."""
    ca = CertificateAuthority.create()
    cert_file, key_file = ca.issue(common_name="idgate").write(tmp_path, "client")
    ca_file = tmp_path / "upstream-ca.pem"
    ca_file.write_bytes(ca.root.pem)
    return {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}


def _with(document: dict[str, Any], upstream_tls: Mapping[str, object]) -> dict[str, Any]:
    route = document["routes"][0]
    route["upstream"] = "https://ledger.internal:8443"
    route["upstream_tls"] = upstream_tls
    return document


def test_upstream_tls_becomes_paths_and_names(
    document: dict[str, Any], files: dict[str, Path]
) -> None:
    """The CA, client certificate and key, server name and SPIFFE ID reach the route."""
    written = {key: str(path) for key, path in files.items()}
    settings = parse_settings(
        _with(
            document,
            written
            | {"server_name": "Ledger.Internal", "spiffe_id": "spiffe://corp.test/ns/a/sa/ledger"},
        ),
        {},
    )

    assert settings.routes[0].upstream_tls == UpstreamTLS(
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        server_name="ledger.internal",
        spiffe_id="spiffe://corp.test/ns/a/sa/ledger",
    )
    assert all("insecure" not in str(warning) for warning in config_warnings(settings))


@pytest.mark.parametrize(
    ("upstream_tls", "expected"),
    [
        ({"cert_file": "client.crt"}, "routes[0].upstream_tls.key_file: cert_file and key_file"),
        (
            {"spiffe_id": "https://x"},
            "routes[0].upstream_tls.spiffe_id: expected a SPIFFE ID such as spiffe://example.org",
        ),
        ({"server_name": "x:443"}, "routes[0].upstream_tls.server_name: must be a host name"),
        ({"ca_file": "/nonexistent/ca.pem"}, "routes[0].upstream_tls.ca_file: cannot be read"),
        ({"insecure_skip_verify": True, "spiffe_id": "spiffe://a/b"}, "routes[0].upstream_tls"),
        ({"cafile": "x"}, "routes[0].upstream_tls.cafile: unknown key; did you mean ca_file?"),
    ],
)
def test_every_problem_is_reported_at_its_key(
    document: dict[str, Any], issues: Issues, upstream_tls: dict[str, object], expected: str
) -> None:
    """Half a key pair, a malformed ID or name, an unreadable file, a contradiction, a typo."""
    reported = issues(_with(document, upstream_tls))

    assert any(issue.startswith(expected) for issue in reported), reported


def test_a_plain_http_upstream_takes_no_upstream_tls(
    document: dict[str, Any], issues: Issues
) -> None:
    """TLS settings on an `http` upstream would be ignored: an issue, not a silent no-op."""
    document["routes"][0]["upstream_tls"] = {"insecure_skip_verify": True}

    assert issues(document) == ["routes[0].upstream_tls: applies to an https upstream only"]


def test_a_client_certificate_not_matching_its_key_is_an_issue(
    document: dict[str, Any], files: dict[str, Path], issues: Issues, tmp_path: Path
) -> None:
    """`idgate check` names the key file when it is not the certificate's."""
    other = CertificateAuthority.create().issue()
    other_key = tmp_path / "other.key"
    other_key.write_bytes(other.key_pem)
    written = {"cert_file": str(files["cert_file"]), "key_file": str(other_key)}

    [issue] = issues(_with(document, written))
    assert issue.startswith("routes[0].upstream_tls.key_file: is not an unencrypted PEM")


def test_skipping_verification_is_warned_about(document: dict[str, Any]) -> None:
    """`insecure_skip_verify` loads, and `idgate check` warns that anyone on the path can read."""
    settings = parse_settings(_with(document, {"insecure_skip_verify": True}), {})

    warnings = [str(warning) for warning in config_warnings(settings)]
    assert any(
        warning.startswith("routes[0].upstream_tls.insecure_skip_verify: route 'app' accepts any")
        for warning in warnings
    ), warnings
