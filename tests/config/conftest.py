"""A minimal valid configuration document, and a way to see what parsing it reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from proxy.config.load import ConfigError, parse_settings

SESSION_SECRET = "0123456789abcdef0123456789abcdef"

Issues = Callable[..., list[str]]


@pytest.fixture
def document() -> dict[str, Any]:
    return {
        "public_url": "https://idgate.example.com",
        "oidc": {"issuer": "https://login.example.com", "client_id": "idgate"},
        "session": {"secret": SESSION_SECRET},
        "routes": [
            {"name": "app", "upstream": "http://127.0.0.1:8080", "allow": {"groups": ["staff"]}}
        ],
    }


@pytest.fixture
def issues() -> Issues:
    """Every issue parsing reports, as `path: message` lines; empty when the document is valid."""

    def report(data: object, environ: Mapping[str, str] | None = None) -> list[str]:
        try:
            parse_settings(data, environ or {})
        except ConfigError as error:
            return [str(issue) for issue in error.issues]
        return []

    return report
