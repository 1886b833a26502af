"""An issuer's `claims`: ordered lists, JSON Pointers, dotted paths, space-separated groups."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.model import ClaimMapping
from proxy.identity.claims import claim_at, principal_from_claims
from proxy.identity.principal import CredentialSource, Principal

AUTH0_ROLES = "https://example.com/roles"


def principal(claims: dict[str, Any], **mapping: tuple[str, ...]) -> Principal | None:
    return principal_from_claims(
        claims,
        ClaimMapping(**mapping),
        issuer="services",
        source=CredentialSource.BEARER,
        expires_at=2e9,
    )


def mapped(claims: dict[str, Any], **mapping: tuple[str, ...]) -> Principal:
    found = principal(claims, **mapping)
    assert found is not None
    return found


def test_the_first_user_claim_present_names_the_user() -> None:
    """`[preferred_username, sub]`: a browser user by name, a service token (glewlwyd's carry
    only sub, scope, client_id and aud) by its subject, from one mapping."""
    user_claims = ("preferred_username", "sub")
    browser = mapped({"sub": "8f3a", "preferred_username": "alice"}, user=user_claims)
    service = mapped({"sub": "billing-job", "client_id": "billing"}, user=user_claims)

    assert browser.user == "alice"
    assert service.user == "billing-job"
    assert browser.issuer == service.issuer == "services"


@pytest.mark.parametrize("username", ["", 7, None, ["alice"]])
def test_a_user_claim_that_is_no_name_falls_through_to_the_next(username: Any) -> None:
    found = mapped(
        {"preferred_username": username, "sub": "s-1"}, user=("preferred_username", "sub")
    )

    assert found.user == "s-1"


def test_no_user_claim_present_names_no_one() -> None:
    assert principal({"client_id": "x"}, user=("preferred_username", "sub")) is None


def test_a_json_pointer_reaches_a_claim_whose_name_holds_slashes_and_dots() -> None:
    """Auth0's namespaced claims: RFC 6901 writes `/` as `~1` (and `~` as `~0`)."""
    claims = {"sub": "a", AUTH0_ROLES: ["admins", "ops"], "x~y": {"a/b": "deep"}}

    found = mapped(claims, groups=("/https:~1~1example.com~1roles",))

    assert found.groups == {"admins", "ops"}
    assert claim_at(claims, "/x~0y/a~1b") == "deep"


def test_a_json_pointer_indexes_arrays_and_misses_cleanly() -> None:
    claims = {"groups": [{"name": "first"}, {"name": "second"}]}

    assert claim_at(claims, "/groups/1/name") == "second"
    assert claim_at(claims, "/groups/2/name") is None
    assert claim_at(claims, "/groups/01/name") is None
    assert claim_at(claims, "/groups/-/name") is None
    assert claim_at(claims, "/missing") is None


def test_a_dotted_path_reaches_into_nested_objects() -> None:
    """Keycloak's `realm_access.roles`; a key holding dots is still found whole first."""
    claims = {"sub": "a", "realm_access": {"roles": ["admin"]}, "a.b": "whole"}

    found = mapped(claims, groups=("realm_access.roles",))

    assert found.groups == {"admin"}
    assert claim_at(claims, "a.b") == "whole"


def test_groups_may_be_one_space_separated_string() -> None:
    found = mapped({"sub": "a", "groups": "admins  ops"})

    assert found.groups == {"admins", "ops"}


def test_the_first_groups_claim_present_wins_even_when_empty() -> None:
    """An issuer that says "no groups" in its first claim is not second-guessed by a later one."""
    found = mapped({"sub": "a", "groups": [], "roles": ["admins"]}, groups=("groups", "roles"))
    fallback = mapped({"sub": "a", "roles": ["admins"]}, groups=("groups", "roles"))

    assert found.groups == frozenset()
    assert fallback.groups == {"admins"}


def test_the_first_email_claim_that_is_a_string_is_the_email() -> None:
    found = mapped({"sub": "a", "upn": "a@example.com"}, email=("email", "upn"))

    assert found.email == "a@example.com"
