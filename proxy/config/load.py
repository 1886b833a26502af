"""`idgate check` and startup: a YAML file (or parsed document) in, a frozen Settings out.

Every problem is collected with its key path before anything is raised, so one run of
`idgate check` shows them all. Parsing has no side effects: the environment is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from proxy.config.addresses import (
    base_url,
    ip_network,
    link_url,
    listen_address,
    listen_host,
    port_number,
    redirect_domain,
)
from proxy.config.issues import ConfigError, ConfigIssue
from proxy.config.model import (
    BROWSER_ISSUER,
    ListenAddress,
    LogSettings,
    MetricsSettings,
    PagesSettings,
    RateLimitSettings,
    Settings,
)
from proxy.config.parse_drain import parse_drain
from proxy.config.parse_forward_auth import parse_forward_auth
from proxy.config.parse_issuers import parse_issuers
from proxy.config.parse_limits import parse_server, parse_upstream
from proxy.config.parse_oidc import parse_oidc
from proxy.config.parse_routes import parse_routes
from proxy.config.parse_session import parse_session
from proxy.config.parse_tls import parse_client_certificates, parse_tls
from proxy.config.parse_tracing import parse_tracing
from proxy.config.reader import Context, Section, given
from proxy.config.values import InvalidValueError, boolean, int_between, text
from proxy.config.yaml_file import read_yaml

__all__ = ["DEFAULT_LISTEN", "ConfigError", "ConfigIssue", "load_settings", "parse_settings"]

#: oauth2-proxy's default: loopback only until the operator says otherwise.
DEFAULT_LISTEN: Final = ListenAddress(host="127.0.0.1", port=4180)

_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def load_settings(path: Path, environ: Mapping[str, str], *, read_secrets: bool = True) -> Settings:
    return parse_settings(read_yaml(path), environ, read_secrets=read_secrets)


def parse_settings(
    data: object, environ: Mapping[str, str], *, read_secrets: bool = True
) -> Settings:
    """Settings from a parsed YAML document; ConfigError listing every problem otherwise. Without
    `read_secrets` every secret is a stand-in and its `${VAR}` need not be set: only for commands
    that use no secret (`idgate explain`), never for serving."""
    context = Context(environ, read_secrets=read_secrets)
    top = Section(context, "", data)
    listen = _listen(top, "listen")
    workers = top.get("workers", int_between(1, None))
    public_url = top.get("public_url", base_url, required=True)
    redirect_domains = top.get_list("allowed_redirect_domains", redirect_domain)
    trusted_proxies = top.get_list("trusted_proxies", ip_network)
    prefix = top.get("prefix", endpoint_prefix)
    public_host = None if public_url is None else urlsplit(public_url).hostname
    oidc = parse_oidc(top.section("oidc"))
    issuers = parse_issuers(top, oidc)
    settings = Settings(
        listen=listen or DEFAULT_LISTEN,
        public_url=public_url or "",
        oidc=oidc,
        session=parse_session(top.section("session"), public_host=public_host),
        routes=parse_routes(
            top, issuer_names=frozenset((BROWSER_ISSUER, *(issuer.name for issuer in issuers)))
        ),
        **given(
            issuers=issuers or None,
            workers=workers,
            allowed_redirect_domains=redirect_domains,
            trusted_proxies=trusted_proxies,
            prefix=prefix,
            server=parse_server(top.section("server")),
            upstream=parse_upstream(top),
            metrics=_metrics(top.section("metrics")),
            log=_log(top.section("log")),
            rate_limits=_rate_limits(top.section("rate_limits")),
            drain=parse_drain(top.section("drain")),
            forward_auth=parse_forward_auth(top.section("forward_auth")),
            pages=_pages(top.section("pages")),
            tls=parse_tls(top),
            tracing=parse_tracing(top),
            client_certificates=parse_client_certificates(
                top, has_trusted_proxies=top.peek("trusted_proxies") is not None
            ),
        ),
    )
    top.close()
    metrics_listen = settings.metrics.listen
    if metrics_listen == settings.listen and settings.listen.port != 0:
        context.report(
            "metrics.listen", "must differ from listen: /metrics is never on the public port"
        )
    if context.issues:
        raise ConfigError(tuple(context.issues))
    return settings


def endpoint_prefix(value: object) -> str:
    prefix = text(value)
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise InvalidValueError("must start with / and not end with /, as in /oauth2")
    if any(segment in ("", ".", "..") for segment in prefix[1:].split("/")):
        raise InvalidValueError("must be a normalised path: no empty, '.' or '..' segments")
    if any(char.isspace() or not char.isprintable() or char in "?#%" for char in prefix):
        raise InvalidValueError("must not contain spaces, control characters, '?', '#' or '%'")
    return prefix


def _listen(section: Section, key: str) -> ListenAddress | None:
    """`host:port`, or a mapping with `host` and `port`."""
    if not isinstance(section.peek(key), Mapping):
        address = section.get(key, listen_address)
        return None if address is None else ListenAddress(host=address[0], port=address[1])
    mapping = section.section(key)
    host = mapping.get("host", listen_host, required=True)
    port = mapping.get("port", port_number, required=True)
    mapping.close()
    return None if host is None or port is None else ListenAddress(host=host, port=port)


def _metrics(section: Section) -> MetricsSettings:
    metrics = MetricsSettings(**given(listen=_listen(section, "listen")))
    section.close()
    return metrics


def _log(section: Section) -> LogSettings:
    log = LogSettings(
        **given(
            level=section.get("level", _log_level),
            decisions=section.get("decisions", boolean),
        )
    )
    section.close()
    return log


def _pages(section: Section) -> PagesSettings:
    pages = PagesSettings(**given(help_url=section.get("help_url", link_url)))
    section.close()
    return pages


def _rate_limits(section: Section) -> RateLimitSettings:
    per_minute = int_between(0, 1_000_000, why=" (requests per minute; 0 turns the limit off)")
    limits = RateLimitSettings(
        **given(
            sign_in_per_minute=section.get("sign_in_per_minute", per_minute),
            callback_per_minute=section.get("callback_per_minute", per_minute),
            failed_auth_per_minute=section.get("failed_auth_per_minute", per_minute),
        )
    )
    section.close()
    return limits


def _log_level(value: object) -> str:
    level = text(value).upper()
    if level not in _LOG_LEVELS:
        raise InvalidValueError(f"must be one of: {', '.join(_LOG_LEVELS)}")
    return level
