"""The `tls` and `client_certificates` sections: HTTPS on idgate's own listener, and client
certificates, verified by that listener or by a trusted proxy in front of idgate."""

from __future__ import annotations

from pathlib import Path

from proxy.config.model import (
    ClientCertificateSettings,
    ForwardedCertificateFormat,
    TLSSettings,
)
from proxy.config.reader import Section, given
from proxy.config.tls_context import TLSFileError, server_context
from proxy.config.values import choice, duration, header_name, text


def parse_tls(top: Section) -> TLSSettings | None:
    """None when `tls` is absent; the files are read, so a missing or mismatched one is an issue
    at its key (`tls.cert_file`) rather than a failure at startup."""
    section = top.section("tls")
    if top.peek("tls") is None:
        return None
    cert_file = section.get("cert_file", _path, required=True)
    key_file = section.get("key_file", _path, required=True)
    client_ca_file = section.get("client_ca_file", _path)
    client_crl_file = section.get("client_crl_file", path_value)
    poll_interval = section.get("poll_interval", duration)
    section.close()
    if client_crl_file is not None and client_ca_file is None:
        section.issue(
            "needs client_ca_file: a CRL revokes certificates of those CAs",
            key="client_crl_file",
        )
    if cert_file is None or key_file is None:
        return None
    tls = TLSSettings(
        cert_file=cert_file,
        key_file=key_file,
        **given(
            client_ca_file=client_ca_file,
            client_crl_file=client_crl_file,
            poll_interval_seconds=poll_interval,
        ),
    )
    try:
        server_context(tls)
    except TLSFileError as error:
        section.issue(str(error), key=error.key)
    return tls


def parse_client_certificates(
    top: Section, *, has_trusted_proxies: bool
) -> ClientCertificateSettings | None:
    """None when `client_certificates` is absent."""
    section = top.section("client_certificates")
    if top.peek("client_certificates") is None:
        return None
    header = section.get("forwarded_header", header_name, required=True)
    forwarded_format = section.get("forwarded_format", choice(ForwardedCertificateFormat))
    section.close()
    if header is not None and not has_trusted_proxies:
        section.issue(
            "needs trusted_proxies: the header is believed only from the proxies listed there",
            key="forwarded_header",
        )
    if header is None:
        return None
    return ClientCertificateSettings(
        forwarded_header=header, **given(forwarded_format=forwarded_format)
    )


def path_value(value: object) -> Path:
    return Path(text(value))


_path = path_value
