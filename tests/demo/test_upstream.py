"""The demo upstream: echoes what idgate sent and verifies the assertion against idgate's keys."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.config.model import Policy, Route, Secret
from proxy.demo.upstream import AssertionKeys, Link, UpstreamSettings, upstream_app
from proxy.identity.assertion import AssertionSigner
from proxy.identity.principal import CredentialSource, Principal

IDGATE = "http://127.0.0.1:4180"
SECRET = Secret("demo-upstream-test-secret-0123456789abcdef")
SIGNER = AssertionSigner((SECRET,), issuer=IDGATE)
ENG = Route(name="eng", upstream="http://eng.internal", policy=Policy(public=True))
ADMIN = Route(name="admin", upstream="http://admin.internal", policy=Policy(public=True))
ALICE = Principal(
    user="alice",
    email="alice@example.com",
    groups=frozenset({"engineering", "admins"}),
    claims=MappingProxyType({}),
    source=CredentialSource.SESSION,
    expires_at=time.time() + 3600,
)
HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class KeyServer:
    """idgate's `/oauth2/jwks` stand-in, counting fetches."""

    fetches: int = 0
    document: Any = field(default_factory=SIGNER.jwks)

    async def jwks(self, request: web.Request) -> web.Response:
        del request
        self.fetches += 1
        return web.json_response(self.document)


@dataclass
class Setup:
    upstream: TestClient[Any, Any]
    keys: KeyServer


@pytest.fixture
async def setup(aiohttp_server: Any, aiohttp_client: Any) -> Any:
    keys = KeyServer()
    key_app = web.Application()
    key_app.router.add_get("/oauth2/jwks", keys.jwks)
    key_server = await aiohttp_server(key_app)
    async with aiohttp.ClientSession() as http:
        assertion_keys = AssertionKeys(str(key_server.make_url("/oauth2/jwks")), http)
        settings = UpstreamSettings(
            audience="eng", issuer=IDGATE, links=(Link(path="/admin", label="/admin"),)
        )
        upstream = await aiohttp_client(upstream_app(settings, assertion_keys))
        yield Setup(upstream=upstream, keys=keys)


def identity_headers(assertion: str) -> dict[str, str]:
    return {
        "X-Authenticated-User": "alice",
        "X-Authenticated-Email": "alice@example.com",
        "X-Authenticated-Groups": "admins,engineering",
        "X-Authenticated-Assertion": assertion,
        "X-Forwarded-Proto": "http",
    }


def tampered(token: str) -> str:
    """The token with its payload rewritten to add a group, signature unchanged."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"].append("superusers")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_assertion_for_this_route_is_verified(setup: Setup) -> None:
    """An assertion idgate signed for this route verifies; the identity headers are echoed."""
    headers = identity_headers(SIGNER.sign(ALICE, ENG))
    response = await setup.upstream.get("/eng/x?q=1", headers=headers)
    assert response.status == 200
    seen = await response.json()
    assert seen["route"] == "eng"
    assert (seen["method"], seen["path"]) == ("GET", "/eng/x?q=1")
    assert seen["identity"]["X-Authenticated-User"] == "alice"
    assert seen["identity"]["X-Authenticated-Groups"] == "admins,engineering"
    assert seen["forwarded"] == {"X-Forwarded-Proto": "http"}
    assertion = seen["assertion"]
    assert (assertion["verified"], assertion["result"]) == (True, "verified ✓")
    assert assertion["claims"]["sub"] == "alice"
    assert assertion["claims"]["aud"] == "eng"


async def test_raw_assertion_is_never_echoed(setup: Setup) -> None:
    """The assertion is a credential: neither the JSON nor the page contains it."""
    token = SIGNER.sign(ALICE, ENG)
    for accept in [{}, HTML]:
        response = await setup.upstream.get("/eng", headers=identity_headers(token) | accept)
        assert token not in await response.text()
        assert token.split(".")[2] not in await response.text()


async def test_tampered_assertion_fails_verification(setup: Setup) -> None:
    """A payload changed after signing is shown as not verified, with the signature failure."""
    headers = identity_headers(tampered(SIGNER.sign(ALICE, ENG)))
    assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
    assert assertion["verified"] is False
    assert assertion["result"] == "not verified ✗: the signature does not match idgate's key"
    assert "superusers" in assertion["claims"]["groups"]


async def test_assertion_for_another_route_fails_verification(setup: Setup) -> None:
    """An assertion signed for route admin does not verify at the service behind route eng."""
    headers = identity_headers(SIGNER.sign(ALICE, ADMIN))
    assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
    assert assertion["verified"] is False
    assert assertion["result"] == "not verified ✗: Invalid claim: 'aud'"
    assert assertion["claims"]["aud"] == "admin"


@pytest.mark.parametrize(
    ("signer", "failure"),
    [
        (
            AssertionSigner((SECRET,), issuer="http://other-idgate.test"),
            "not verified ✗: Invalid claim: 'iss'",
        ),
        (
            AssertionSigner((SECRET,), issuer=IDGATE, clock=lambda: time.time() - 3600),
            "not verified ✗: The token is expired",
        ),
    ],
)
async def test_assertion_of_another_issuer_or_expired_fails_verification(
    setup: Setup, signer: AssertionSigner, failure: str
) -> None:
    """Signed with idgate's key, but naming another issuer or past its `exp`: not verified."""
    headers = identity_headers(signer.sign(ALICE, ENG))
    assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
    assert (assertion["verified"], assertion["result"]) == (False, failure)


async def test_assertion_signed_with_an_unpublished_key_fails_verification(setup: Setup) -> None:
    """A key idgate does not publish verifies nothing, and its kid costs one refetch at most."""
    stranger = AssertionSigner((Secret("not-idgates-secret-0123456789abcdef0123"),), issuer=IDGATE)
    for _ in range(3):
        headers = identity_headers(stranger.sign(ALICE, ENG))
        assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
        assert assertion["verified"] is False
        assert assertion["result"].startswith("not verified ✗: idgate publishes no key with kid")
    assert setup.keys.fetches == 1


@pytest.mark.parametrize("document", [{"keys": 5}, ["not", "a", "set"], {"keys": []}])
async def test_unusable_key_set_fails_verification(setup: Setup, document: Any) -> None:
    """A JWKS that is no JWK set, or an empty one, verifies nothing and says so."""
    setup.keys.document = document
    headers = identity_headers(SIGNER.sign(ALICE, ENG))
    assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
    assert assertion["verified"] is False
    assert assertion["result"].startswith("not verified ✗: idgate's keys are not a usable JWK set")


async def test_garbage_assertion_is_reported(setup: Setup) -> None:
    """A header that is no JWT at all is reported as not verified, not as an error."""
    headers = identity_headers("not-a-jwt")
    response = await setup.upstream.get("/eng", headers=headers)
    assert response.status == 200
    assert (await response.json())["assertion"]["verified"] is False


async def test_public_request_has_no_assertion(setup: Setup) -> None:
    """Without identity headers the upstream says there is no assertion, and fetches no keys."""
    seen = await (await setup.upstream.get("/public")).json()
    assert seen["identity"] == {}
    assert seen["assertion"]["present"] is False
    assert setup.keys.fetches == 0


async def test_keys_are_fetched_once_and_cached(setup: Setup) -> None:
    """Several verified requests fetch idgate's JWKS once."""
    for _ in range(3):
        headers = identity_headers(SIGNER.sign(ALICE, ENG))
        assertion = (await (await setup.upstream.get("/eng", headers=headers)).json())["assertion"]
        assert assertion["verified"] is True
    assert setup.keys.fetches == 1


async def test_browser_gets_a_page_with_the_verdict(setup: Setup) -> None:
    """A browser gets an HTML page with the user, the verdict, the links and escaped values."""
    headers = identity_headers(SIGNER.sign(ALICE, ENG)) | HTML
    headers["X-Forwarded-Host"] = "<script>x</script>"
    response = await setup.upstream.get("/eng", headers=headers)
    assert response.content_type == "text/html"
    page = await response.text()
    assert "Hello, alice" in page
    assert "verified ✓" in page
    assert '<a href="/admin">' in page
    assert "<script>x" not in page
    assert "&lt;script&gt;x" in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
