"""Who the dev issuer knows: three demo users and the OAuth clients registered with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoUser:
    username: str
    """The `sub` and `preferred_username` of every token issued for this user."""
    name: str
    email: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoClient:
    client_id: str
    secret: str = field(repr=False)
    """Checked with client_secret_basic (RFC 6749 2.3.1); the only client authentication offered."""
    redirect_uris: frozenset[str] = frozenset()
    """Exact URIs the code flow may return to; empty: the client cannot sign users in."""
    post_logout_redirect_uris: frozenset[str] = frozenset()
    service_groups: tuple[str, ...] = ()
    """Groups of the client's own client_credentials tokens."""
    client_credentials: bool = False
    """May use the client_credentials grant (a service calling an API as itself)."""


USERS: Final = (
    DemoUser(
        username="alice",
        name="Alice Anderson",
        email="alice@example.com",
        groups=("engineering", "admins"),
    ),
    DemoUser(username="bob", name="Bob Brown", email="bob@example.com", groups=("engineering",)),
    DemoUser(username="carol", name="Carol Clark", email="carol@example.com", groups=("sales",)),
)
