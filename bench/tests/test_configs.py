from dataclasses import replace
from pathlib import Path

from bench import apache, idgate, nginx
from bench.plan import DECISION_CACHE_SECONDS
from bench.tls import write_tls_files
from proxy.config.load import parse_settings
from proxy.config.model import ForwardAuthSettings
from proxy.render.nginx import NginxOptions, render_nginx


def test_idgate_document_is_a_valid_config_with_the_bench_route_last() -> None:
    """idgate's own loader accepts the generated config; 1,000 routes end with the bench route."""
    document = idgate.document(
        port=4180,
        metrics_port=9180,
        issuer="http://127.0.0.1:8000",
        audience="https://api.bench.test",
        upstream="http://127.0.0.1:8000",
        route_count=1000,
    )
    settings = parse_settings(document, {idgate.SECRET_VARIABLE: "x" * 40})
    assert len(settings.routes) == 1000
    assert settings.routes[-1].name == idgate.ROUTE_NAME
    assert settings.workers is None  # one per core, as shipped
    assert settings.log.decisions
    assert settings.metrics.listen is not None


def test_apache_requires_issuer_audience_and_group_together(tmp_path: Path) -> None:
    """All three `Require claim` lines sit in one RequireAll, behind AuthType oauth20."""
    text = apache.config(
        tmp_path,
        port=8080,
        upstream="http://127.0.0.1:8000",
        jwks_uri="https://127.0.0.1:8443/jwks.json",
        ca_bundle=tmp_path / "ca.pem",
        issuer="http://127.0.0.1:8000",
        audience="https://api.bench.test",
        group="engineering",
    )
    block = text.split("<RequireAll>")[1].split("</RequireAll>")[0]
    assert "Require claim iss:http://127.0.0.1:8000" in block
    assert "Require claim aud:https://api.bench.test" in block
    assert "Require claim groups:engineering" in block
    assert "AuthType oauth20" in text
    assert "OIDCOAuthVerifyJwksUri https://127.0.0.1:8443/jwks.json" in text


def test_upstream_serves_jwks_over_tls_and_accepts_uploads(tmp_path: Path) -> None:
    """The upstream config has the TLS JWKS server and a WebDAV PUT location."""
    tls = write_tls_files(tmp_path)
    text = nginx.upstream_config(tmp_path, port=8000, tls_port=8443, www=tmp_path, tls=tls)
    assert "listen 127.0.0.1:8443 ssl;" in text
    assert "dav_methods PUT;" in text
    assert f"location = {nginx.JWKS_PATH}" in text


def test_nginx_idgate_is_rendered_from_the_bench_idgate(tmp_path: Path) -> None:
    """The nginx+idgate targets proxy through the config `idgate render nginx` makes for the
    bench idgate; the cached one keeps decisions, the other asks idgate every time."""
    document = idgate.document(
        port=4180,
        metrics_port=9180,
        issuer="http://127.0.0.1:8000",
        audience="https://api.bench.test",
        upstream="http://127.0.0.1:8000",
        route_count=10,
    )
    settings = parse_settings(document, {idgate.SECRET_VARIABLE: "x" * 40})
    assert settings.forward_auth.decision_cache_seconds == DECISION_CACHE_SECONDS
    cached = NginxOptions(listen="127.0.0.1:8081", cache_path=str(tmp_path / "decisions"))
    text = nginx.gateway_config(tmp_path, site=render_nginx(settings, cached))
    uncached = replace(settings, forward_auth=ForwardAuthSettings(decision_cache_seconds=0))
    assert 'location "/bench/"' in text
    assert "auth_request /oauth2/auth;" in text
    assert "proxy_cache idgate_decisions;" in text
    assert "proxy_cache " not in render_nginx(uncached, cached)
