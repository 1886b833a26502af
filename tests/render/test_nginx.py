"""`idgate render nginx`: the directives that make nginx a safe data plane for idgate's routes."""

from __future__ import annotations

import re
from dataclasses import replace

from proxy.config.model import (
    ClientCertificateSettings,
    ForwardAuthSettings,
    SessionSettings,
    Settings,
)
from proxy.render.nginx import NginxOptions, render_nginx
from proxy.stages.header_names import IDENTITY_HEADERS
from tests.support.settings import make_settings

#: The standard routes include a decision-only one: nginx sends it to the same tool.
DECISION_ONLY = {"check-only": "http://tool.internal:8080"}
OPTIONS = NginxOptions(
    listen="127.0.0.1:8080", idgate="127.0.0.1:4180", cache_path="/tmp/c", upstreams=DECISION_ONLY
)


def settings(**overrides: object) -> Settings:
    return make_settings("https://login.example.com", "http://tool.internal:8080", **overrides)


def block(text: str, head: str) -> str:
    """The body of the first `head {` block in `text` (blocks here do not nest deeper)."""
    start = text.index(head + " {")
    return text[start : text.index("\n    }\n", start)]


def test_every_client_identity_header_is_cleared_in_both_spellings() -> None:
    """Each name in accept's IDENTITY_HEADERS is set empty (or to idgate's value) for the tool,
    as X-Name and as x_name; nginx drops `_` names anyway (underscores_in_headers off)."""
    text = render_nginx(settings(), OPTIONS)
    for name in IDENTITY_HEADERS:
        dashed = "-".join(part.capitalize() for part in name.split("-"))
        assert re.search(rf"proxy_set_header {dashed} (\"\"|\$idgate_\w+);", text), dashed
        assert f'proxy_set_header {name.replace("-", "_")} "";' in text
    assert "underscores_in_headers off;" in text
    assert "merge_slashes on;" in text


def test_the_tool_gets_the_path_idgate_judged_with_the_identity() -> None:
    """proxy_pass sends idgate's X-Idgate-Path and the client's query; identity comes from the
    auth subrequest's answer; browsers without a session are handed to sign-in."""
    text = render_nginx(settings(), OPTIONS)
    admin = block(text, '    location "/admin/"')
    assert 'set $idgate_routes "admin";' in admin
    assert "auth_request /oauth2/auth;" in admin
    assert "proxy_pass http://idgate_upstream_1$idgate_path$is_args$args;" in admin
    assert "auth_request_set $idgate_path $upstream_http_x_idgate_path;" in text
    assert "auth_request_set $idgate_user $upstream_http_x_authenticated_user;" in text
    assert "proxy_set_header X-Authenticated-Assertion $idgate_assertion;" in text
    assert "error_page 401 = /oauth2/sign_in;" in text
    assert "proxy_set_header Cookie $idgate_cookie_for_tool;" in text
    for streaming in ("proxy_buffering off;", "proxy_http_version 1.1;"):
        assert streaming in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $idgate_connection;" in text


def test_the_auth_subrequest_is_internal_and_says_what_to_judge() -> None:
    """The auth location cannot be called from outside, sends no body, and sets every header
    idgate believes from nginx itself."""
    auth = block(render_nginx(settings(), OPTIONS), "    location = /oauth2/auth")
    for line in (
        "internal;",
        "proxy_pass_request_body off;",
        "proxy_pass http://idgate;",
        "proxy_set_header X-Original-URI $request_uri;",
        "proxy_set_header X-Original-Method $request_method;",
        "proxy_set_header X-Forwarded-Uri $request_uri;",
        "proxy_set_header X-Idgate-Routes $idgate_routes;",
        'proxy_set_header X-Original-Url "";',
        'proxy_set_header Forwarded "";',
        'proxy_set_header X-Forwarded-Client-Cert "";',
    ):
        assert line in auth, line


def test_the_decision_cache_is_keyed_by_everything_the_decision_depends_on() -> None:
    """Method, host, URI, the location's routes and the whole credential are in the key; only
    idgate's max-age makes an answer cacheable, and Set-Cookie answers stay uncacheable."""
    text = render_nginx(settings(), OPTIONS)
    auth = block(text, "    location = /oauth2/auth")
    assert "proxy_cache_path /tmp/c " in text
    assert "proxy_cache idgate_decisions;" in auth
    key = re.search(r'proxy_cache_key "([^"]*)";', auth)
    assert key is not None
    for part in (
        "$request_method",
        "$host",
        "$request_uri",
        "$idgate_routes",
        "$http_authorization",
        "$http_cookie",
    ):
        assert part in key.group(1)
    assert not re.search(r"^\s*(proxy_ignore_headers|proxy_cache_valid)\b", text, re.MULTILINE)
    assert "proxy_buffering on;" in auth


def test_a_configured_certificate_header_is_passed_and_keyed() -> None:
    """The client-certificate header idgate reads reaches it and is part of the cache key."""
    text = render_nginx(
        settings(
            client_certificates=ClientCertificateSettings(
                forwarded_header="X-Forwarded-Client-Cert"
            )
        ),
        OPTIONS,
    )
    auth = block(text, "    location = /oauth2/auth")
    assert 'proxy_set_header X-Forwarded-Client-Cert "";' not in auth
    assert "$http_x_forwarded_client_cert" in auth


def test_a_zero_ceiling_renders_no_cache() -> None:
    """With forward_auth.decision_cache_seconds 0 nginx asks idgate every time."""
    text = render_nginx(
        settings(forward_auth=ForwardAuthSettings(decision_cache_seconds=0)), OPTIONS
    )
    assert "proxy_cache" not in text


def test_the_session_cookie_name_is_taken_out_for_the_tool() -> None:
    """A renamed session cookie is the one the Cookie maps remove."""
    base = settings()
    text = render_nginx(replace(base, session=replace(base.session, cookie_name="sso")), OPTIONS)
    assert text.count("(?:__Host-|__Secure-)?sso(?:_[0-9]+|_state_[^;=]*)?") == 2 * 9 + 1
    assert "_idgate(?:" not in text
    assert isinstance(base.session, SessionSettings)


def test_nginx_reads_a_cookie_header_as_long_as_idgate_does() -> None:
    """Every server block takes a header line of 32 KiB, so a session of every chunk idgate may
    write reaches idgate instead of nginx's 400."""
    text = render_nginx(settings(), OPTIONS)
    assert text.count("large_client_header_buffers 4 32k;") == text.count("server {")


def test_an_https_upstream_is_verified() -> None:
    """nginx checks an https tool's certificate and sends it its name (SNI)."""
    text = render_nginx(
        settings(),
        replace(OPTIONS, upstreams=DECISION_ONLY | {"admin": "https://admin.internal/base/"}),
    )
    admin = block(text, '    location "/admin/"')
    assert "proxy_pass https://idgate_upstream_2/base$idgate_path$is_args$args;" in admin
    assert "proxy_ssl_verify on;" in admin
    assert "proxy_ssl_name admin.internal;" in admin
    assert 'set $idgate_tool_host "admin.internal";' in admin
