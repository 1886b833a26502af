"""TLS files as ssl.SSLContexts: idgate's listener (`tls`) and a route's upstream (`upstream_tls`).

Built by the loader to check the files (so `idgate check` names the file at fault), by `idgate
serve` to listen and connect with, and again whenever a file changes on disk
(proxy/certfiles). Each builder reads the files once and refuses what it cannot use: unreadable,
unparsable, a key that is not the certificate's, a certificate already expired.
"""

from __future__ import annotations

import datetime
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from proxy.config.model import TLSSettings, UpstreamTLS

_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class TLSFileError(Exception):
    """A file of the `tls` section cannot be used; `key` names it (`cert_file`, ...)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Validity:
    """The soonest-expiring certificate of one role: `listener`, `client_ca`, `upstream_ca`,
    `upstream_client` (the metric label)."""

    role: str
    not_before: float
    """Unix time."""
    not_after: float


@dataclass(frozen=True, slots=True)
class BuiltContext:
    """A context and the validity of the certificates it holds, by role."""

    context: ssl.SSLContext
    expiries: tuple[Validity, ...]


def server_context(tls: TLSSettings) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the certificate; with `client_ca_file`, one that asks
    clients for a certificate, lets them connect without one, and refuses one it cannot verify."""
    return build_server_context(tls).context


def build_server_context(tls: TLSSettings) -> BuiltContext:
    """server_context, with the expiry of the listener certificate and of the client CAs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 renegotiation would let a client swap its certificate on an open connection.
    context.options |= ssl.OP_NO_RENEGOTIATION
    expiries = [_load_key_pair(context, "listener", tls.cert_file, tls.key_file)]
    if tls.client_ca_file is not None:
        expiries.append(_load_cas(context, "client_ca", tls.client_ca_file, "client_ca_file"))
        if tls.client_crl_file is not None:
            _load_crls(context, tls.client_crl_file, "client_crl_file")
        # CERT_OPTIONAL: browsers without a certificate still reach sign-in; a certificate that
        # is presented must verify, or the handshake fails.
        context.verify_mode = ssl.CERT_OPTIONAL
    return BuiltContext(context=context, expiries=tuple(expiries))


def build_client_context(tls: UpstreamTLS | None) -> BuiltContext:
    """A TLS 1.2+ client context for an upstream: the system trust store or `ca_file`, and the
    client certificate if one is set. The caller checks `spiffe_id` after the handshake."""
    if tls is not None and tls.insecure_skip_verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls is not None and tls.ca_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    expiries: list[Validity] = []
    if tls is None:
        return BuiltContext(context=context, expiries=())
    if tls.ca_file is not None and not tls.insecure_skip_verify:
        expiries.append(_load_cas(context, "upstream_ca", tls.ca_file, "ca_file"))
    if tls.spiffe_id is not None:
        # A SPIFFE SVID names its workload by URI SAN only; the chain is still verified.
        context.check_hostname = False
    if tls.cert_file is not None and tls.key_file is not None:
        expiries.append(_load_key_pair(context, "upstream_client", tls.cert_file, tls.key_file))
    return BuiltContext(context=context, expiries=tuple(expiries))


def _load_key_pair(context: ssl.SSLContext, role: str, cert_file: Path, key_file: Path) -> Validity:
    certificates = _require_certificates(cert_file, "cert_file")
    _read(key_file, "key_file")
    validity = _validity(role, certificates[0])
    if validity.not_after <= _now():
        raise TLSFileError(
            "cert_file", f"holds a certificate that expired at {_iso(validity.not_after)}"
        )
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as error:
        raise TLSFileError(
            "key_file",
            f"is not an unencrypted PEM private key of cert_file's certificate ({_why(error)})",
        ) from None
    return validity


def _load_cas(context: ssl.SSLContext, role: str, path: Path, key: str) -> Validity:
    data = _read(path, key)
    certificates = _require_certificates(path, key, data)
    try:
        context.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except ssl.SSLError as error:
        raise TLSFileError(key, f"is not a PEM CA bundle ({_why(error)})") from None
    return min(
        (_validity(role, certificate) for certificate in certificates),
        key=lambda validity: validity.not_after,
    )


def _load_crls(context: ssl.SSLContext, path: Path, key: str) -> None:
    data = _read(path, key)
    blocks = _CRL_BLOCK.findall(data)
    try:
        crls = [x509.load_pem_x509_crl(block) for block in blocks]
    except ValueError:
        crls = []
    if not crls:
        raise TLSFileError(key, "holds no readable PEM CRL (-----BEGIN X509 CRL-----)")
    now = _now()
    for crl in crls:
        update = crl.next_update_utc
        if update is not None and update.timestamp() <= now:
            # OpenSSL fails every handshake against a stale CRL; refusing it keeps the old one.
            raise TLSFileError(key, f"holds a CRL past its nextUpdate ({_iso(update.timestamp())})")
    try:
        # By path: `cadata` takes certificates only, OpenSSL's file lookup takes CRLs too.
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as error:
        raise TLSFileError(key, f"is not a PEM CRL bundle ({_why(error)})") from None
    # Leaf only: an intermediate CA's revocation is the CA bundle's business (remove it there).
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TLSFileError(key, f"cannot be read: {error.strerror or error}") from None


def _require_certificates(
    path: Path, key: str, data: bytes | None = None
) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(_read(path, key) if data is None else data)
    except ValueError:
        raise TLSFileError(
            key, "holds no readable PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None


def _validity(role: str, certificate: x509.Certificate) -> Validity:
    return Validity(
        role=role,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
    )


def _now() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds")


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def _why(error: ssl.SSLError) -> str:
    return str(error.reason or error.strerror or "unusable")
