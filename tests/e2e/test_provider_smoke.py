"""The test OpenID provider itself: what every other end-to-end test builds on."""

from typing import Any

import aiohttp
import jwt
import pytest

from .conftest import API_AUDIENCE, OidcProvider, ProviderError

CODE_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.json()


async def _jwks(provider: OidcProvider) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(await _get_json(f"{provider.issuer}/jwks"))


async def _verify(provider: OidcProvider, token: str, audience: str = API_AUDIENCE) -> Any:
    key = (await _jwks(provider))[jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=provider.issuer)


async def test_discovery_names_the_issuer_and_its_rs256_jwks(oidc_provider: OidcProvider) -> None:
    """Discovery reports the issuer it is served from, and its jwks_uri serves RS256 RSA keys."""
    metadata = await _get_json(f"{oidc_provider.issuer}/.well-known/openid-configuration")

    assert metadata["issuer"] == oidc_provider.issuer
    assert metadata["jwks_uri"] == f"{oidc_provider.issuer}/jwks"
    jwks = await _get_json(metadata["jwks_uri"])
    assert [(key["kty"], key["alg"]) for key in jwks["keys"]] == [("RSA", "RS256")]
    assert all("d" not in key for key in jwks["keys"])


async def test_discovery_offers_what_the_browser_flow_needs(oidc_provider: OidcProvider) -> None:
    """Discovery offers code + PKCE S256, refresh tokens, end_session and back-channel logout."""
    metadata = await _get_json(f"{oidc_provider.issuer}/.well-known/openid-configuration")

    assert "S256" in metadata["code_challenge_methods_supported"]
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert metadata["end_session_endpoint"] == f"{oidc_provider.issuer}/session/end"
    assert metadata["backchannel_logout_supported"] is True
    assert {"email", "groups"} <= set(metadata["claims_supported"])


async def test_client_credentials_token_is_an_rs256_jwt_for_the_service(
    oidc_provider: OidcProvider,
) -> None:
    """A service's token names it as sub, carries its configured groups and the API audience."""
    token = await oidc_provider.client_credentials_token("service-a", "service-a-secret")

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = await _verify(oidc_provider, token)
    assert claims["sub"] == "service-a"
    assert claims["aud"] == API_AUDIENCE
    assert claims["groups"] == ["services", "deployers"]


async def test_service_without_configured_claims_gets_no_groups(
    oidc_provider: OidcProvider,
) -> None:
    """service-b's token has no groups claim at all."""
    token = await oidc_provider.client_credentials_token("service-b", "service-b-secret")

    claims = await _verify(oidc_provider, token)
    assert claims["sub"] == "service-b"
    assert "groups" not in claims


async def test_client_credentials_with_a_wrong_secret_is_refused(
    oidc_provider: OidcProvider,
) -> None:
    """The token endpoint really authenticates the client."""
    with pytest.raises(ProviderError) as refused:
        await oidc_provider.client_credentials_token("service-a", "not-the-secret")

    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("username", "email", "groups"),
    [
        ("alice", "alice@example.com", ["engineering", "admins"]),
        ("bob", "bob@example.com", ["engineering"]),
        ("carol", "carol@example.org", None),
    ],
)
async def test_user_token_carries_email_and_groups(
    oidc_provider: OidcProvider, username: str, email: str, groups: list[str] | None
) -> None:
    """A test user's token has sub = username, their email, and groups only if they have any."""
    token = await oidc_provider.token_for_user(username)

    claims = await _verify(oidc_provider, token)
    assert claims["sub"] == username
    assert claims["email"] == email
    assert claims.get("groups") == groups


async def test_user_token_for_another_audience(oidc_provider: OidcProvider) -> None:
    """Any https resource on *.idgate.test can be the audience, for wrong-audience tests."""
    token = await oidc_provider.token_for_user("bob", audience="https://other.idgate.test")

    claims = await _verify(oidc_provider, token, audience="https://other.idgate.test")
    assert claims["aud"] == "https://other.idgate.test"


async def test_unknown_user_and_foreign_resource_are_refused(oidc_provider: OidcProvider) -> None:
    """Only the known test users, and only *.idgate.test audiences, get tokens."""
    with pytest.raises(ProviderError) as unknown:
        await oidc_provider.token_for_user("mallory")
    with pytest.raises(ProviderError) as foreign:
        await oidc_provider.token_for_user("alice", audience="https://api.example.com")

    assert unknown.value.error == "invalid_grant"
    assert foreign.value.error == "invalid_target"


async def test_signed_tokens_use_the_published_key_or_an_unpublished_one(
    oidc_provider: OidcProvider,
) -> None:
    """sign() defaults iss/exp and drops None claims; "unpublished" signs with a kid not in JWKS."""
    token = await oidc_provider.sign({"sub": "alice", "aud": API_AUDIENCE, "iat": None})
    foreign = await oidc_provider.sign({"sub": "alice"}, key="unpublished")

    claims = await _verify(oidc_provider, token)
    assert claims["sub"] == "alice"
    assert claims["exp"] > 0
    assert "iat" not in claims
    published = {key.key_id for key in (await _jwks(oidc_provider)).keys}
    assert jwt.get_unverified_header(foreign)["kid"] not in published


async def test_shared_provider_refuses_changes(oidc_provider: OidcProvider) -> None:
    """Rotating keys, stopping or restarting the module-wide provider is refused, keeping tests
    independent."""
    with pytest.raises(RuntimeError, match="fresh_oidc_provider"):
        await oidc_provider.rotate_keys()
    with pytest.raises(RuntimeError, match="fresh_oidc_provider"):
        oidc_provider.stop()
    with pytest.raises(RuntimeError, match="fresh_oidc_provider"):
        oidc_provider.restart()


async def test_key_rotation_changes_the_kid_and_keeps_the_old_key(
    fresh_oidc_provider: OidcProvider,
) -> None:
    """After rotation tokens carry the new kid; the old key stays in the JWKS by default."""
    before = await fresh_oidc_provider.token_for_user("alice")
    old_kid = jwt.get_unverified_header(before)["kid"]

    new_kid = await fresh_oidc_provider.rotate_keys()
    after = await fresh_oidc_provider.token_for_user("alice")

    assert new_kid != old_kid
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert (await _verify(fresh_oidc_provider, after))["sub"] == "alice"
    assert (await _verify(fresh_oidc_provider, before))["sub"] == "alice"


async def test_key_rotation_can_drop_the_old_key(fresh_oidc_provider: OidcProvider) -> None:
    """With keep_old=False only the new key is published, so old tokens no longer verify."""
    before = await fresh_oidc_provider.client_credentials_token("service-a", "service-a-secret")

    new_kid = await fresh_oidc_provider.rotate_keys(keep_old=False)

    assert [key.key_id for key in (await _jwks(fresh_oidc_provider)).keys] == [new_kid]
    with pytest.raises(KeyError):
        await _verify(fresh_oidc_provider, before)


async def test_web_client_accepts_its_configured_redirect_uri(
    fresh_oidc_provider: OidcProvider,
) -> None:
    """Once configured, the "idgate" client's authorization request leads to the login page."""
    callback = "http://127.0.0.1:9/oauth2/callback"
    await fresh_oidc_provider.configure_web_client(
        redirect_uris=[callback],
        post_logout_redirect_uris=["http://127.0.0.1:9/"],
        backchannel_logout_uri="http://127.0.0.1:9/oauth2/backchannel_logout",
    )
    params = {
        "client_id": "idgate",
        "response_type": "code",
        "scope": "openid email groups offline_access",
        "redirect_uri": callback,
        "code_challenge": CODE_CHALLENGE,
        "code_challenge_method": "S256",
        "state": "state",
        "nonce": "nonce",
    }

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{fresh_oidc_provider.issuer}/auth", params=params, allow_redirects=False
        ) as resp,
    ):
        assert resp.status == 303
        assert resp.headers["Location"].startswith("/interaction/")


async def test_invalid_web_client_change_is_refused(fresh_oidc_provider: OidcProvider) -> None:
    """A redirect URI oidc-provider rejects is reported, and the provider keeps serving."""
    with pytest.raises(ProviderError, match="redirect_uris") as refused:
        await fresh_oidc_provider.configure_web_client(redirect_uris=["not a url"])

    assert refused.value.error == "invalid_request"
    assert await fresh_oidc_provider.token_for_user("alice")


async def test_stop_takes_the_provider_down(fresh_oidc_provider: OidcProvider) -> None:
    """After stop() nothing listens at the issuer, so "provider unreachable" is testable."""
    fresh_oidc_provider.stop()

    with pytest.raises(aiohttp.ClientConnectionError):
        await _get_json(f"{fresh_oidc_provider.issuer}/jwks")


async def test_restart_serves_the_same_issuer_with_the_keys_it_last_had(
    fresh_oidc_provider: OidcProvider,
) -> None:
    """A stopped provider restarts on its port with its rotated keys, so old tokens still verify
    there and new ones are signed with the key that was current before the restart."""
    before = await fresh_oidc_provider.token_for_user("alice")
    current = await fresh_oidc_provider.rotate_keys()
    published = [key.key_id for key in (await _jwks(fresh_oidc_provider)).keys]
    fresh_oidc_provider.stop()

    fresh_oidc_provider.restart()
    after = await fresh_oidc_provider.token_for_user("alice")

    assert [key.key_id for key in (await _jwks(fresh_oidc_provider)).keys] == published
    assert jwt.get_unverified_header(after)["kid"] == current
    assert (await _verify(fresh_oidc_provider, before))["sub"] == "alice"
    assert (await _verify(fresh_oidc_provider, after))["sub"] == "alice"
