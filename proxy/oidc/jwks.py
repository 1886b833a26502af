"""An issuer's signing keys: fetched with aiohttp, kept fresh in the background, found by kid.

Keys come only from the provider's JWKS, never from a token header. A key that is symmetric, not
for signatures, private, too short or for an algorithm outside the allowlist is skipped, so one
odd entry never costs the others. A failed fetch keeps the keys already loaded: an unreachable
provider must not log everybody out, while a request before any key was ever loaded fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from proxy.config.model import ASYMMETRIC_ALGORITHMS, IssuerKind, IssuerSettings, UpstreamTLS
from proxy.config.tls_context import build_client_context
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.observability.metrics import Metrics
from proxy.oidc.discovery import ProviderError, ProviderMetadata, fetch_json_object, fetch_metadata
from proxy.reasons import TokenFailure

logger = logging.getLogger("idgate.oidc")

_FIRST_RETRY_SECONDS: Final = 1.0

ProviderKey = RSAKey | ECKey | OKPKey
_KEY_CLASSES: Final[Mapping[str, type[ProviderKey]]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
#: NIST SP 800-131A: an RSA key under 2048 bits no longer protects a signature.
_MIN_RSA_BITS: Final = 2048

_RSA_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
#: What a JWK without `alg` may verify, by (kty, crv): RFC 7518 3.3-3.5 and RFC 8037 3.1.
#: `oct` is absent on purpose: its secret would be public, and HMAC is never accepted.
_ALGORITHMS_BY_KEY_TYPE: Final[Mapping[tuple[str, str | None], tuple[str, ...]]] = {
    ("RSA", None): _RSA_ALGORITHMS,
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-384"): ("ES384",),
    ("EC", "P-521"): ("ES512",),
    ("OKP", "Ed25519"): ("EdDSA",),
    ("OKP", "Ed448"): ("EdDSA",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySet:
    """Verification keys by (kid, alg); a JWK without `alg` appears once per algorithm it fits."""

    keys: Mapping[tuple[str | None, str], ProviderKey]
    count: int
    """Distinct JWKs loaded (the `idgate_jwks_keys` gauge)."""

    def find(self, kid: str | None, alg: str) -> ProviderKey | None:
        """The key for this kid and alg; without a kid, the only key for alg (None if several)."""
        if kid is not None:
            return self.keys.get((kid, alg))
        fits = [key for (_, key_alg), key in self.keys.items() if key_alg == alg]
        return fits[0] if len(fits) == 1 else None

    def knows(self, kid: str | None) -> bool:
        return kid is not None and any(key_kid == kid for key_kid, _ in self.keys)


_NO_KEYS: Final = KeySet(keys={}, count=0)


#: RFC 7517 4.2: "sig" (signature) is the only `use` whose keys may verify a provider's token.
SIGNATURE_USE: Final = "sig"
#: SPIFFE JWT-SVID 6.2: "Entries representing JWT-SVID signing keys can be identified by the
#: value of their use parameter, which must be jwt-svid." A SPIFFE bundle (which may also carry
#: `spiffe_refresh_hint`, `spiffe_sequence` and `x509-svid` entries) is otherwise a JWKS.
JWT_SVID_USE: Final = "jwt-svid"


def parse_key_set(
    document: Mapping[str, Any], algorithms: frozenset[str], *, key_use: str = SIGNATURE_USE
) -> KeySet:
    """The usable verification keys of a JWKS document, those whose `use` is `key_use` or
    absent; ProviderError when there are none."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ProviderError("JWKS has no `keys` list")
    allowed = algorithms & ASYMMETRIC_ALGORITHMS
    keys: dict[tuple[str | None, str], ProviderKey] = {}
    count = 0
    for entry in entries:
        loaded = _load_jwk(entry, allowed, key_use)
        if loaded:
            count += 1
        for alg, key in loaded:
            keys.setdefault((entry.get("kid"), alg), key)
    if not keys:
        raise ProviderError(f"JWKS holds no usable signing key ({len(entries)} entries)")
    logger.debug("loaded %d of %d provider keys", count, len(entries))
    return KeySet(keys=keys, count=count)


def _load_jwk(
    entry: Any, algorithms: frozenset[str], key_use: str
) -> list[tuple[str, ProviderKey]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid", ""), str):
        return []
    # A JWK with private material (`d`) is a provider's publishing mistake, not something to
    # verify with.
    if entry.get("use", key_use) != key_use or "d" in entry:
        return []
    # RFC 7517 4.3: "verify" (verify digital signature or MAC) must be among `key_ops` if given.
    operations = entry.get("key_ops", ["verify"])
    if not isinstance(operations, list) or "verify" not in operations:
        return []
    bound = entry.get("alg")
    fitting = [
        alg
        for alg in _algorithms_for(entry.get("kty"), entry.get("crv"))
        if alg in algorithms and bound in (None, alg)
    ]
    # joserfc knows only RFC 7517's `use` values; the check above already read it.
    key = (
        _import_key({name: value for name, value in entry.items() if name != "use"})
        if fitting
        else None
    )
    return [(alg, key) for alg in fitting] if key is not None else []


def _import_key(entry: dict[str, Any]) -> ProviderKey | None:
    """The public key of an asymmetric JWK whose `kty` is known; None when it is broken or weak."""
    try:
        # joserfc warns of a short RSA key; it is skipped below instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            key = _KEY_CLASSES[entry["kty"]].import_key(entry)
    # A provider's document is untrusted input: joserfc reports most bad keys as JoseError, but a
    # wrongly typed or invalid member can surface as TypeError or ValueError from the decoders.
    except (JoseError, TypeError, ValueError):
        return None
    if isinstance(key, RSAKey) and key.raw_value.key_size < _MIN_RSA_BITS:
        return None
    return key


def _algorithms_for(kty: Any, crv: Any) -> tuple[str, ...]:
    if not isinstance(kty, str) or not isinstance(crv, str | None):
        return ()
    return _ALGORITHMS_BY_KEY_TYPE.get((kty, crv), ())


class ProviderKeys:
    """One issuer's metadata and signing keys; the one place that fetches its JWKS."""

    def __init__(
        self,
        settings: IssuerSettings,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`settings`: the issuer's (the `oidc` block's is `OIDCSettings.as_issuer`). Its
        `ca_file` is read here: the config loader already checked it."""
        self._settings = settings
        self._http = http
        self._metrics = metrics
        self._clock = clock
        self._ssl: ssl.SSLContext | None = (
            None
            if settings.ca_file is None
            else build_client_context(UpstreamTLS(ca_file=settings.ca_file)).context
        )
        self._algorithms = frozenset(settings.algorithms) & ASYMMETRIC_ALGORITHMS
        self._key_use = JWT_SVID_USE if settings.kind is IssuerKind.SPIFFE else SIGNATURE_USE
        # The series exist from the start: "never loaded" reads as a last success at 0.
        metrics.jwks_last_success.labels(issuer=settings.name)
        metrics.jwks_keys.labels(issuer=settings.name)
        self._metadata: ProviderMetadata | None = None
        self._keys = _NO_KEYS
        self._last_fetch: float | None = None
        self._fetching: asyncio.Task[bool] | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Metadata (unless `jwks_uri` is configured) and at least one key are loaded."""
        has_metadata = self._metadata is not None or self._settings.jwks_uri is not None
        return has_metadata and self._keys.count > 0

    @property
    def metadata(self) -> ProviderMetadata | None:
        return self._metadata

    @property
    def ssl(self) -> ssl.SSLContext | None:
        """What verifies the issuer's TLS certificates (its `ca_file`); None: the system's."""
        return self._ssl

    @property
    def discovered_issuer(self) -> str | None:
        return None if self._metadata is None else self._metadata.issuer

    async def start(self) -> None:
        """Load once now (a failure is logged, not raised), then keep the keys fresh."""
        await self.refresh()
        self._refresher = asyncio.create_task(
            self._keep_fresh(), name=f"idgate-keys-{self._settings.name}"
        )

    async def close(self) -> None:
        tasks = [task for task in (self._refresher, self._fetching) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._refresher = None

    async def refresh(self) -> bool:
        """Fetch the keys now; concurrent callers share one fetch. True when it succeeded."""
        if self._fetching is None:
            task = asyncio.create_task(self._fetch())
            task.add_done_callback(self._forget_fetch)
            self._fetching = task
        # Shielded: a caller giving up (client gone) must not cancel the fetch others wait on.
        return await asyncio.shield(self._fetching)

    async def key_for(self, kid: str | None, alg: str) -> ProviderKey:
        """The loaded key that verifies `alg` for this `kid`, refreshing once for a new kid."""
        if alg not in self._algorithms:
            raise InvalidToken(TokenFailure.ALGORITHM)
        if self._keys.count == 0:
            raise ProviderUnavailable("provider signing keys are not loaded yet")
        key = self._keys.find(kid, alg)
        if key is None and not self._keys.knows(kid):
            await self._refresh_for_unknown_key()
            key = self._keys.find(kid, alg)
        if key is not None:
            return key
        if self._keys.knows(kid):
            raise InvalidToken(TokenFailure.ALGORITHM)
        raise InvalidToken(TokenFailure.UNKNOWN_KEY)

    async def _refresh_for_unknown_key(self) -> None:
        # SPEC: "a new `kid` triggers one rate-limited JWKS refresh": forged kids cost nothing
        # beyond one fetch per `jwks_min_refresh_seconds`, whoever sends them.
        last = self._last_fetch
        recent = last is not None and self._clock() - last < self._settings.jwks_min_refresh_seconds
        if self._fetching is None and recent:
            return
        await self.refresh()

    def _forget_fetch(self, task: asyncio.Task[bool]) -> None:
        if self._fetching is task:
            self._fetching = None

    async def _fetch(self) -> bool:
        self._last_fetch = self._clock()
        name = self._settings.name
        try:
            document = await self._key_document()
            keys = parse_key_set(document, self._algorithms, key_use=self._key_use)
        except ProviderError as error:
            self._metrics.jwks_refreshes.labels(result="failure", issuer=name).inc()
            logger.warning(
                "keys of issuer %s not refreshed, keeping %d: %s", name, self._keys.count, error
            )
            return False
        self._keys = keys
        self._metrics.jwks_refreshes.labels(result="success", issuer=name).inc()
        self._metrics.jwks_keys.labels(issuer=name).set(keys.count)
        self._metrics.jwks_last_success.labels(issuer=name).set(time.time())
        return True

    async def _key_document(self) -> dict[str, Any]:
        """The JWKS document, after discovery when the keys' URL comes from there."""
        timeout = self._settings.http_timeout_seconds
        jwks_uri = self._settings.jwks_uri
        if jwks_uri is None:
            if self._metadata is None:
                self._metadata = await fetch_metadata(
                    self._http,
                    self._settings.issuer,
                    url=self._settings.discovery,
                    timeout=timeout,
                    ssl=self._ssl,
                )
            jwks_uri = self._metadata.jwks_uri
        return await fetch_json_object(self._http, jwks_uri, timeout=timeout, ssl=self._ssl)

    async def _keep_fresh(self) -> None:
        interval = self._settings.jwks_refresh_seconds
        retry = min(_FIRST_RETRY_SECONDS, interval)
        while True:
            if self.ready:
                delay, retry = interval, min(_FIRST_RETRY_SECONDS, interval)
            else:
                delay, retry = retry, min(retry * 2, interval)
            await asyncio.sleep(delay)
            try:
                await self.refresh()
            # The loop must outlive any bug in one refresh, or keys would silently go stale.
            except Exception:
                logger.exception(
                    "key refresh of issuer %s failed unexpectedly", self._settings.name
                )
