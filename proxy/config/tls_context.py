"""The `tls` section's files as a server ssl.SSLContext: built by the loader to check them (so
`idgate check` names the file at fault) and again by `idgate serve` to listen with."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from proxy.config.model import TLSSettings


class TLSFileError(Exception):
    """A file of the `tls` section cannot be used; `key` names it (`cert_file`, ...)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def server_context(tls: TLSSettings) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the certificate; with `client_ca_file`, one that asks
    clients for a certificate, lets them connect without one, and refuses one it cannot verify."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 renegotiation would let a client swap its certificate on an open connection.
    context.options |= ssl.OP_NO_RENEGOTIATION
    _require_certificates(tls.cert_file, "cert_file")
    _read(tls.key_file, "key_file")
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_password)
    except ssl.SSLError as error:
        raise TLSFileError(
            "key_file",
            f"is not an unencrypted PEM private key of cert_file's certificate ({_why(error)})",
        ) from None
    if tls.client_ca_file is not None:
        _require_certificates(tls.client_ca_file, "client_ca_file")
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except ssl.SSLError as error:
            raise TLSFileError(
                "client_ca_file", f"is not a PEM CA bundle ({_why(error)})"
            ) from None
        # CERT_OPTIONAL: browsers without a certificate still reach sign-in; a certificate that
        # is presented must verify, or the handshake fails.
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TLSFileError(key, f"cannot be read: {error.strerror or error}") from None


def _require_certificates(path: Path, key: str) -> None:
    try:
        x509.load_pem_x509_certificates(_read(path, key))
    except ValueError:
        raise TLSFileError(
            key, "holds no readable PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def _why(error: ssl.SSLError) -> str:
    return str(error.reason or error.strerror or "unusable")
