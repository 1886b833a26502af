"""A route's `upstream_tls`: how idgate verifies an `https` upstream and what it presents to it."""

from __future__ import annotations

from proxy.config.model import UpstreamTLS
from proxy.config.parse_tls import path_value
from proxy.config.reader import Section, given
from proxy.config.tls_context import TLSFileError, build_client_context
from proxy.config.values import InvalidValueError, boolean, spiffe_id, text


def parse_upstream_tls(route: Section, upstream: str | None) -> UpstreamTLS | None:
    """None when `upstream_tls` is absent. The files are read, as `tls`'s are, so a missing or
    mismatched one is an issue at its key."""
    if route.peek("upstream_tls") is None:
        route.has("upstream_tls")
        return None
    section = route.section("upstream_tls")
    values = {
        "ca_file": section.get("ca_file", path_value),
        "cert_file": section.get("cert_file", path_value),
        "key_file": section.get("key_file", path_value),
        "server_name": section.get("server_name", _server_name),
        "spiffe_id": section.get("spiffe_id", spiffe_id),
        "insecure_skip_verify": section.get("insecure_skip_verify", boolean),
    }
    section.close()
    if upstream is not None and not upstream.startswith("https://"):
        section.issue("applies to an https upstream only")
    if (values["cert_file"] is None) != (values["key_file"] is None):
        missing = "key_file" if values["key_file"] is None else "cert_file"
        section.issue("cert_file and key_file go together", key=missing)
    if values["insecure_skip_verify"]:
        for key in ("ca_file", "spiffe_id", "server_name"):
            if values[key] is not None:
                section.issue(
                    "means nothing with insecure_skip_verify: nothing is verified", key=key
                )
    tls = UpstreamTLS(**given(**values))
    try:
        build_client_context(tls)
    except TLSFileError as error:
        section.issue(str(error), key=error.key)
    return tls


def _server_name(value: object) -> str:
    name = text(value)
    if not name or any(c.isspace() or c in "/:@" for c in name):
        raise InvalidValueError("must be a host name, without scheme, port or path")
    return name.lower()
