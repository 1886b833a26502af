"""The `tls` and `client_certificates` sections: what they become, and every file problem by key."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from proxy.config.load import load_settings, parse_settings
from proxy.config.model import (
    ClientCertificateSettings,
    ForwardedCertificateFormat,
    TLSSettings,
)
from proxy.config.tls_context import server_context
from tests.config.test_load import EXAMPLE, EXAMPLE_ENV
from tests.support.certificates import CertificateAuthority

Issues = Callable[..., list[str]]


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture
def files(tmp_path: Path, ca: CertificateAuthority) -> dict[str, Path]:
    """A server certificate and key, and the CA that issues client certificates, as PEM files."""
    cert_file, key_file = ca.issue(common_name="idgate", ips=("127.0.0.1",), server=True).write(
        tmp_path, "server"
    )
    client_ca_file = tmp_path / "clients-ca.pem"
    client_ca_file.write_bytes(ca.root.pem)
    return {"cert_file": cert_file, "key_file": key_file, "client_ca_file": client_ca_file}


def with_tls(document: dict[str, Any], files: dict[str, Path], **changes: object) -> dict[str, Any]:
    document["tls"] = {key: str(path) for key, path in files.items()} | changes
    return document


def test_tls_files_become_paths(document: dict[str, Any], files: dict[str, Path]) -> None:
    """`tls` with its three files parses into TLSSettings holding their paths."""
    settings = parse_settings(with_tls(document, files), {})

    assert settings.tls == TLSSettings(
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        client_ca_file=files["client_ca_file"],
    )


def test_client_ca_file_is_optional(document: dict[str, Any], files: dict[str, Path]) -> None:
    """Without client_ca_file idgate serves HTTPS and asks for no client certificate."""
    del files["client_ca_file"]

    tls = parse_settings(with_tls(document, files), {}).tls

    assert tls is not None
    assert tls.client_ca_file is None


def test_file_paths_expand_variables(document: dict[str, Any], files: dict[str, Path]) -> None:
    """Paths may come from the environment like any string."""
    with_tls(document, files, cert_file="${CERT}")

    tls = parse_settings(document, {"CERT": str(files["cert_file"])}).tls

    assert tls is not None
    assert tls.cert_file == files["cert_file"]


def test_without_the_sections_there_is_no_tls_and_no_forwarded_certificate(
    document: dict[str, Any],
) -> None:
    """Both sections are optional and off by default."""
    settings = parse_settings(document, {})

    assert settings.tls is None
    assert settings.client_certificates is None


def test_example_config_believes_xfcc_from_its_trusted_proxies() -> None:
    """The example forwards client certificates through Envoy's XFCC; its tls block is a comment."""
    settings = load_settings(EXAMPLE, EXAMPLE_ENV)

    assert settings.client_certificates == ClientCertificateSettings(
        forwarded_header="X-Forwarded-Client-Cert", forwarded_format=ForwardedCertificateFormat.XFCC
    )
    assert settings.tls is None


def test_client_certificates_keys_map_onto_the_model(document: dict[str, Any]) -> None:
    """The header name is kept as written and the format read case-insensitively."""
    document["trusted_proxies"] = ["10.0.0.0/8"]
    document["client_certificates"] = {
        "forwarded_header": "X-SSL-Client-Cert",
        "forwarded_format": "PEM",
    }

    assert parse_settings(document, {}).client_certificates == ClientCertificateSettings(
        forwarded_header="X-SSL-Client-Cert", forwarded_format=ForwardedCertificateFormat.PEM
    )


def test_forwarded_format_defaults_to_xfcc(document: dict[str, Any]) -> None:
    """Envoy's XFCC is the format when none is named."""
    document["trusted_proxies"] = ["10.0.0.0/8"]
    document["client_certificates"] = {"forwarded_header": "X-Forwarded-Client-Cert"}

    settings = parse_settings(document, {}).client_certificates

    assert settings is not None
    assert settings.forwarded_format is ForwardedCertificateFormat.XFCC


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d, f: with_tls(d, f, cert_file=None), "tls.cert_file: required"),
        (lambda d, f: with_tls(d, f, key_file=None), "tls.key_file: required"),
        (
            lambda d, f: with_tls(d, f, cert_file=str(f["cert_file"].parent / "absent.crt")),
            "tls.cert_file: cannot be read: No such file or directory",
        ),
        (
            lambda d, f: with_tls(d, f, key_file=str(f["key_file"].parent)),
            "tls.key_file: cannot be read: Is a directory",
        ),
        (
            lambda d, f: with_tls(d, f, client_ca_file=str(f["cert_file"].parent / "none.pem")),
            "tls.client_ca_file: cannot be read: No such file or directory",
        ),
        (
            lambda d, f: with_tls(d, f, cert_file=str(f["key_file"])),
            "tls.cert_file: holds no readable PEM certificate",
        ),
        (
            lambda d, f: with_tls(d, f, client_ca_file=str(f["key_file"])),
            "tls.client_ca_file: holds no readable PEM certificate",
        ),
        (lambda d, f: with_tls(d, f, cert_file=7), "tls.cert_file: expected a string"),
        (lambda d, f: with_tls(d, f, ca_file="x"), "tls.ca_file: unknown key; did you mean"),
        (lambda d, f: d.update(tls="on"), "tls: expected a mapping"),
        (
            lambda d, f: d.update(client_certificates={"forwarded_header": "X-Client-Cert"}),
            "client_certificates.forwarded_header: needs trusted_proxies",
        ),
        (
            lambda d, f: d.update(client_certificates={"forwarded_format": "pem"}),
            "client_certificates.forwarded_header: required",
        ),
        (
            lambda d, f: d.update(
                trusted_proxies=["10.0.0.0/8"],
                client_certificates={"forwarded_header": "X Client Cert"},
            ),
            "client_certificates.forwarded_header: a header name is an RFC 9110 token",
        ),
        (
            lambda d, f: d.update(
                trusted_proxies=["10.0.0.0/8"],
                client_certificates={"forwarded_header": "Client-Cert", "forwarded_format": "der"},
            ),
            "client_certificates.forwarded_format: must be one of: xfcc, pem, rfc9440",
        ),
        (
            lambda d, f: d.update(client_certificates={"header": "X-Client-Cert"}),
            "client_certificates.header: unknown key",
        ),
    ],
)
def test_each_problem_is_named_by_its_key_path(
    document: dict[str, Any],
    files: dict[str, Path],
    issues: Issues,
    change: Callable[[dict[str, Any], dict[str, Path]], object],
    expected: str,
) -> None:
    """A missing, unreadable or wrong file is reported at the key that names it."""
    change(document, files)

    assert any(issue.startswith(expected) for issue in issues(document)), issues(document)


def test_a_key_of_another_certificate_is_reported_at_key_file(
    document: dict[str, Any], files: dict[str, Path], ca: CertificateAuthority, issues: Issues
) -> None:
    """cert_file and key_file must be one pair."""
    _, other_key = ca.issue(common_name="other", server=True).write(
        files["key_file"].parent, "other"
    )

    reported = issues(with_tls(document, files, key_file=str(other_key)))

    assert len(reported) == 1
    assert reported[0].startswith(
        "tls.key_file: is not an unencrypted PEM private key of cert_file's certificate"
    )


def test_an_encrypted_key_is_reported_without_asking_for_a_passphrase(
    document: dict[str, Any], files: dict[str, Path], ca: CertificateAuthority, issues: Issues
) -> None:
    """OpenSSL would prompt on the terminal for a passphrase; idgate reports the key instead."""
    issued = ca.issue(common_name="idgate", server=True)
    cert_file, key_file = issued.write(files["key_file"].parent, "encrypted")
    key_file.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )

    reported = issues(with_tls(document, files, cert_file=str(cert_file), key_file=str(key_file)))

    assert len(reported) == 1
    assert reported[0].startswith("tls.key_file: is not an unencrypted PEM private key")


def test_server_context_asks_for_optional_client_certificates(files: dict[str, Path]) -> None:
    """With client_ca_file a client may present a certificate, and must not be made to; TLS 1.2+."""
    context = server_context(
        TLSSettings(
            cert_file=files["cert_file"],
            key_file=files["key_file"],
            client_ca_file=files["client_ca_file"],
        )
    )

    assert context.verify_mode is ssl.CERT_OPTIONAL
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_server_context_without_a_client_ca_asks_for_no_certificate(
    files: dict[str, Path],
) -> None:
    """Without client_ca_file no certificate is requested, so none can identify a client."""
    context = server_context(TLSSettings(cert_file=files["cert_file"], key_file=files["key_file"]))

    assert context.verify_mode is ssl.CERT_NONE


def test_a_crl_needs_the_client_ca(
    document: dict[str, Any], files: dict[str, Path], ca: CertificateAuthority, issues: Issues
) -> None:
    """`client_crl_file` without `client_ca_file` is an issue; with it the CRL is read."""
    crl_file = files["cert_file"].parent / "clients.crl"
    crl_file.write_bytes(ca.crl())
    without_ca = {key: path for key, path in files.items() if key != "client_ca_file"}

    assert issues(with_tls(document, without_ca, client_crl_file=str(crl_file))) == [
        "tls.client_crl_file: needs client_ca_file: a CRL revokes certificates of those CAs"
    ]
    settings = parse_settings(with_tls(document, files, client_crl_file=str(crl_file)), {})
    assert settings.tls is not None
    assert settings.tls.client_crl_file == crl_file
    crl_file.write_bytes(b"not a CRL")
    assert issues(with_tls(document, files, client_crl_file=str(crl_file))) == [
        "tls.client_crl_file: holds no readable PEM CRL (-----BEGIN X509 CRL-----)"
    ]
