"""Redirect vetting: only idgate's host, allowed domains and local paths get through."""

from __future__ import annotations

import pytest

from proxy.endpoints.redirects import vet_redirect

PUBLIC_URL = "https://auth.example.com"
ALLOWED = ("tools.example.com", ".apps.example.com")


def vet(target: str, *, public_url: str = PUBLIC_URL) -> str | None:
    return vet_redirect(target, public_url=public_url, allowed_domains=ALLOWED)


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/dashboard",
        "/a/b?x=1&y=2#frag",
        "/search?q=%2F%2Fnot-a-host",
        "/caf%C3%A9",
        "/@evil.com",
        "/a//b",
        "https://auth.example.com",
        "https://auth.example.com/",
        "https://auth.example.com/x?y=z#w",
        "https://AUTH.Example.COM/x",
        "HTTPS://auth.example.com/x",
        "https://auth.example.com:443/x",
        "https://tools.example.com/grafana/",
        "https://tools.example.com:443/grafana/",
        "https://grafana.apps.example.com/d/abc",
        "https://a.b.apps.example.com/",
        "https://auth.example.com/path@with-at",
        "https://auth.example.com#@evil.com",
    ],
)
def test_accepts_local_paths_and_allowed_hosts(target: str) -> None:
    """A same-origin path, public_url's host and allowed domains come back unchanged."""
    assert vet(target) == target


HOSTILE = [
    # other hosts, and look-alikes of allowed ones
    "https://evil.com",
    "https://evil.com/",
    "http://evil.com/auth.example.com",
    "https://auth.example.com.evil.com/",
    "https://evilauth.example.com/",
    "https://example.com/",
    "https://apps.example.com/",
    "https://tools.example.com.evil.com/",
    "https://xtools.example.com/",
    "https://evil-apps.example.com/",
    "https://auth.example.com./",
    "https://auth.example.com%2eevil.com/",
    # another port is another origin (another service), on every allowed host
    "https://auth.example.com:8443/x",
    "https://auth.example.com:9/",
    "https://auth.example.com:80/",
    "https://tools.example.com:8443/",
    "https://grafana.apps.example.com:8443/d/abc",
    "https://auth.example.com:0/",
    "https://auth.example.com:65536/",
    "https://auth.example.com:99999/",
    # protocol-relative and its disguises
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/%2F%2Fevil.com",
    "/%2f/evil.com",
    "%2F%2Fevil.com",
    "/%252F%252Fevil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "/%5Cevil.com",
    "/%5C%5Cevil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/ /evil.com",
    " //evil.com",
    "/%09/evil.com",
    "/%0D%0ALocation:%20https://evil.com",
    # userinfo tricks
    "https://auth.example.com@evil.com/",
    "https://auth.example.com:443@evil.com/",
    "https://user:pass@auth.example.com/",
    "https://auth.example.com%40evil.com/",
    "https://evil.com\\@auth.example.com/",
    "https://evil.com#\\@auth.example.com",
    # other schemes and malformed schemes
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://auth.example.com/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://auth.example.com/",
    "https:evil.com",
    "https:/evil.com",
    "https:auth.example.com",
    "https:///evil.com",
    "https://",
    "https://:443/",
    "ws://auth.example.com/",
    # downgrade
    "http://auth.example.com/",
    "http://tools.example.com/",
    # whitespace, controls and non-ASCII anywhere
    "https://auth.example.com/\x00",
    "https://auth.example.com/a b",
    "https://auth.example.com/%00",
    "https://auth.example.com\t.evil.com/",
    "\x00https://auth.example.com/",
    " https://auth.example.com/",
    "https://auth.example.com\u3002evil.com/",
    "https://auth\uff0eexample\uff0ecom/",
    "https://\uff41uth.example.com/",
    "/\u2215\u2215evil.com",
    # broken authorities
    "https://[evil.com/",
    "https://auth.example.com:80:80/",
    "https://auth.example.com:x/",
    "https://auth.example.com:+443/",
    # nothing or not a path
    "",
    "evil.com",
    "?rd=/x",
    "#/x",
    ".",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_refuses_hostile_targets(target: str) -> None:
    """Anything that could leave idgate's host and the allowed domains is refused."""
    assert vet(target) is None


def test_the_hostile_table_is_large() -> None:
    """The refusal table covers at least fifty distinct hostile targets."""
    assert len(set(HOSTILE)) >= 50


def test_an_http_public_url_accepts_http_targets() -> None:
    """Without https on public_url, http targets on allowed hosts are not a downgrade."""
    public_url = "http://localhost:4180"
    assert vet("http://localhost:4180/x", public_url=public_url) == "http://localhost:4180/x"
    assert vet("http://tools.example.com/", public_url=public_url) == "http://tools.example.com/"
    assert vet("https://tools.example.com/", public_url=public_url) == "https://tools.example.com/"


def test_public_url_s_host_on_another_port_is_refused() -> None:
    """public_url's own host on any other port is another origin, so it is refused; its default
    port written out or left off is the same origin."""
    assert vet("http://localhost:9000/x", public_url="http://localhost:4180") is None
    assert vet("http://localhost/x", public_url="http://localhost:4180") is None
    assert vet("http://localhost:80/x", public_url="http://localhost") == "http://localhost:80/x"
    assert vet("https://auth.example.com:443/") == "https://auth.example.com:443/"
    assert vet("https://auth.example.com/", public_url="https://auth.example.com:443") == (
        "https://auth.example.com/"
    )
    assert vet("https://auth.example.com:8443/", public_url="https://auth.example.com") is None


def test_an_entry_with_a_port_allows_that_port_only() -> None:
    """`tools.example.com:8443` allows that host on port 8443, and not on the default port;
    `.apps.example.com:8443` does the same for the subdomains."""
    allowed = ("tools.example.com:8443", ".apps.example.com:8443")

    def check(target: str) -> str | None:
        return vet_redirect(target, public_url=PUBLIC_URL, allowed_domains=allowed)

    assert check("https://tools.example.com:8443/x") == "https://tools.example.com:8443/x"
    assert check("https://a.apps.example.com:8443/") == "https://a.apps.example.com:8443/"
    assert check("https://tools.example.com/x") is None
    assert check("https://tools.example.com:9443/x") is None
    assert check("https://a.apps.example.com/") is None
    assert check("https://apps.example.com:8443/") is None


def test_an_entry_naming_the_default_port_means_no_port() -> None:
    """`tools.example.com:443` allows https://tools.example.com/ with or without `:443`."""
    allowed = ("tools.example.com:443",)
    for target in ("https://tools.example.com/", "https://tools.example.com:443/"):
        assert vet_redirect(target, public_url=PUBLIC_URL, allowed_domains=allowed) == target
    assert (
        vet_redirect(
            "https://tools.example.com:8443/", public_url=PUBLIC_URL, allowed_domains=allowed
        )
        is None
    )


def test_a_malformed_entry_allows_nothing() -> None:
    """An entry with a port that is not a number matches no target (the loader refuses it)."""
    allowed = ("tools.example.com:x", "tools.example.com:")
    assert (
        vet_redirect("https://tools.example.com/", public_url=PUBLIC_URL, allowed_domains=allowed)
        is None
    )


def test_a_dotted_entry_allows_subdomains_but_not_the_apex() -> None:
    """`.apps.example.com` allows its subdomains on a dot boundary, not apps.example.com itself."""
    assert vet("https://x.apps.example.com/") == "https://x.apps.example.com/"
    assert vet("https://apps.example.com/") is None
    assert vet("https://xapps.example.com/") is None


def test_a_plain_entry_allows_exactly_that_host() -> None:
    """`tools.example.com` allows that host, not its subdomains."""
    assert vet("https://tools.example.com/") == "https://tools.example.com/"
    assert vet("https://a.tools.example.com/") is None


def test_allowed_domains_compare_case_insensitively() -> None:
    """Configured domains in mixed case still match the lower-cased host."""
    assert (
        vet_redirect("https://x.corp.io/", public_url=PUBLIC_URL, allowed_domains=[".Corp.IO"])
        == "https://x.corp.io/"
    )


def test_ip_literal_public_url_allows_its_own_host() -> None:
    """A public_url on an IPv6 literal accepts targets on that same literal and port."""
    public_url = "http://[::1]:4180"
    assert vet("http://[::1]:4180/x", public_url=public_url) == "http://[::1]:4180/x"
    assert vet("http://[::1]:9000/x", public_url=public_url) is None
    assert vet("http://[::2]:4180/x", public_url=public_url) is None


def test_nothing_is_allowed_without_a_host_match() -> None:
    """With no allowed domains and an unparsable public_url, only local paths pass."""
    assert vet_redirect("/x", public_url="", allowed_domains=()) == "/x"
    assert vet_redirect("https://a.com/", public_url="", allowed_domains=()) is None
