"""Apache httpd 2.4 + mod_auth_openidc as an OAuth 2.0 resource server, doing idgate's checks.

mod_auth_openidc verifies the JWT's signature with the keys at `OIDCOAuthVerifyJwksUri` (https
only, hence the upstream's TLS port and our own CA in `OIDCCABundlePath`) and its
`exp`; `Require claim` lines (all of them, in `<RequireAll>`) check `iss`, `aud` and the group.
The MPM and keep-alive settings are Debian's shipped defaults (mods-available/mpm_event.conf and
apache2.conf), and an access log is written, as on an installed server.
"""

from __future__ import annotations

import os
import pwd
import secrets
from pathlib import Path
from typing import Final

from bench.servers import Server, Servers

APACHE: Final = "/usr/sbin/apache2"
MODULES: Final = Path("/usr/lib/apache2/modules")
_LOADED: Final = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("auth_openidc_module", "mod_auth_openidc.so"),
)


def _run_as() -> str:
    """Apache started as root must switch to an unprivileged user; otherwise it stays who it is."""
    if os.geteuid() != 0:
        return ""
    for user in ("www-data", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return f"User {user}\nGroup #{entry.pw_gid}\n"
    raise RuntimeError("no unprivileged user (www-data or nobody) for Apache to run as")


def config(
    prefix: Path,
    *,
    port: int,
    upstream: str,
    jwks_uri: str,
    ca_bundle: Path,
    issuer: str,
    audience: str,
    group: str,
) -> str:
    modules = "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in _LOADED)
    return f"""ServerRoot {prefix}
DefaultRuntimeDir {prefix}
PidFile {prefix}/apache.pid
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
{_run_as()}{modules}
ErrorLog {prefix}/error.log
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
CustomLog {prefix}/access.log combined

# Debian 12 defaults
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0

OIDCCryptoPassphrase {secrets.token_urlsafe(32)}
OIDCOAuthVerifyJwksUri {jwks_uri}
OIDCCABundlePath {ca_bundle}
OIDCOAuthRemoteUserClaim sub

ProxyPass /bench {upstream}/bench
<Location /bench>
    AuthType oauth20
    <RequireAll>
        Require claim iss:{issuer}
        Require claim aud:{audience}
        Require claim groups:{group}
    </RequireAll>
</Location>
"""


def start(
    servers: Servers,
    *,
    port: int,
    upstream: str,
    jwks_uri: str,
    ca_bundle: Path,
    issuer: str,
    audience: str,
    group: str,
) -> Server:
    prefix = servers.workdir / "apache"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "apache2.conf"
    text = config(
        prefix,
        port=port,
        upstream=upstream,
        jwks_uri=jwks_uri,
        ca_bundle=ca_bundle,
        issuer=issuer,
        audience=audience,
        group=group,
    )
    conf.write_text(text)
    command = [APACHE, "-f", str(conf), "-D", "FOREGROUND"]
    return servers.start("apache", command, port=port, logs=[prefix / "access.log"])
