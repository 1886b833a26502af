"""The parsed configuration: frozen values only, no I/O, no defaults hidden elsewhere.

`config/load.py` turns YAML into these; everything else reads them. A field's docstring is the
user-facing meaning of its YAML key (same name unless said otherwise).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 9728 3: "the well-known URI string used is /.well-known/oauth-protected-resource".
PROTECTED_RESOURCE_WELL_KNOWN: Final = "/.well-known/oauth-protected-resource"

#: RFC 7518 asymmetric algorithms. HMAC (`HS*`) is never accepted on provider tokens: its key would
#: be the provider's public key, and `none` is not a signature at all.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class Secret:
    """A string whose repr and str never show it, so it cannot leak through a log or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OIDCSettings:
    issuer: str
    """Exact `iss` of the provider; discovery: `{issuer}/.well-known/openid-configuration`."""
    client_id: str
    """This proxy's client at the provider (browser sign-in)."""
    client_secret: Secret | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    prompt: tuple[Prompt, ...] = ()
    """`prompt` values sent at sign-in; OIDC Core 11 has some providers issue a refresh token for
    `offline_access` only with `consent`."""
    authorization_params: tuple[tuple[str, str], ...] = ()
    """Extra parameters of every authorization request (Google `hd`, `login_hint`, Entra
    `domain_hint`, `acr_values`); never one idgate sets itself (parse_oidc.py refuses those).
    A route's `step_up.acr_values` replaces `acr_values` on that route's sign-in."""
    audiences: tuple[str, ...] = ()
    """The API audiences accepted on bearer tokens (a token's `aud` must name one). Empty: no
    bearer token is accepted. `client_id` is never one of them unless `accept_client_id_audience`
    says so: it is the audience of every ID token idgate receives (OIDC Core 2)."""
    accept_client_id_audience: bool = False
    """Accept bearer tokens whose `aud` names `client_id`, ID tokens included (oauth2-proxy's
    `--skip-jwt-bearer-tokens` habit): a leaked ID token then opens routes. Off by default."""
    require_access_token_type: bool = False
    """Require the JOSE header `typ: at+jwt` (RFC 9068 2.1) on bearer tokens, for providers that
    mark their access tokens, so nothing else they sign passes as one."""
    user_claim: tuple[str, ...] = ("sub",)
    """Claims naming the user, tried in order (one name or a list); see `ClaimMapping`."""
    email_claim: tuple[str, ...] = ("email",)
    groups_claim: tuple[str, ...] = ("groups",)
    jwks_uri: str | None = None
    """Set for providers without discovery; then discovery is not fetched for bearer checks."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    """Allowlist for the token header's `alg`; only asymmetric algorithms are valid here."""
    leeway_seconds: int = 30
    """Clock skew tolerated on `exp`, `nbf` and `iat`; at most 60."""
    jwks_refresh_seconds: float = 300.0
    """How often keys are re-fetched in the background."""
    jwks_min_refresh_seconds: float = 10.0
    """An unknown `kid` refreshes keys at most this often (a flood of forged kids costs nothing)."""
    http_timeout_seconds: float = 5.0
    """Timeout for every call to the provider."""

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        """The `aud` values a bearer token may name: `audiences`, and `client_id` when opted in."""
        if self.accept_client_id_audience and self.client_id not in self.audiences:
            return (*self.audiences, self.client_id)
        return self.audiences

    @property
    def claim_mapping(self) -> ClaimMapping:
        return ClaimMapping(user=self.user_claim, email=self.email_claim, groups=self.groups_claim)

    @property
    def as_issuer(self) -> IssuerSettings:
        """This provider as the token issuer named `oidc` (empty `audiences`: sessions only)."""
        return IssuerSettings(
            name=BROWSER_ISSUER,
            issuer=self.issuer,
            jwks_uri=self.jwks_uri,
            audiences=self.accepted_audiences,
            algorithms=self.algorithms,
            claims=self.claim_mapping,
            require_access_token_type=self.require_access_token_type,
            leeway_seconds=self.leeway_seconds,
            jwks_refresh_seconds=self.jwks_refresh_seconds,
            jwks_min_refresh_seconds=self.jwks_min_refresh_seconds,
            http_timeout_seconds=self.http_timeout_seconds,
        )


#: The name of the issuer the `oidc` block describes (browser sign-in); no `issuers` entry takes it.
BROWSER_ISSUER: Final = "oidc"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimMapping:
    """YAML `claims` of an issuer: which claims name the user, email and groups.

    Each is an ordered list of claim names, the first one present wins (`[preferred_username,
    sub]`). A name starting with `/` is an RFC 6901 JSON Pointer (`/https:~1~1example.com~1roles`,
    for a claim whose name holds `.` or `/`); any other name is looked up whole first, then as a
    dotted path into nested objects (`realm_access.roles`). Groups may be a list of strings or one
    space-separated string."""

    user: tuple[str, ...] = ("sub",)
    email: tuple[str, ...] = ("email",)
    groups: tuple[str, ...] = ("groups",)


class IssuerKind(StrEnum):
    """What signs an issuer's tokens; each kind adds its own checks (proxy/identity/issuers/)."""

    OIDC = "oidc"
    KUBERNETES = "kubernetes"
    """A cluster's API server: service-account tokens (its `kubernetes` block)."""
    SPIFFE = "spiffe"
    """JWT-SVIDs of one SPIFFE trust domain (its `spiffe` block)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerSettings:
    """One entry of YAML `issuers`: a source of bearer tokens, told apart from the others by the
    exact `iss` of its tokens (the `oidc` block is the issuer named `oidc`)."""

    name: str
    """Unique, `[a-z0-9][a-z0-9-]*`: the decision log, metric label, `X-Authenticated-Issuer` and
    a route's `issuers` name it."""
    kind: IssuerKind = IssuerKind.OIDC
    issuer: str | None = None
    """Exact `iss` of its tokens; a kind that learns it from discovery may leave it out."""
    discovery: str | None = None
    """URL of its discovery document; default `{issuer}/.well-known/openid-configuration`."""
    jwks_uri: str | None = None
    """Its keys, without discovery."""
    ca_file: Path | None = None
    """PEM CAs that verify the TLS certificates of its discovery and keys (a private PKI),
    instead of the system trust store."""
    audiences: tuple[str, ...] = ()
    """A token's `aud` must name one; never empty for an `issuers` entry."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    claims: ClaimMapping = field(default_factory=ClaimMapping)
    max_token_lifetime_seconds: int | None = None
    """YAML `max_token_lifetime`: refuse a token whose `exp - iat` is longer (then a token
    without `iat` is refused too); None: any lifetime."""
    require_access_token_type: bool = False
    """Require the JOSE header `typ: at+jwt` (RFC 9068 2.1)."""
    leeway_seconds: int = 30
    """YAML `leeway`: clock skew tolerated on `exp`, `nbf` and `iat`; at most 60."""
    jwks_refresh_seconds: float = 300.0
    """YAML `jwks_refresh_interval`."""
    jwks_min_refresh_seconds: float = 10.0
    """YAML `jwks_min_refresh_interval`."""
    http_timeout_seconds: float = 5.0
    """YAML `http_timeout`: for every call to the issuer."""
    introspection: IntrospectionSettings | None = None
    """Opaque (non-JWT) bearer tokens are checked at its RFC 7662 endpoint; None: only JWTs."""
    kubernetes: KubernetesSettings | None = None
    """Set for kind `kubernetes` (its `kubernetes` block, defaults and all), else None."""
    spiffe: SpiffeSettings | None = None
    """Set for kind `spiffe`, else None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IntrospectionSettings:
    """An issuer's `introspection`: opaque (non-JWT) bearer tokens are checked at its RFC 7662
    endpoint, idgate authenticating as `client_id` with `client_secret_basic`."""

    client_id: str
    client_secret: Secret
    endpoint: str | None = None
    """None: the provider's discovery `introspection_endpoint`."""
    cache_seconds: int = 60
    """How long an active answer is reused, never beyond the token's `exp`; at
    most 300. A token revoked at the provider still opens routes for up to this long."""
    require_audience: bool = True
    """An active answer must carry an `aud` naming one of the issuer's audiences. `false`
    accepts answers without `aud` (django-oauth-toolkit sends none): then any active token of the
    provider is accepted, whichever API it was issued for."""


class Prompt(StrEnum):
    """OIDC Core 3.1.2.1 `prompt` values."""

    NONE = "none"
    LOGIN = "login"
    CONSENT = "consent"
    SELECT_ACCOUNT = "select_account"


#: Where the kubelet mounts a pod's service account (Kubernetes, "Accessing the Kubernetes API
#: from a Pod").
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesSettings:
    """An issuer's `kubernetes` block (kind `kubernetes`): the cluster's API server, reached the
    way a pod reaches it; in a pod every default fits."""

    api_server: str
    """`https://host:port`; default `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`,
    which Kubernetes sets in every pod. Discovery and keys come from here, and the pod's token is
    sent to this origin only."""
    ca_file: Path = SERVICE_ACCOUNT_DIR / "ca.crt"
    """PEM CAs that verify the API server (the cluster CA)."""
    token_file: Path = SERVICE_ACCOUNT_DIR / "token"
    """The pod's own service-account token, read again for every call: the kubelet rotates it."""
    token_review: bool = False
    """Ask the API server (a TokenReview) whether each new token is still valid: refuses a token
    of a deleted pod or service account before its `exp`, at one API call per new token."""
    token_review_cache_seconds: float = 10.0
    """YAML `token_review_cache`: how long a TokenReview answer is reused (never beyond the
    token's `exp`); at most 5 minutes."""
    token_review_cache_size: int = 10_000
    """Answers kept at most; the least recently used goes first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpiffeSettings:
    """An issuer's `spiffe` block (kind `spiffe`): JWT-SVIDs of one trust domain."""

    trust_domain: str
    """`example.org`: a token's `sub` must be a SPIFFE ID in it (`spiffe://example.org/...`)."""


class SessionStoreKind(StrEnum):
    COOKIE = "cookie"
    REDIS = "redis"


class RedisTopology(StrEnum):
    SERVER = "url"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisNode:
    host: str
    port: int = 6379

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisTLSSettings:
    """YAML `session.redis.tls`: certificates for TLS to Redis (and to its sentinels)."""

    ca_file: Path | None = None
    """Trusted CAs for the server certificates; the system's when absent."""
    cert_file: Path | None = None
    """A client certificate, when Redis requires one (`tls-auth-clients yes`)."""
    key_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSentinelSettings:
    master: str
    """The name the sentinels monitor the primary by (`sentinel monitor <master> ...`)."""
    addresses: tuple[RedisNode, ...]
    username: str | None = None
    """ACL user for the sentinels themselves (their own `requirepass`/ACL, not the data nodes')."""
    password: Secret | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    """YAML `session.redis` (or the older `session.redis_url`): exactly one topology."""

    url: Secret | None = None
    """One server: `redis://`, `rediss://` (TLS) or `unix://`."""
    sentinel: RedisSentinelSettings | None = None
    cluster_nodes: tuple[RedisNode, ...] = ()
    """YAML `cluster.nodes`: seed nodes; the rest of the cluster is discovered from them."""
    username: str | None = None
    """ACL user on the data nodes (with `url`: used when the URL names none)."""
    password: Secret | None = None
    tls: RedisTLSSettings | None = None
    """TLS for `sentinel` and `cluster` (present, even empty, turns it on); with `url`, TLS is
    `rediss://` and this block only adds certificates."""

    @property
    def topology(self) -> RedisTopology:
        if self.sentinel is not None:
            return RedisTopology.SENTINEL
        if self.cluster_nodes:
            return RedisTopology.CLUSTER
        return RedisTopology.SERVER


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    secrets: tuple[Secret, ...]
    """YAML `secret`: one string or a list, newest first. The newest seals; all may open."""
    store: SessionStoreKind = SessionStoreKind.COOKIE
    redis: RedisSettings | None = None
    """YAML `redis` (or `redis_url`, the same as `redis: {url: ...}`); set when store is redis."""
    lifetime_seconds: int = 12 * 3600
    idle_timeout_seconds: int = 3600
    refresh_seconds: float = 300.0
    """YAML `refresh_interval`: how often a session's tokens and groups are re-read."""
    cookie_name: str = "_idgate"
    cookie_domain: str | None = None


class PolicyMode(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One `allow` or `deny` block: it matches when any one of its conditions matches (`all`
    is the one condition that asks for several things at once)."""

    authenticated: bool = False
    """`authenticated: true` matches any valid identity (allow blocks only)."""
    groups: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    """Exact addresses, compared case-insensitively."""
    domains: frozenset[str] = frozenset()
    """Email domains, compared exactly in lower case: `example.com` is not `evil-example.com`."""
    users: frozenset[str] = frozenset()
    claims: tuple[tuple[str, frozenset[str]], ...] = ()
    """(dotted claim path, accepted values): matches when the claim or any element of it is one."""
    spiffe_ids: frozenset[str] = frozenset()
    service_accounts: frozenset[str] = frozenset()
    """Kubernetes service accounts as `<namespace>/<name>`, or `<namespace>/*` for any of the
    namespace's; only an identity from an issuer of kind `kubernetes` has one."""
    certificate_fingerprints: frozenset[str] = frozenset()
    """SHA-256 of the client certificate (DER), lower-case hex without colons."""
    certificate_spki_pins: frozenset[str] = frozenset()
    """SHA-256 of the client certificate's SubjectPublicKeyInfo, base64: survives renewal with
    the same key."""
    certificate_dns_names: frozenset[str] = frozenset()
    """dNSName SANs of the client certificate, lower case."""
    certificate_emails: frozenset[str] = frozenset()
    """rfc822Name SANs of the client certificate, compared case-insensitively."""
    certificate_issuers: tuple[bytes, ...] = ()
    """DER certificates of CAs: the client certificate must be signed directly by one of them
    (a device CA makes "managed devices" a condition)."""
    all_of: tuple[Rule, ...] = ()
    """`all`: blocks that must every one match, each in its own way (any of its conditions):
    `all: [{groups: [sre]}, {domains: [example.com]}]` is "group sre and an example.com address".
    As a condition of this block it is met when every one of them is."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    public: bool = False
    allow: Rule | None = None
    deny: Rule | None = None
    mode: PolicyMode = PolicyMode.ENFORCE


@dataclass(frozen=True, slots=True, kw_only=True)
class StepUp:
    """A route's `step_up`: how recent and how strong the sign-in behind a request must be."""

    max_age_seconds: int | None = None
    """The sign-in (`auth_time`) must be at most this old; sent to the provider as `max_age`."""
    acr_values: tuple[str, ...] = ()
    """Sent to the provider as `acr_values` (in this order of preference); the returned `acr`
    must be one of them."""
    amr: frozenset[str] = frozenset()
    """The returned `amr` must contain at least one of these methods."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceMetadata:
    """A route's `resource_metadata`: the RFC 9728 document idgate publishes about the API behind
    the route, so OAuth clients find which issuers and scopes it accepts."""

    resource: str
    """The protected resource's identifier (RFC 9728 1.2): an https URL without query or
    fragment, as clients call the API. The document is served at its host under
    `/.well-known/oauth-protected-resource` followed by its path (RFC 9728 3.1)."""
    scopes_supported: tuple[str, ...] = ()
    resource_name: str | None = None
    """Human-readable name of the API, for clients to show."""
    resource_documentation: str | None = None
    """URL of the API's documentation for developers."""

    @property
    def well_known_path(self) -> str:
        """RFC 9728 3.1: the well-known string inserted "between the host component and the path
        and/or query components, if any"."""
        return PROTECTED_RESOURCE_WELL_KNOWN + urlsplit(self.resource).path

    @property
    def url(self) -> str:
        """Where the document is served: the `resource_metadata` of this route's 401 answers."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.well_known_path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    name: str
    """Unique; used as metric label, assertion audience and log field."""
    path: str = "/"
    """Prefix of the normalised path, on a segment boundary: `/api` has `/api/x`, not `/apix`."""
    host: str | None = None
    """Exact host (lower case, no port) or `*.example.com` for any subdomain; None matches any."""
    methods: frozenset[str] | None = None
    """Upper-case methods; None matches all."""
    upstream: str | None = None
    """`http(s)://host:port[/base]`; None for decision-only routes used through `/oauth2/auth`."""
    allowed_origins: frozenset[str] = frozenset()
    """Origins accepted on WebSocket upgrades, as `scheme://host[:port]`."""
    pass_access_token: bool = False
    """Forward the client's `Authorization` header upstream (stripped otherwise)."""
    pass_session_access_token: bool = False
    """Send a browser session's access token (the refreshed one once refreshed) upstream as
    `X-Forwarded-Access-Token`; never for a bearer-token or certificate request."""
    allow_cors_preflight: bool = False
    """Let a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`, and no
    `Authorization` or `Cookie`) through to the upstream unauthenticated, for it to answer."""
    preserve_host: bool = False
    """Send the client's `Host` (as addressed, or a trusted `X-Forwarded-Host`) upstream instead
    of the upstream URL's."""
    claim_headers: tuple[tuple[str, str], ...] = ()
    """YAML `{Header-Name: claim.path}`: (header name, dotted claim path) pairs sent upstream with
    the caller's claim value; a client's copy of these headers is always removed."""
    timeout_seconds: float = 30.0
    """Upstream timeout: no response headers within this time gives 504."""
    upstream_tls: UpstreamTLS | None = None
    """How an `https` upstream is verified and which client certificate idgate presents to it;
    None: verified against the system trust store, no client certificate."""
    policy: Policy
    step_up: StepUp | None = None
    """A recent or stronger sign-in this route requires; None for any valid identity."""
    issuers: frozenset[str] | None = None
    """Names of the issuers whose tokens (and, for `oidc`, sessions) this route accepts; None:
    all of them. Client certificates are no issuer's and are not limited by it."""
    resource_metadata: ResourceMetadata | None = None
    """The RFC 9728 document published for the API behind this route; None: none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamTLS:
    """A route's `upstream_tls`. Every file is re-read when it changes on disk (new connections
    use it; open ones go on), and an unusable new file is refused, the old material kept."""

    ca_file: Path | None = None
    """PEM CA certificates that verify the upstream, instead of the system trust store."""
    cert_file: Path | None = None
    """PEM client certificate (and intermediates) idgate presents to the upstream (mTLS)."""
    key_file: Path | None = None
    """PEM private key of `cert_file`, unencrypted."""
    server_name: str | None = None
    """SNI and the name the upstream's certificate must carry, instead of the URL's host."""
    spiffe_id: str | None = None
    """The upstream's certificate must carry exactly this URI SAN (`spiffe://...`), checked after
    the handshake; then the host name is not checked (SVIDs carry none), the chain still is."""
    insecure_skip_verify: bool = False
    """Accept any certificate from the upstream: no chain, no name check. Never in production."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSSettings:
    """YAML `tls`: idgate itself serves HTTPS on `listen`. Paths are as written (a relative one
    from the working directory); the files are read at startup."""

    cert_file: Path
    """PEM server certificate, followed by any intermediates the clients need."""
    key_file: Path
    """PEM private key of that certificate, unencrypted."""
    client_ca_file: Path | None = None
    """PEM CA certificates; when set, clients may present a certificate, verified against them."""
    client_crl_file: Path | None = None
    """PEM certificate revocation lists of `client_ca_file`'s CAs: a revoked client certificate
    fails the handshake. Every CA in `client_ca_file` then needs a CRL here (OpenSSL refuses a
    certificate whose issuer's CRL is missing)."""
    poll_interval_seconds: float = 5.0
    """YAML `poll_interval`: how often the files of `tls` and of every route's `upstream_tls` are
    checked for changes (a Kubernetes Secret update swaps them through a symlink)."""


class ForwardedCertificateFormat(StrEnum):
    XFCC = "xfcc"
    """Envoy/Istio `X-Forwarded-Client-Cert`: `Cert="<url-encoded PEM>"` or `URI=spiffe://...`."""
    PEM = "pem"
    """A url-encoded PEM certificate (nginx `$ssl_client_escaped_cert`), with or without its
    BEGIN/END lines (Traefik `passTLSClientCert`)."""
    RFC9440 = "rfc9440"
    """RFC 9440 `Client-Cert`: the DER certificate as a structured-field byte sequence `:...:`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCertificateSettings:
    """YAML `client_certificates`: believe a client certificate a trusted proxy verified."""

    forwarded_header: str
    """The header a proxy in `trusted_proxies` puts the client certificate in; from any other
    peer it is ignored."""
    forwarded_format: ForwardedCertificateFormat = ForwardedCertificateFormat.XFCC


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """YAML `server`: what a client connection may cost. Defaults follow nginx's.

    `request_head_timeout`, `keepalive_timeout` and `max_connections` shape the listener and
    change at the next restart; the others are read per request and change on reload."""

    request_head_timeout_seconds: float = 60.0
    """YAML `request_head_timeout`: a new connection's first request head must be complete this
    long after the connection opened (nginx `client_header_timeout`). Not restarted per byte, so a
    client dribbling its head is cut all the same."""
    keepalive_timeout_seconds: float = 75.0
    """YAML `keepalive_timeout`: after a response, the next request head must be complete within
    this time or the connection is closed (nginx `keepalive_timeout`)."""
    body_idle_timeout_seconds: float = 60.0
    """YAML `body_idle_timeout`: a request body that sends no byte for this long is cut with 408
    (nginx `client_body_timeout`)."""
    max_connections: int = 4096
    """Open client connections per worker; one more is closed at once, unanswered, and counted in
    `idgate_connections_refused_total` (nginx `worker_connections`)."""
    max_request_head_bytes: int = 64 * 1024
    """Request line plus all header fields; more gets 431 before anything is forwarded (Envoy's
    `max_request_headers_kb` is 60 KiB)."""
    tunnel_recheck_seconds: float = 5.0
    """YAML `tunnel_recheck_interval`: how often an open WebSocket tunnel's identity is checked
    again (revocations, and the route's policy under the configuration current by then)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    """YAML `upstream`: what idgate accepts from every route's upstream. Changes on reload."""

    body_idle_timeout_seconds: float = 60.0
    """YAML `body_idle_timeout`: a response body that sends no byte for this long is cut (nginx
    `proxy_read_timeout`): a 504 if nothing was relayed yet, else the client connection closes.
    Raise it for event streams and long polls that are silent for longer."""
    max_response_head_bytes: int = 64 * 1024
    """Status line plus all header fields of an upstream's response; more gets 502 and nothing of
    that response reaches the client (Envoy's `max_response_headers_kb` is 60 KiB)."""
    max_response_headers: int = 100
    """Header fields in an upstream's response; more gets 502, as above."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    listen: ListenAddress | None = None
    """Separate listener for `/metrics`; None disables it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "INFO"
    decisions: bool = True
    """One JSON line per request on the `idgate.decision` logger."""


class TraceContinuation(StrEnum):
    """Whose incoming W3C `traceparent` a request's trace continues (a new trace otherwise)."""

    ANY = "any"
    TRUSTED_PROXIES = "trusted_proxies"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingSettings:
    """YAML `tracing`: OpenTelemetry spans exported over OTLP/HTTP (the `idgate[tracing]` extra).
    Absent: no tracing, and no per-request cost."""

    otlp_endpoint: str
    """The collector's OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`."""
    service_name: str = "idgate"
    """The spans' `service.name` resource attribute."""
    sample_ratio: float = 1.0
    """Share of new traces recorded (0 to 1); a continued trace follows its parent's choice."""
    headers: tuple[tuple[str, Secret], ...] = ()
    """Sent with every export (a collector's API key): values never logged."""
    continue_incoming: TraceContinuation = TraceContinuation.ANY
    """Whose `traceparent` is continued: any client (as Envoy and nginx's otel module do),
    only `trusted_proxies`, or none."""
    include_user: bool = False
    """Put the signed-in user (`enduser.id`) on request spans; off: spans name no person."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitSettings:
    """YAML `rate_limits`: per client address and minute; 0 turns a limit off. Allowed requests
    are never limited; these bound what an anonymous client can repeat for free."""

    sign_in_per_minute: int = 120
    """Sign-in starts (`/oauth2/start`, `/oauth2/sign_in`): each one costs a state cookie and a
    trip to the provider."""
    callback_per_minute: int = 120
    """Callbacks (`/oauth2/callback`): each one may cost a code exchange at the provider."""
    failed_auth_per_minute: int = 600
    """Answers of 401 (no or bad credentials); past the limit such a client gets 429 instead.
    Not applied to `/oauth2/auth`: nginx `auth_request` turns a 429 into a 500."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainSettings:
    """YAML `drain`: what happens between SIGTERM and exit (proxy/server/drain.py)."""

    delay_seconds: float = 0.0
    """YAML `delay`: how long the listener keeps accepting after SIGTERM, with `/readyz` already
    503, so a load balancer that only probes readiness stops sending first. Kubernetes removes a
    terminating pod from its Service by itself; there the Deployment's `preStop` pause does this."""
    grace_seconds: float = 30.0
    """YAML `grace`: how long requests in flight may take to finish once the listener is closed;
    what still runs then is cut, and WebSocket tunnels are closed with 1001 (going away)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardAuthSettings:
    """YAML `forward_auth`: how `/oauth2/auth` answers gateways."""

    decision_cache_seconds: int = 5
    """Ceiling on how long a gateway may reuse an allow (`Cache-Control: max-age`), which is also
    never beyond the token's `exp` or the session's next refresh; 0: every answer is `no-store`.
    A revocation reaches a gateway that caches within this many seconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PagesSettings:
    """YAML `pages`: what the pages idgate shows a person offer besides their message."""

    help_url: str | None = None
    """An http(s) URL where people ask for access (a service desk, a wiki page), linked from the
    access-denied page; None: no help link."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    public_url: str
    """External base URL of idgate (scheme, host, port); redirects and cookies derive from it."""
    oidc: OIDCSettings
    session: SessionSettings
    routes: tuple[Route, ...]
    issuers: tuple[IssuerSettings, ...] = ()
    """YAML `issuers`: token issuers besides the `oidc` block."""
    listen: ListenAddress = field(
        default_factory=lambda: ListenAddress(host="127.0.0.1", port=4180)
    )
    """Address of the proxy listener (oauth2-proxy's default port)."""
    workers: int | None = None
    """Processes sharing the port; None means one per core."""
    allowed_redirect_domains: tuple[str, ...] = ()
    """Hosts (and with a leading dot, their subdomains) that post-login redirects may target."""
    trusted_proxies: tuple[IPNetwork, ...] = ()
    """Peers whose `X-Forwarded-*`/`Forwarded` headers are believed."""
    prefix: str = "/oauth2"
    """Path prefix of idgate's own endpoints."""
    tls: TLSSettings | None = None
    """None: plain HTTP on `listen` (TLS ends in front of idgate)."""
    client_certificates: ClientCertificateSettings | None = None
    """None: only certificates presented to idgate's own TLS listener identify a client."""
    server: ServerSettings = field(default_factory=ServerSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    drain: DrainSettings = field(default_factory=DrainSettings)
    forward_auth: ForwardAuthSettings = field(default_factory=ForwardAuthSettings)
    pages: PagesSettings = field(default_factory=PagesSettings)
    tracing: TracingSettings | None = None

    @property
    def redirect_uri(self) -> str:
        """The sign-in callback the provider sends the browser back to (register it there)."""
        return f"{self.public_url.rstrip('/')}{self.prefix}/callback"

    @property
    def all_issuers(self) -> tuple[IssuerSettings, ...]:
        """Every token issuer: the `oidc` block's first, then `issuers` in order."""
        return (self.oidc.as_issuer, *self.issuers)
