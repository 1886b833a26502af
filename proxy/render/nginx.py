"""`idgate render nginx`: nginx as idgate's data plane, its configuration generated from the routes.

nginx proxies every request itself and asks idgate (`auth_request`, `/oauth2/auth`) only for the
decision, which nginx may cache for as long as idgate's answer says (`Cache-Control: max-age`,
never beyond `forward_auth.decision_cache_seconds`). The output goes inside `http {}`.

What makes it safe, line by line in docs/gateways.md:
- The path the tool receives is the path idgate judged, byte for byte: idgate names it in its
  answer (`X-Idgate-Path`, its normalised and re-encoded form) and `proxy_pass` sends that, with
  the query as the client sent it. nginx's own normalisation only picks the location.
- Each location names the routes idgate may choose for it (`X-Idgate-Routes`); idgate refuses
  any other, so nginx never sends a request to one route's tool under another route's policy.
- Identity headers a client sends are cleared in every spelling; `underscores_in_headers off`
  (nginx's default, written out) drops `X_Authenticated_User` and the like before anything reads
  them. idgate's session cookies never reach the tool.
- The decision cache is keyed by all the decision depends on (method, host, URI, the location's
  routes, `Authorization`, `Cookie`, the client-certificate header idgate reads), and nginx never
  caches an answer with `Set-Cookie` (its default, kept: no `proxy_ignore_headers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from proxy.config.model import Settings
from proxy.endpoints.forward_auth import PATH_HEADER, ROUTES_HEADER, UPGRADE_HEADER
from proxy.forward.identity_headers import ASSERTION, EMAIL, GROUPS, ISSUER, USER
from proxy.identity.client_cert import FORWARDED_CLIENT_CERT_HEADERS
from proxy.render.cookie_maps import TOOL_COOKIE, cookie_maps
from proxy.render.plan import Location, Server, Upstream, plan_servers, upstream_blocks
from proxy.server.header_limits import MAX_FIELD_BYTES
from proxy.stages.header_names import FORWARDING_HEADERS, IDENTITY_HEADERS

#: The cache zone's name, shared memory for its keys (1 MB holds about 8000).
CACHE_ZONE: Final = "idgate_decisions"
#: Answers of idgate's own endpoints and the tool's travel with these; the names idgate sets.
_IDENTITY_VARIABLES: Final = {
    USER: "$idgate_user",
    EMAIL: "$idgate_email",
    GROUPS: "$idgate_groups",
    ASSERTION: "$idgate_assertion",
    ISSUER: "$idgate_issuer",
}
_INDENT: Final = "    "


@dataclass(frozen=True, slots=True, kw_only=True)
class NginxOptions:
    listen: str = "80"
    """nginx's `listen` parameter for every server block (`80`, `127.0.0.1:8080`)."""
    server_name: str = "_"
    """`server_name` of the default server, which serves the routes without a `host`."""
    idgate: str = "127.0.0.1:4180"
    """`host:port` where nginx reaches idgate."""
    cache_path: str = "/var/cache/nginx/idgate"
    """`proxy_cache_path` of the decision cache (used when the ceiling is above 0)."""
    upstreams: Mapping[str, str] = field(default_factory=dict)
    """Route name -> upstream URL, for decision-only routes or to replace a route's own."""
    trusted_ca: str = "/etc/ssl/certs/ca-certificates.crt"
    """CA bundle nginx verifies https upstreams against."""
    source: str = ""
    """The config file it was rendered from (named in the header comment)."""


def render_nginx(settings: Settings, options: NginxOptions) -> str:
    """The nginx configuration (for inside `http {}`) that serves `settings`' routes."""
    servers = plan_servers(
        settings.routes, default_name=options.server_name, upstreams=options.upstreams
    )
    renderer = _Renderer(settings, options)
    parts = [
        renderer.preamble(),
        *(renderer.upstream(block) for block in upstream_blocks(servers)),
        *(renderer.server(server) for server in servers),
    ]
    return "\n".join(parts)


def _quote(value: str) -> str:
    """An nginx string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _spellings(names: Iterable[str]) -> list[str]:
    """Each header name as idgate's own tables write it, in `-` and in `_` spelling."""
    return [
        spelled
        for name in sorted(names)
        for spelled in ("-".join(p.capitalize() for p in name.split("-")), name.replace("-", "_"))
    ]


class _Renderer:
    def __init__(self, settings: Settings, options: NginxOptions) -> None:
        self._settings = settings
        self._options = options
        self._prefix = settings.prefix
        self._cache = settings.forward_auth.decision_cache_seconds > 0
        certificates = settings.client_certificates
        self._cert_header = None if certificates is None else certificates.forwarded_header.lower()

    def preamble(self) -> str:
        source = f" from {self._options.source}" if self._options.source else ""
        cache = ""
        if self._cache:
            ceiling = self._settings.forward_auth.decision_cache_seconds
            cache = (
                f"# idgate's decisions, kept as long as each answer says (at most {ceiling} s,\n"
                "# forward_auth.decision_cache_seconds); never one that sets a cookie.\n"
                f"proxy_cache_path {self._options.cache_path} levels=1:2 "
                f"keys_zone={CACHE_ZONE}:10m max_size=256m inactive=10m use_temp_path=off;\n"
            )
        return (
            f"# Generated by `idgate render nginx`{source}: nginx proxies, idgate decides.\n"
            "# Re-render it whenever the routes change; docs/gateways.md explains every line.\n"
            "# Put it inside http {} (for example as /etc/nginx/conf.d/idgate.conf).\n\n"
            "# WebSocket upgrades pass through; other requests keep their upstream connection.\n"
            "map $http_upgrade $idgate_connection {\n"
            '    default upgrade;\n    "" "";\n}\n\n'
            f"{cookie_maps(self._settings.session.cookie_name)}\n{cache}\n"
            "upstream idgate {\n"
            f"    server {self._options.idgate};\n"
            "    keepalive 32;\n}\n"
        )

    def upstream(self, block: Upstream) -> str:
        return f"upstream {block.name} {{\n    server {block.address};\n    keepalive 32;\n}}\n"

    def server(self, server: Server) -> str:
        default = " default_server" if server.default else ""
        lines = [
            "server {",
            f"    listen {self._options.listen}{default};",
            f"    server_name {' '.join(server.names)};",
            "    # Header names with '_' are dropped before anything reads them (nginx's",
            "    # default, written out: X_Authenticated_User never stands in for the real one).",
            "    underscores_in_headers off;",
            "    ignore_invalid_headers on;",
            "    # A Cookie header as long as idgate reads: a session of every chunk it may write.",
            f"    large_client_header_buffers 4 {MAX_FIELD_BYTES // 1024}k;",
            "    # Only picks the location; the path forwarded is the one idgate judged.",
            "    merge_slashes on;",
            "",
            "    # What every route's location inherits (it sets $idgate_routes and",
            "    # $idgate_tool_host itself): idgate's answer, and the request to the tool.",
            *(_INDENT + line for line in self._tool_defaults()),
            "",
        ]
        for location in server.locations:
            lines.extend(self._location(location))
        lines.extend(self._own_endpoints())
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _tool_defaults(self) -> list[str]:
        return [
            f"auth_request_set $idgate_path $upstream_http_{_variable(PATH_HEADER)};",
            *(
                f"auth_request_set {variable} $upstream_http_{_variable(name)};"
                for name, variable in _IDENTITY_VARIABLES.items()
            ),
            "# A session idgate refreshed while judging reaches the browser (never cached).",
            "auth_request_set $idgate_set_cookie $upstream_http_set_cookie;",
            "add_header Set-Cookie $idgate_set_cookie;",
            "auth_request_set $idgate_challenge $upstream_http_www_authenticate;",
            f"error_page 401 = {self._prefix}/sign_in;",
            "# Streams, server-sent events and WebSockets pass through as they come.",
            "proxy_http_version 1.1;",
            "proxy_buffering off;",
            "proxy_request_buffering off;",
            "proxy_set_header Host $idgate_tool_host;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $idgate_connection;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header X-Forwarded-Host $host;",
            f"proxy_set_header Cookie {TOOL_COOKIE};",
            *(f"proxy_set_header {name} {var};" for name, var in _IDENTITY_VARIABLES.items()),
            "# Identity headers from the client, in both spellings, never reach the tool.",
            *(
                f'proxy_set_header {name} "";'
                for name in _spellings(IDENTITY_HEADERS | FORWARDED_CLIENT_CERT_HEADERS)
                if name not in _IDENTITY_VARIABLES
            ),
        ]

    def _location(self, location: Location) -> list[str]:
        exact, path = location.match.startswith("= "), location.match.removeprefix("= ")
        head = f"    location {'= ' if exact else ''}{_quote(path)} {{"
        block = location.upstream
        if block is None:
            body = ["# No route covers these paths: idgate would say 404.", "return 404;"]
        else:
            body = [
                f"set $idgate_routes {_quote(' '.join(location.expects))};",
                f"set $idgate_tool_host {_quote(block.host)};",
                f"auth_request {self._prefix}/auth;",
                f"proxy_pass {block.scheme}://{block.name}{block.prefix}$idgate_path$is_args$args;",
            ]
            if block.scheme == "https":
                body += [
                    "proxy_ssl_server_name on;",
                    f"proxy_ssl_name {block.hostname};",
                    "proxy_ssl_verify on;",
                    f"proxy_ssl_trusted_certificate {self._options.trusted_ca};",
                ]
        return [head, *(_INDENT * 2 + line for line in body), "    }", ""]

    def _to_idgate(self, kept: Mapping[str, str]) -> list[str]:
        """proxy_set_header lines for a request to idgate: `kept` forwarding headers set by
        nginx, every other forwarding and identity header a client could send cleared (idgate
        believes nginx, so it must never pass a client's copy on)."""
        standard = {
            "Host": "$host",
            "X-Forwarded-Host": "$host",
            "X-Forwarded-For": "$proxy_add_x_forwarded_for",
            "X-Forwarded-Proto": "$scheme",
            "Connection": '""',
            "Upgrade": '""',
        } | dict(kept)
        cleared = FORWARDING_HEADERS | IDENTITY_HEADERS | FORWARDED_CLIENT_CERT_HEADERS
        if self._cert_header is not None:
            # The certificate idgate is configured to read: set by whoever terminates TLS in
            # front of nginx (or from $ssl_client_escaped_cert when nginx does).
            cleared -= {self._cert_header}
        lowered = {name.lower() for name in standard}
        return [
            "proxy_pass http://idgate;",
            "proxy_http_version 1.1;",
            *(f"proxy_set_header {name} {value};" for name, value in standard.items()),
            *(
                f'proxy_set_header {name} "";'
                for name in _spellings(cleared)
                if name.lower() not in lowered
            ),
        ]

    def _own_endpoints(self) -> list[str]:
        prefix = self._prefix
        lines = [
            "    # idgate's own endpoints: start, callback, sign_out, userinfo, jwks, ...",
            f"    location {_quote(prefix + '/')} {{",
            *(_INDENT * 2 + line for line in self._to_idgate({})),
            "    }",
            "",
            "    # Where error_page 401 sends a request idgate did not let through: browsers go to",
            "    # sign in and come back; API clients (no text/html in Accept) get idgate's 401.",
            f"    location = {prefix}/sign_in {{",
            "        internal;",
            '        if ($http_accept !~* "text/html") {',
            "            add_header WWW-Authenticate $idgate_challenge always;",
            '            add_header Cache-Control "no-store" always;',
            "            return 401;",
            "        }",
            *(
                _INDENT * 2 + line
                for line in self._to_idgate({"X-Auth-Request-Redirect": "$request_uri"})
            ),
            "    }",
            "",
            "    # The auth_request subrequest: internal, so no client can ask it through nginx.",
            f"    location = {prefix}/auth {{",
            "        internal;",
            "        proxy_pass_request_body off;",
            '        proxy_set_header Content-Length "";',
            *(
                _INDENT * 2 + line
                for line in self._to_idgate(
                    {
                        "X-Original-Method": "$request_method",
                        "X-Original-URI": "$request_uri",
                        "X-Forwarded-Method": "$request_method",
                        "X-Forwarded-Uri": "$request_uri",
                        # With its port: a WebSocket's Origin is compared with it.
                        "X-Forwarded-Host": "$http_host",
                        UPGRADE_HEADER: "$http_upgrade",
                        ROUTES_HEADER: "$idgate_routes",
                    }
                )
            ),
        ]
        if self._cache:
            key = (
                "$request_method $scheme://$host $http_host $request_uri $idgate_routes "
                "$http_upgrade $http_origin $http_authorization $http_cookie"
            )
            if self._cert_header is not None:
                key += f" ${_variable('http-' + self._cert_header)}"
            lines += [
                f"        proxy_cache {CACHE_ZONE};",
                "        # nginx caches only what it buffers (the server level does not).",
                "        proxy_buffering on;",
                "        # All the decision depends on: one caller's answer is never another's.",
                f'        proxy_cache_key "{key}";',
                "        # No proxy_cache_valid: an answer is kept only as long as its",
                "        # Cache-Control says, so 401, 403 and errors (no-store) never are.",
            ]
        lines += ["    }", ""]
        return lines


def _variable(header: str) -> str:
    """`X-Idgate-Path` -> `x_idgate_path`, as in nginx's `$upstream_http_x_idgate_path`."""
    return header.lower().replace("-", "_")
