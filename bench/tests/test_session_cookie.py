import asyncio
from pathlib import Path

import yaml

from bench import idgate
from bench.session_cookie import cookie_header
from bench.tokens import GROUP, Issuer
from proxy.config.load import load_settings
from proxy.runtime import build_store
from proxy.sessions.cookies import CookieJar

SECRET = "bench-test-secret-0123456789abcdefghijklmnop"  # noqa: S105 (a test secret)


def test_cookie_opens_with_idgates_own_store(tmp_path: Path) -> None:
    """The minted cookie is a live session for the user in the benchmark group."""
    config = tmp_path / "idgate.yaml"
    document = idgate.document(
        port=4180,
        metrics_port=9180,
        issuer="http://127.0.0.1:8000",
        audience="https://api.bench.test",
        upstream="http://127.0.0.1:8000",
        route_count=2,
    )
    config.write_text(yaml.safe_dump(document))
    issuer = Issuer(issuer="http://127.0.0.1:8000", audience="https://api.bench.test")
    header = cookie_header(config, secret=SECRET, issuer=issuer, subject="carol")
    cookies = dict(part.split("=", 1) for part in header.split("; "))
    settings = load_settings(config, {idgate.SECRET_VARIABLE: SECRET})
    store = build_store(settings, CookieJar.from_settings(settings))
    record = asyncio.run(store.load(cookies))
    assert record is not None
    assert record.user == "carol"
    assert record.groups == frozenset({GROUP})
