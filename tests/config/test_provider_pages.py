"""Every provider page's config is one `idgate check` accepts, as an operator would copy it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from proxy.cli import EXIT_OK, main
from tests.deploy.files import config_variables, load_yaml, stand_in

PAGES: Final = Path(__file__).resolve().parents[2] / "docs" / "providers"
PROVIDERS: Final = ("auth0", "dex", "entra-id", "gitlab", "google", "keycloak", "okta")
#: Providers without access tokens for APIs (opaque ones, or none): no `audiences`, and
#: `idgate check` says so.
WITHOUT_BEARER_TOKENS: Final = frozenset({"dex", "gitlab", "google"})
_YAML_BLOCK: Final = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def page_config(page: Path) -> str:
    """The page's one YAML block that is a whole config (it sets `public_url`)."""
    blocks: list[str] = _YAML_BLOCK.findall(page.read_text(encoding="utf-8"))
    [config] = [block for block in blocks if block.startswith("public_url:")]
    return config


def test_every_listed_provider_has_a_page() -> None:
    assert sorted(page.stem for page in PAGES.glob("*.md")) == sorted(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_page_config_passes_idgate_check_without_warnings(
    provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`idgate check` exits 0 on the page's config, its `${VAR}`s set to stand-ins, and warns of
    nothing (but the unset audiences of a provider without API access tokens): a page shows
    a config that means what it says."""
    text = page_config(PAGES / f"{provider}.md")
    config = tmp_path / "idgate.yaml"
    config.write_text(text, encoding="utf-8")
    environ = {name: stand_in(name) for name in config_variables(load_yaml(text))}

    status = main(["check", "-c", str(config)], environ)

    captured = capsys.readouterr()
    assert status == EXIT_OK, captured.err
    warnings = [line.split(": ")[2] for line in captured.err.splitlines()]
    expected = ["oidc.audiences"] if provider in WITHOUT_BEARER_TOKENS else []
    assert warnings == expected, captured.err
