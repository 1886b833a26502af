"""The demo's config: a file the real loader accepts, whose routes decide as the tour says."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from joserfc.jwk import JWKRegistry, Key
from prometheus_client import CollectorRegistry

from proxy.cli import EXIT_OK, main
from proxy.config.load import load_settings
from proxy.config.model import Settings
from proxy.demo.config import API_AUDIENCE, CLIENT_ID, DEMO_ROUTES, config_document, write_config
from proxy.demo.directory import USERS
from proxy.demo.tokens import TokenMint
from proxy.errors import InvalidToken
from proxy.explain import explain, principal_for_explain
from proxy.observability.metrics import Metrics
from proxy.policy.decision import Outcome
from tests.support.issuers import bearer_verifier

PORT = 4180
ISSUER = "http://127.0.0.1:4100"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    document = config_document(
        port=PORT,
        metrics_port=4181,
        issuer=ISSUER,
        client_secret="demo-client-secret",
        session_secret="demo-session-secret-0123456789abcdefghij",
        upstreams={
            route.name: f"http://127.0.0.1:{4200 + i}" for i, route in enumerate(DEMO_ROUTES)
        },
    )
    return write_config(tmp_path, document)


@pytest.fixture
def settings(config_path: Path) -> Settings:
    return load_settings(config_path, {})


def test_config_file_passes_idgate_check(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`idgate check` accepts the written file as is, with every demo route."""
    assert main(["check", "-c", str(config_path)], {}) == EXIT_OK
    assert f"ok ({len(DEMO_ROUTES)} routes)" in capsys.readouterr().out


def test_config_file_is_private(config_path: Path) -> None:
    """The file holds this run's secrets: only its owner may read it."""
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


def test_settings_are_a_loopback_single_worker_proxy(settings: Settings) -> None:
    """idgate listens on loopback, one worker, metrics on a port of their own, demo-api accepted
    on bearer tokens marked `typ: at+jwt`."""
    assert settings.public_url == f"http://127.0.0.1:{PORT}"
    assert (settings.listen.host, settings.listen.port, settings.workers) == ("127.0.0.1", PORT, 1)
    assert settings.metrics.listen is not None
    assert settings.metrics.listen.port == 4181
    assert settings.oidc.accepted_audiences == ("demo-api",)
    assert settings.oidc.require_access_token_type
    assert [route.name for route in settings.routes][-1] == "home"


@pytest.mark.parametrize(
    ("user", "path", "outcome", "status"),
    [
        ("alice", "/eng", Outcome.ALLOW, 200),
        ("alice", "/admin/users", Outcome.ALLOW, 200),
        ("alice", "/beta", Outcome.WOULD_DENY, 200),
        ("bob", "/eng", Outcome.ALLOW, 200),
        ("bob", "/admin", Outcome.DENY, 403),
        ("bob", "/beta", Outcome.WOULD_DENY, 200),
        ("carol", "/eng", Outcome.DENY, 403),
        ("carol", "/", Outcome.ALLOW, 200),
        ("carol", "/api/whoami", Outcome.ALLOW, 200),
        (None, "/public/anything", Outcome.ALLOW, 200),
        (None, "/", Outcome.UNAUTHENTICATED, 401),
        (None, "/beta", Outcome.UNAUTHENTICATED, 401),
    ],
)
def test_routes_decide_as_the_tour_says(
    settings: Settings, user: str | None, path: str, outcome: Outcome, status: int
) -> None:
    """Each demo user gets the decision the tour describes (audit lets /beta through)."""
    groups = next((u.groups for u in USERS if u.username == user), ())
    principal = principal_for_explain(user=user, email=None, groups=groups, claims={})
    result = explain(
        settings, method="GET", url=f"http://127.0.0.1:{PORT}{path}", principal=principal
    )
    assert result.decision is not None
    assert (result.decision.outcome, result.status) == (outcome, status)


class MintKeys:
    """The dev issuer's public key, as idgate would fetch it from its `/jwks`."""

    def __init__(self, mint: TokenMint) -> None:
        self.key = JWKRegistry.import_key(mint.jwks()["keys"][0])

    async def key_for(self, kid: str | None, alg: str) -> Key:
        return self.key


async def test_the_dev_issuers_access_tokens_are_bearer_credentials_and_its_id_tokens_not(
    settings: Settings,
) -> None:
    """Under the demo config, a dev-issuer access token for demo-api identifies its subject and
    the ID token a browser sign-in yields (for idgate's client, `typ: JWT`) is refused."""
    mint = TokenMint(issuer=ISSUER)
    verifier = bearer_verifier(settings.oidc, MintKeys(mint), Metrics(CollectorRegistry()))
    access_token = mint.access_token(
        subject="demo-service",
        client_id="demo-service",
        audiences=(API_AUDIENCE,),
        scope="api",
        lifetime=60,
        claims={},
    )
    id_token = mint.id_token(user=USERS[0], client_id=CLIENT_ID, nonce="n", sid="s", lifetime=60)

    assert (await verifier.verify(access_token)).user == "demo-service"
    with pytest.raises(InvalidToken):
        await verifier.verify(id_token)
