"""nginx: the upstream every proxy forwards to, nginx as a plain reverse proxy, and nginx as
idgate's data plane (configured by `idgate render nginx`).

The upstream answers `/bench/...` with a small fixed body, serves the issuer's JWKS (so idgate's
`oidc.jwks_uri` and Apache's `OIDCOAuthVerifyJwksUri` read the same keys), a large file for the
download test (and the JWKS again over TLS, for
Apache), and accepts PUT uploads (WebDAV) that it reads to the end before answering.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from bench.servers import Server, Servers
from bench.tls import TlsFiles
from proxy.config.model import Settings
from proxy.render.nginx import NginxOptions, render_nginx

NGINX: Final = "/usr/sbin/nginx"
BODY: Final = "idgate benchmark upstream: a small body, as an API answer or a page fragment.\n"
BENCH_PATH: Final = "/bench/item"
DOWNLOAD_PATH: Final = "/bench/files/blob"
UPLOAD_PATH: Final = "/bench/upload/blob"
IDENTITY_PATH: Final = "/bench/identity"
"""Answers with the X-Authenticated-Assertion it received (the verification step reads it)."""
JWKS_PATH: Final = "/jwks.json"
_TEMP_DIRS: Final = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _writable_dir(path: Path) -> Path:
    """A directory nginx's unprivileged workers may write into."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def _common(prefix: Path, *, workers: str) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {_writable_dir(prefix / 'temp' / kind)};" for kind in _TEMP_DIRS
    )
    return f"""daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
{temp}
"""


def upstream_config(prefix: Path, *, port: int, tls_port: int, www: Path, tls: TlsFiles) -> str:
    body = json.dumps(BODY)
    return (
        _common(prefix, workers="auto")
        + f"""    access_log off;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location = {JWKS_PATH} {{ root {www}; default_type application/json; }}
        location /bench/files/ {{ root {www}; }}
        location /bench/upload/ {{
            root {_writable_dir(prefix / "uploads")};
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }}
        location = {IDENTITY_PATH} {{
            default_type text/plain;
            return 200 "$http_x_authenticated_assertion\n";
        }}
        location /bench {{ default_type text/plain; return 200 {body}; }}
    }}
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {tls.certificate};
        ssl_certificate_key {tls.key};
        location = {JWKS_PATH} {{ root {www}; default_type application/json; }}
    }}
}}
"""
    )


def proxy_config(prefix: Path, *, port: int, upstream_port: int) -> str:
    return (
        _common(prefix, workers="auto")
        + f"""    access_log {prefix}/access.log;
    upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""
    )


def gateway_config(prefix: Path, *, site: str) -> str:
    """nginx around a site `idgate render nginx` generated (its decision cache under `prefix`)."""
    return (
        _common(prefix, workers="auto")
        + f"""    access_log {prefix}/access.log;
{site}
}}
"""
    )


def start_gateway(
    servers: Servers, *, name: str, port: int, settings: Settings, idgate: str
) -> Server:
    """nginx as idgate's data plane: the config `idgate render nginx` makes for `settings`,
    listening on `port` and asking idgate at `idgate` (`host:port`)."""
    prefix = servers.workdir / name
    prefix.mkdir(exist_ok=True)
    options = NginxOptions(
        listen=f"127.0.0.1:{port}",
        idgate=idgate,
        cache_path=str(_writable_dir(prefix / "decisions")),
    )
    config = gateway_config(prefix, site=render_nginx(settings, options))
    return _start(servers, name, config, port=port)


def _start(servers: Servers, name: str, config: str, *, port: int) -> Server:
    prefix = servers.workdir / name
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    command = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    return servers.start(name, command, port=port, logs=[prefix / "access.log"])


def start_upstream(
    servers: Servers,
    *,
    port: int,
    tls_port: int,
    tls: TlsFiles,
    jwks: dict[str, Any],
    download_bytes: int,
) -> Server:
    """The upstream; `download_bytes` sizes the file behind DOWNLOAD_PATH (sparse, no disk)."""
    www = servers.workdir / "www"
    (www / "bench" / "files").mkdir(parents=True, exist_ok=True)
    (www / JWKS_PATH.lstrip("/")).write_text(json.dumps(jwks))
    with (www / DOWNLOAD_PATH.lstrip("/")).open("wb") as blob:
        blob.truncate(download_bytes)
    prefix = servers.workdir / "upstream"
    prefix.mkdir(exist_ok=True)
    config = upstream_config(prefix, port=port, tls_port=tls_port, www=www, tls=tls)
    return _start(servers, "upstream", config, port=port)


def uploaded_file(servers: Servers) -> Path:
    """Where the upstream stores what a PUT to UPLOAD_PATH sent."""
    return servers.workdir / "upstream" / "uploads" / UPLOAD_PATH.lstrip("/")


def start_proxy(servers: Servers, *, port: int, upstream_port: int) -> Server:
    prefix = servers.workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    config = proxy_config(prefix, port=port, upstream_port=upstream_port)
    return _start(servers, "nginx", config, port=port)
