"""Bearer tokens: only provider-signed, allowlisted, exact-iss/aud, unexpired tokens identify."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc.jwk import Key, OctKey
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.identity.bearer import (
    MAX_TOKEN_CHARS,
    BearerVerifier,
    KeySource,
    RevokedUsers,
    bearer_token,
)
from proxy.identity.principal import CredentialSource
from proxy.observability.metrics import Metrics
from proxy.oidc.jwks import ProviderKeys
from proxy.reasons import TokenFailure
from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.revocations import RevocationKind
from tests.support.issuer import FakeClock, FakeIssuer, SigningKey, forge, forge_hs256, serve_issuer
from tests.support.issuers import bearer_verifier

ISSUER = "https://issuer.example"
MIN_REFRESH = 10.0
LEEWAY = 30
OMIT: Any = object()
KEY = SigningKey(kid="k1")
ATTACKER = SigningKey(kid="attacker")


# --- the Authorization header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Basic YWxpY2U6c2VjcmV0", None),
        ("Bearerabc", None),
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER   abc.def.ghi", "abc.def.ghi"),
        ("Bearer a-b_c~d+e/f==", "a-b_c~d+e/f=="),
    ],
)
def test_bearer_token_is_read_from_the_bearer_scheme_only(
    header: str | None, token: str | None
) -> None:
    """The scheme matches case-insensitively; other schemes and no header mean no bearer token."""
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer a b", "Bearer =abc", "Bearer a=b", "Bearer ä.b.c"]
)
def test_bearer_with_garbage_credentials_is_malformed(header: str) -> None:
    """`Bearer` followed by anything but one b64token (RFC 6750 2.1) is refused as malformed."""
    with pytest.raises(InvalidToken) as caught:
        bearer_token(header)

    assert caught.value.failure is TokenFailure.MALFORMED


def test_an_oversized_bearer_token_is_refused_before_parsing() -> None:
    """A token over 16 KiB is TOO_LARGE."""
    with pytest.raises(InvalidToken) as caught:
        bearer_token("Bearer " + "a" * (MAX_TOKEN_CHARS + 1))

    assert caught.value.failure is TokenFailure.TOO_LARGE


# --- verification --------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    issuer: FakeIssuer
    verifier: BearerVerifier
    keys: KeySource
    metrics: Metrics
    keys_clock: FakeClock
    wall_clock: FakeClock

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


class CountingKeys:
    """A KeySource that counts lookups: a lookup means the token was verified, not cached."""

    def __init__(self, inner: KeySource) -> None:
        self.inner = inner
        self.calls = 0

    async def key_for(self, kid: str | None, alg: str) -> Key:
        self.calls += 1
        return await self.inner.key_for(kid, alg)


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def world(aiohttp_server: AiohttpServer) -> AsyncIterator[MakeWorld]:
    """A fake provider, its keys loaded by ProviderKeys, and a verifier over them."""
    session = aiohttp.ClientSession()
    started: list[ProviderKeys] = []

    async def make(
        issuer: FakeIssuer | None = None,
        revocations: RevokedUsers | None = None,
        **oidc_overrides: Any,
    ) -> World:
        served = await serve_issuer(aiohttp_server, issuer or FakeIssuer(keys=[KEY]))
        oidc = OIDCSettings(
            issuer=ISSUER,
            client_id="idgate",
            audiences=("api", "other-api"),
            jwks_uri=served.jwks_uri,
            leeway_seconds=LEEWAY,
            jwks_min_refresh_seconds=MIN_REFRESH,
        )
        oidc = dataclasses.replace(oidc, **oidc_overrides)
        metrics = Metrics(CollectorRegistry())
        keys_clock, wall_clock = FakeClock(), FakeClock(now=time.time())
        provider = ProviderKeys(oidc.as_issuer, session, metrics, clock=keys_clock)
        started.append(provider)
        await provider.start()
        counting = CountingKeys(provider)
        verifier = bearer_verifier(
            oidc, counting, metrics, clock=wall_clock, revocations=revocations
        )
        return World(served, verifier, counting, metrics, keys_clock, wall_clock)

    yield make
    for provider in started:
        await provider.close()
    await session.close()


def segment(text: str) -> str:
    """`text` as one base64url segment of a compact JWS."""
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "api",
        "sub": "alice",
        "email": "alice@example.com",
        "groups": ["eng", "ops"],
        "iat": now,
        "exp": now + 300,
    }
    merged = base | overrides
    return {name: value for name, value in merged.items() if value is not OMIT}


async def failure_of(world: World, token: str) -> TokenFailure:
    with pytest.raises(InvalidToken) as caught:
        await world.verifier.verify(token)
    return caught.value.failure


async def test_a_valid_token_identifies_its_subject(world: MakeWorld) -> None:
    """A provider-signed token with the right iss, aud and times becomes a bearer Principal."""
    w = await world()
    token_claims = claims()

    principal = await w.verifier.verify(KEY.sign(token_claims))

    assert principal.user == "alice"
    assert principal.email == "alice@example.com"
    assert principal.groups == {"eng", "ops"}
    assert principal.source is CredentialSource.BEARER
    assert principal.expires_at == token_claims["exp"]
    assert (
        w.sample("idgate_token_validations_total", result="valid", reason="ok", issuer="oidc") == 1
    )
    assert w.sample("idgate_token_validation_duration_seconds_count") == 1


async def test_a_revoked_users_tokens_issued_before_the_revocation_are_refused(
    world: MakeWorld,
) -> None:
    """After `idgate revoke --user alice` her older token is refused, cached or not, while a token
    issued later and bob's token still identify; a lift lets the old token in again."""
    revocations = RevocationList()
    w = await world(revocations=revocations)
    now = int(time.time())
    older = KEY.sign(claims(iat=now - 60))
    assert (await w.verifier.verify(older)).user == "alice"  # now cached
    entry = await revocations.revoke(RevocationKind.USER, "alice")
    assert await failure_of(w, older) is TokenFailure.REVOKED
    assert await failure_of(w, KEY.sign(claims(iat=OMIT))) is TokenFailure.REVOKED
    assert (await w.verifier.verify(KEY.sign(claims(sub="bob", iat=now - 60)))).user == "bob"
    later = KEY.sign(claims(iat=int(entry.revoked_at) + 1))
    assert (await w.verifier.verify(later)).user == "alice"
    assert (
        w.sample(
            "idgate_token_validations_total", result="invalid", reason="revoked", issuer="oidc"
        )
        == 2
    )
    await revocations.lift(RevocationKind.USER, "alice")
    assert (await w.verifier.verify(older)).user == "alice"


@pytest.mark.parametrize(
    "key",
    [SigningKey(kid="ec", alg="ES256"), SigningKey(kid="ed", alg="EdDSA")],
    ids=["ES256", "EdDSA"],
)
async def test_elliptic_curve_tokens_verify(world: MakeWorld, key: SigningKey) -> None:
    """ES256 and EdDSA keys from the JWKS verify tokens of their algorithm."""
    w = await world(FakeIssuer(keys=[key]))

    assert (await w.verifier.verify(key.sign(claims()))).user == "alice"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_an_unsigned_token_is_refused(world: MakeWorld, alg: str) -> None:
    """`alg: none` is never a signature (RFC 8725 2.1)."""
    w = await world()

    failure = await failure_of(w, forge({"alg": alg, "kid": "k1"}, claims()))

    assert failure is TokenFailure.ALGORITHM
    # Refused before its issuer is chosen: no issuer's label.
    labels = {"result": "invalid", "reason": "algorithm", "issuer": ""}
    assert w.sample("idgate_token_validations_total", **labels) == 1


@pytest.mark.parametrize("form", ["pem", "jwk"])
@pytest.mark.parametrize("allow_hmac", [False, True], ids=["allowlist", "hs256-misconfigured"])
async def test_hmac_keyed_with_the_public_key_is_refused(
    world: MakeWorld, form: str, allow_hmac: bool
) -> None:
    """An HS256 token whose secret is the provider's public key fails, even if HS256 is listed."""
    overrides = {"algorithms": ("RS256", "HS256")} if allow_hmac else {}
    w = await world(**overrides)
    public = KEY.private_key.public_key()
    secret = (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if form == "pem"
        else json.dumps(KEY.jwk).encode()
    )

    failure = await failure_of(w, forge_hs256({"alg": "HS256", "kid": "k1"}, claims(), secret))

    assert failure is TokenFailure.ALGORITHM


class HmacHandingKeys:
    """A broken KeySource that would hand out a symmetric key for any lookup."""

    def __init__(self, secret: bytes) -> None:
        self.key = OctKey.import_key(secret)
        self.calls = 0

    async def key_for(self, kid: str | None, alg: str) -> Key:
        self.calls += 1
        return self.key


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_the_verifier_refuses_symmetric_algs_whatever_its_config_and_keys(alg: str) -> None:
    """Even configured for HS256/none and given a key source serving HMAC keys, nothing passes."""
    secret = b"0123456789abcdef0123456789abcdef"
    oidc = OIDCSettings(issuer=ISSUER, client_id="api", algorithms=("RS256", alg))
    keys = HmacHandingKeys(secret)
    verifier = bearer_verifier(oidc, keys, Metrics(CollectorRegistry()))
    token = forge_hs256({"alg": alg, "kid": "k"}, claims(aud="api"), secret)

    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)

    assert caught.value.failure is TokenFailure.ALGORITHM
    assert keys.calls == 0


async def test_algorithms_outside_the_asymmetric_set_are_refused_even_if_configured() -> None:
    """`ES256K`, `Ed25519` and `Ed448` are not among the accepted asymmetric algorithms; listing
    them in the configuration does not make them verify, and no key is looked up for them."""
    oidc = OIDCSettings(
        issuer=ISSUER, client_id="api", algorithms=("RS256", "ES256K", "Ed25519", "Ed448")
    )
    keys = HmacHandingKeys(b"0123456789abcdef0123456789abcdef")
    verifier = bearer_verifier(oidc, keys, Metrics(CollectorRegistry()))

    for alg in ("ES256K", "Ed25519", "Ed448"):
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(forge({"alg": alg, "kid": "k"}, claims(aud="api"), b"sig"))
        assert caught.value.failure is TokenFailure.ALGORITHM
    assert keys.calls == 0


@pytest.mark.parametrize(
    "iss",
    [
        "https://elsewhere.example",
        "https://issuer.example.evil",
        "https://issuer.exampl",
        "https://issuer",
        "https://issuer.example/",
        "https://issuer.example/realms/other",
        "HTTPS://ISSUER.EXAMPLE",
    ],
)
async def test_the_issuer_must_match_exactly(world: MakeWorld, iss: str) -> None:
    """Only the configured issuer string itself passes: no prefix, suffix or case variant."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(iss=iss))) is TokenFailure.ISSUER


@pytest.mark.parametrize(
    ("iss", "expected"),
    [([ISSUER], TokenFailure.MALFORMED), (OMIT, TokenFailure.MISSING_CLAIM)],
    ids=["list", "missing"],
)
async def test_an_issuer_that_is_not_one_string_is_refused(
    world: MakeWorld, iss: Any, expected: TokenFailure
) -> None:
    """A list-valued `iss` is malformed and a missing one is a missing claim."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(iss=iss))) is expected


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("someone-else", TokenFailure.AUDIENCE),
        (["someone-else", "API"], TokenFailure.AUDIENCE),
        ("api-admin", TokenFailure.AUDIENCE),
        (OMIT, TokenFailure.MISSING_CLAIM),
    ],
)
async def test_the_audience_must_be_accepted(
    world: MakeWorld, aud: Any, expected: TokenFailure
) -> None:
    """`aud` must name one of `oidc.audiences` exactly: no case variant, prefix or suffix."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(aud=aud))) is expected


async def test_any_accepted_audience_in_a_list_is_enough(world: MakeWorld) -> None:
    """A token for several audiences passes when one of them is accepted."""
    w = await world()

    assert (await w.verifier.verify(KEY.sign(claims(aud=["elsewhere", "other-api"])))).user


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ({"exp": -LEEWAY - 5}, TokenFailure.EXPIRED),
        ({"exp": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"nbf": LEEWAY + 60}, TokenFailure.NOT_YET_VALID),
        ({"iat": LEEWAY + 60}, TokenFailure.NOT_YET_VALID),
        ({"exp": "soon"}, TokenFailure.MALFORMED),
    ],
    ids=["expired", "no-exp", "nbf-future", "iat-future", "exp-not-a-number"],
)
async def test_token_times_are_enforced(
    world: MakeWorld, offsets: dict[str, Any], expected: TokenFailure
) -> None:
    """Expired, not-yet-valid, future-issued or exp-less tokens are refused."""
    w = await world()
    now = int(time.time())
    times = {
        name: value if value is OMIT or isinstance(value, str) else now + value
        for name, value in offsets.items()
    }

    assert await failure_of(w, KEY.sign(claims(**times))) is expected


@pytest.mark.parametrize(
    "times",
    [
        {"exp": True},
        {"exp": "4102444800"},
        {"exp": float("inf")},
        {"nbf": float("nan")},
        {"nbf": None},
        {"iat": [0]},
    ],
    ids=["bool", "numeric-string", "infinity", "nan", "null", "list"],
)
async def test_time_claims_must_be_numbers(world: MakeWorld, times: dict[str, Any]) -> None:
    """`exp`, `nbf` and `iat` are JSON numbers (not NaN or infinite), or the token is malformed."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(**times))) is TokenFailure.MALFORMED


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aud": ""}, TokenFailure.MISSING_CLAIM),
        ({"aud": []}, TokenFailure.MISSING_CLAIM),
        ({"aud": ["api", 7]}, TokenFailure.AUDIENCE),
        ({"aud": {"api": True}}, TokenFailure.AUDIENCE),
        ({"sub": 42}, TokenFailure.MALFORMED),
        ({"jti": ["x"]}, TokenFailure.MALFORMED),
    ],
    ids=["aud-empty", "aud-empty-list", "aud-not-strings", "aud-object", "sub-number", "jti-list"],
)
async def test_claims_of_the_wrong_shape_are_refused(
    world: MakeWorld, overrides: dict[str, Any], expected: TokenFailure
) -> None:
    """An empty `aud` names nobody; `aud`, `sub` and `jti` must be strings (RFC 7519 4.1)."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(**overrides))) is expected


async def test_small_clock_skew_is_tolerated(world: MakeWorld) -> None:
    """Times off by less than the leeway are accepted."""
    w = await world()
    now = int(time.time())
    skewed = claims(exp=now - LEEWAY + 10, nbf=now + LEEWAY - 10, iat=now + LEEWAY - 10)

    assert (await w.verifier.verify(KEY.sign(skewed))).user == "alice"


async def test_a_tampered_token_fails_its_signature(world: MakeWorld) -> None:
    """Changing the payload after signing breaks the signature."""
    w = await world()
    header, _, signature = KEY.sign(claims()).split(".")
    forged_payload = forge({}, claims(sub="admin")).split(".")[1]

    failure = await failure_of(w, f"{header}.{forged_payload}.{signature}")

    assert failure is TokenFailure.SIGNATURE


async def test_a_token_without_the_user_claim_is_refused(world: MakeWorld) -> None:
    """No user claim, no identity."""
    w = await world()

    assert await failure_of(w, KEY.sign(claims(sub=OMIT))) is TokenFailure.MISSING_CLAIM


@pytest.mark.parametrize(
    "overage",
    [
        {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://g"}}},
        {"hasgroups": True},
    ],
)
async def test_a_token_whose_groups_are_withheld_is_refused(
    world: MakeWorld, overage: dict[str, Any]
) -> None:
    """Entra ID's group overage (the groups claim replaced by a pointer elsewhere) is refused,
    not read as "no groups", which would slip past a `deny: groups:` rule."""
    w = await world()
    token = KEY.sign(claims(groups=OMIT, **overage))

    assert await failure_of(w, token) is TokenFailure.MISSING_CLAIM


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("abc", TokenFailure.MALFORMED),
        ("a.b.c", TokenFailure.MALFORMED),
        ("tëst.a.b", TokenFailure.MALFORMED),
        ("e30.e30.", TokenFailure.ALGORITHM),
        ("a" * (MAX_TOKEN_CHARS + 1), TokenFailure.TOO_LARGE),
        (forge({"alg": "RS256"}, claims()) + ".x", TokenFailure.MALFORMED),
        ("eyJhbGciOiJSUzI1NiJ9=.e30.", TokenFailure.MALFORMED),
        ("eyJhbGciOiJSUzI1NiJ9.e31.", TokenFailure.MALFORMED),
        (forge({"alg": "RS256"}, claims()) + "+/", TokenFailure.MALFORMED),
        (segment('"alg b64"') + ".e30.", TokenFailure.MALFORMED),
        (segment("[" * 5000 + "]" * 5000) + ".e30.", TokenFailure.MALFORMED),
        (forge({"alg": "RS256", "kid": 7}, claims()), TokenFailure.MALFORMED),
        (forge({"alg": ["RS256"], "kid": "k1"}, claims()), TokenFailure.ALGORITHM),
        (
            forge({"alg": "RS256", "kid": "k1", "crit": ["exp"], "exp": 1}, claims()),
            TokenFailure.MALFORMED,
        ),
        (
            forge({"alg": "RS256", "kid": "k1", "b64": False, "crit": ["b64"]}, {}),
            TokenFailure.MALFORMED,
        ),
        (forge({"alg": "RS256", "kid": "k1", "b64": False}, {}), TokenFailure.MALFORMED),
    ],
    ids=[
        "one-part",
        "not-base64-json",
        "non-ascii",
        "no-alg",
        "too-large",
        "four-parts",
        "padded",
        "non-canonical-base64",
        "signature-not-base64url",
        "header-a-string",
        "header-nested-too-deep",
        "kid-not-a-string",
        "alg-not-a-string",
        "critical-extension",
        "unencoded-payload",
        "unencoded-payload-not-critical",
    ],
)
async def test_garbage_never_reaches_a_key_lookup(
    world: MakeWorld, token: str, expected: TokenFailure
) -> None:
    """Tokens that are not a compact JWS with an allowed alg are refused before any key lookup.

    idgate understands no `crit` extension, so a token naming one is invalid (RFC 7515 4.1.11);
    that includes RFC 7797's unencoded payload, which has no place in a JWT.
    """
    w = await world()

    assert await failure_of(w, token) is expected
    assert isinstance(w.keys, CountingKeys)
    assert w.keys.calls == 0


async def test_unknown_kids_refresh_once_per_interval(world: MakeWorld) -> None:
    """Two tokens with new kids inside the refresh window cause one JWKS fetch between them."""
    w = await world()
    w.keys_clock.advance(MIN_REFRESH + 1)
    fetches = w.issuer.jwks_fetches

    for kid in ("new-1", "new-2"):
        forged = SigningKey(kid=kid).sign(claims())
        assert await failure_of(w, forged) is TokenFailure.UNKNOWN_KEY

    assert w.issuer.jwks_fetches == fetches + 1


async def test_a_rotated_key_verifies_its_first_token(world: MakeWorld) -> None:
    """A token signed by a key published after the last fetch verifies after one refresh."""
    w = await world()
    rotated = SigningKey(kid="k2")
    w.issuer.keys = [KEY, rotated]
    w.keys_clock.advance(MIN_REFRESH + 1)

    assert (await w.verifier.verify(rotated.sign(claims()))).user == "alice"


async def test_a_provider_outage_keeps_known_keys_working(world: MakeWorld) -> None:
    """With the provider down, tokens from loaded keys verify and new kids fail closed."""
    w = await world()
    w.issuer.down = True
    w.keys_clock.advance(MIN_REFRESH + 1)

    assert (await w.verifier.verify(KEY.sign(claims()))).user == "alice"
    assert await failure_of(w, SigningKey(kid="k2").sign(claims())) is TokenFailure.UNKNOWN_KEY


async def test_no_keys_ever_loaded_is_provider_unavailable(world: MakeWorld) -> None:
    """Before any key was loaded, tokens are refused with ProviderUnavailable (503), not 401."""
    w = await world(FakeIssuer(keys=[KEY], down=True))

    with pytest.raises(ProviderUnavailable):
        await w.verifier.verify(KEY.sign(claims()))


@pytest.mark.parametrize(
    ("kid", "expected"),
    [
        ("k1", TokenFailure.SIGNATURE),
        (None, TokenFailure.SIGNATURE),
        ("attacker", TokenFailure.UNKNOWN_KEY),
    ],
)
async def test_a_key_embedded_in_the_header_is_ignored(
    world: MakeWorld, kid: str | None, expected: TokenFailure
) -> None:
    """A `jwk` header carrying the attacker's own key does not make their signature valid."""
    w = await world()
    headers: dict[str, Any] = {"jwk": ATTACKER.jwk} | ({"kid": kid} if kid else {})

    token = jwt.encode(claims(), ATTACKER.private_key, algorithm="RS256", headers=headers)

    assert await failure_of(w, token) is expected


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_a_key_url_in_the_header_is_never_fetched(
    world: MakeWorld, aiohttp_server: AiohttpServer, header: str
) -> None:
    """`jku`/`x5u` pointing at the attacker's key set are ignored; that URL is never fetched."""
    w = await world()
    attacker = await serve_issuer(aiohttp_server, FakeIssuer(keys=[ATTACKER]))
    w.keys_clock.advance(MIN_REFRESH + 1)

    token = ATTACKER.sign(claims(), headers={header: attacker.jwks_uri})

    assert await failure_of(w, token) is TokenFailure.UNKNOWN_KEY
    assert attacker.jwks_fetches == 0


def certificate_chain(key: SigningKey) -> list[str]:
    """`x5c`: a self-signed certificate for the key's public half, DER in standard base64."""
    private = key.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{key.kid}.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()]


@pytest.mark.parametrize(("kid", "expected"), [("k1", "signature"), ("attacker", "unknown_key")])
async def test_a_certificate_in_the_header_is_ignored(
    world: MakeWorld, kid: str, expected: str
) -> None:
    """An `x5c` chain for the attacker's key does not make their signature valid."""
    w = await world()
    headers = {"kid": kid, "x5c": certificate_chain(ATTACKER)}

    token = jwt.encode(claims(), ATTACKER.private_key, algorithm="RS256", headers=headers)

    assert await failure_of(w, token) is TokenFailure(expected)


async def test_a_long_header_is_no_reason_to_refuse(world: MakeWorld) -> None:
    """A provider token whose header carries its certificate (well over 512 bytes) verifies."""
    w = await world()

    token = KEY.sign(claims(), headers={"x5c": certificate_chain(KEY)})

    assert len(token.split(".")[0]) > 1024
    assert (await w.verifier.verify(token)).user == "alice"


@pytest.mark.parametrize("payload", [b"[]", b"not json", b"[" * 5000 + b"]" * 5000, b""], ids=str)
async def test_a_signed_payload_that_is_not_a_json_object_is_malformed(
    world: MakeWorld, payload: bytes
) -> None:
    """A correctly signed token whose payload is no JSON object carries no claims: malformed."""
    w = await world()

    token = jwt.PyJWS().encode(payload, KEY.private_key, algorithm="RS256", headers={"kid": "k1"})

    assert await failure_of(w, token) is TokenFailure.MALFORMED


async def test_a_symmetric_key_in_the_jwks_never_verifies(world: MakeWorld) -> None:
    """An HS256 token signed with a `kty: oct` secret the provider published is refused."""
    secret = b"published-by-mistake"
    encoded = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
    oct_key = {"kty": "oct", "kid": "shared", "alg": "HS256", "k": encoded}
    w = await world(FakeIssuer(keys=[KEY], extra_jwks=[oct_key]), algorithms=("RS256", "HS256"))

    token = forge_hs256({"alg": "HS256", "kid": "shared"}, claims(), secret)

    assert await failure_of(w, token) is TokenFailure.ALGORITHM


async def test_a_cached_token_is_not_verified_again_until_it_expires(world: MakeWorld) -> None:
    """The second use of a token is a cache hit; after its `exp` it is verified afresh."""
    w = await world()
    token_claims = claims()
    token = KEY.sign(token_claims)
    assert isinstance(w.keys, CountingKeys)

    first = await w.verifier.verify(token)
    second = await w.verifier.verify(token)

    assert second == first
    assert w.keys.calls == 1
    assert (
        w.sample("idgate_token_validations_total", result="cached", reason="ok", issuer="oidc") == 1
    )

    w.wall_clock.now = token_claims["exp"]
    await w.verifier.verify(token)

    assert w.keys.calls == 2
    assert (
        w.sample("idgate_token_validations_total", result="valid", reason="ok", issuer="oidc") == 2
    )


async def test_the_identities_of_cached_tokens_share_their_equal_values(
    world: MakeWorld,
) -> None:
    """Two users' tokens, verified against the issuer's served keys, become identities whose
    equal claim strings and groups are one object, each still with its own claims; a cache hit
    returns the very identity the first use returned."""
    w = await world()
    alice_token, bob_token = (KEY.sign(claims(sub=user)) for user in ("alice", "bob"))

    alice = await w.verifier.verify(alice_token)
    bob = await w.verifier.verify(bob_token)

    assert (alice.user, bob.user) == ("alice", "bob")
    assert bob.groups == frozenset({"eng", "ops"})
    assert bob.groups is alice.groups
    assert bob.claims["iss"] is alice.claims["iss"]
    assert bob.claims["groups"] == ["eng", "ops"]
    assert await w.verifier.verify(bob_token) is bob


async def test_failures_are_not_cached(world: MakeWorld) -> None:
    """A refused token is checked again in full every time it is presented."""
    w = await world()
    token = KEY.sign(claims(aud="someone-else"))
    assert isinstance(w.keys, CountingKeys)

    for _ in range(2):
        assert await failure_of(w, token) is TokenFailure.AUDIENCE

    assert w.keys.calls == 2
    assert (
        w.sample(
            "idgate_token_validations_total", result="invalid", reason="audience", issuer="oidc"
        )
        == 2
    )
