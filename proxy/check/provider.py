"""What the provider says about idgate's `oidc` settings: discovery, keys, client, redirect URI.

Each check asks the provider the way idgate will at run time (the same discovery, key and flow
code), so a pass means the running proxy gets the same answers. Nothing here signs anybody in:
the client check spends a made-up authorization code, the redirect check stops at the
provider's first answer to a sign-in request.
"""

from __future__ import annotations

import secrets
from typing import Final
from urllib.parse import parse_qs, urlsplit

import aiohttp

from proxy.check.findings import Finding, Outcome
from proxy.config.model import Settings
from proxy.oidc.discovery import (
    WELL_KNOWN_PATH,
    ProviderError,
    ProviderMetadata,
    fetch_json_object,
    fetch_metadata,
)
from proxy.oidc.flow import AuthorizationRequest, CodeFlow, FlowError, FlowFailure
from proxy.oidc.jwks import parse_key_set

#: RFC 6749 5.2: invalid_grant means "The provided authorization grant (e.g., authorization code
#: ...) is invalid", an answer the provider gives only after authenticating the client.
_CLIENT_VERDICTS: Final = {
    FlowFailure.INVALID_GRANT: (
        Outcome.OK,
        "the token endpoint authenticated the client (a made-up code was refused: invalid_grant)",
    ),
    FlowFailure.INVALID_CLIENT: (
        Outcome.FAILED,
        (
            "the token endpoint refused the client (invalid_client): check oidc.client_id and "
            "oidc.client_secret, and the client's token endpoint authentication method "
            "(client_secret_basic)"
        ),
    ),
    FlowFailure.UNAUTHORIZED_CLIENT: (
        Outcome.FAILED,
        (
            "the client may not use the authorization code grant (unauthorized_client): allow "
            "it at the provider"
        ),
    ),
    FlowFailure.PROVIDER_UNAVAILABLE: (Outcome.FAILED, ""),
    FlowFailure.UNSUPPORTED: (Outcome.UNCHECKED, ""),
}


async def check_provider(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    """Discovery, keys, client credentials and redirect URI, in that order; a step that needs
    an earlier one's answer is reported unchecked when that one failed."""
    oidc = settings.oidc
    timeout = oidc.http_timeout_seconds
    found: list[Finding] = []
    metadata: ProviderMetadata | None = None
    discovery_url = oidc.issuer.rstrip("/") + WELL_KNOWN_PATH
    try:
        metadata = await fetch_metadata(http, oidc.issuer, timeout=timeout)
        found.append(Finding("discovery", Outcome.OK, f"{discovery_url}: issuer matches exactly"))
    except ProviderError as error:
        if oidc.jwks_uri is None:
            found.append(Finding("discovery", Outcome.FAILED, str(error)))
        else:
            # A bearer-only setup: tokens verify against oidc.jwks_uri; sign-in would fail.
            detail = f"{error}; bearer tokens use oidc.jwks_uri, browser sign-in needs discovery"
            found.append(Finding("discovery", Outcome.UNCHECKED, detail))

    jwks_uri = oidc.jwks_uri or (metadata.jwks_uri if metadata else None)
    if jwks_uri is None:
        found.append(Finding("keys", Outcome.UNCHECKED, "no jwks_uri without discovery"))
    else:
        found.append(await _check_keys(settings, http, jwks_uri))

    if metadata is None:
        found.extend(
            Finding(subject, Outcome.UNCHECKED, "needs the discovery document")
            for subject in ("client", "redirect URI")
        )
        return found
    flow = CodeFlow(oidc, metadata, http)
    found.append(await _check_client(settings, flow))
    found.append(await _check_redirect(settings, flow, http))
    return found


async def _check_keys(settings: Settings, http: aiohttp.ClientSession, jwks_uri: str) -> Finding:
    algorithms = settings.oidc.algorithms
    try:
        document = await fetch_json_object(
            http, jwks_uri, timeout=settings.oidc.http_timeout_seconds
        )
        keys = parse_key_set(document, frozenset(algorithms))
    except ProviderError as error:
        return Finding(
            "keys", Outcome.FAILED, f"{error}; oidc.algorithms allows {', '.join(algorithms)}"
        )
    usable = sorted({alg for _, alg in keys.keys})
    return Finding("keys", Outcome.OK, f"{jwks_uri}: {keys.count} usable for {', '.join(usable)}")


async def _check_client(settings: Settings, flow: CodeFlow) -> Finding:
    try:
        await flow.exchange(
            f"idgate-check-{secrets.token_urlsafe(16)}",
            code_verifier=secrets.token_urlsafe(48),
            redirect_uri=settings.redirect_uri,
        )
    except FlowError as error:
        outcome, detail = _CLIENT_VERDICTS.get(
            error.error,
            (Outcome.UNCHECKED, f"the token endpoint's answer cannot tell ({error.error.value})"),
        )
        return Finding("client", outcome, detail or str(error))
    return Finding("client", Outcome.FAILED, "the token endpoint accepted a made-up code")


async def _check_redirect(
    settings: Settings, flow: CodeFlow, http: aiohttp.ClientSession
) -> Finding:
    """A sign-in request as idgate sends it (scopes, prompt, authorization_params included):
    pushed to the PAR endpoint when the provider has one, which answers for the client and the
    redirect URI; otherwise sent to the authorization endpoint, where providers answer a
    registered redirect URI with their login (a redirect) and an unknown one with an error page,
    which they must not redirect (RFC 6749 4.1.2.1)."""
    redirect_uri = settings.redirect_uri
    subject = "redirect URI"
    try:
        authorization = flow.authorization_request(redirect_uri=redirect_uri)
    except FlowError as error:
        return Finding(subject, Outcome.UNCHECKED, str(error))
    pushed = await _pushed_verdict(settings, flow, authorization)
    if pushed is not None:
        return Finding(subject, *pushed)
    url = authorization.url
    timeout = aiohttp.ClientTimeout(total=settings.oidc.http_timeout_seconds)
    try:
        async with http.get(url, allow_redirects=False, timeout=timeout) as response:
            status, location = response.status, response.headers.get("Location", "")
    except (TimeoutError, aiohttp.ClientError) as error:
        return Finding(subject, Outcome.FAILED, f"authorization endpoint: {type(error).__name__}")
    return Finding(subject, *redirect_verdict(settings, status, location))


async def _pushed_verdict(
    settings: Settings, flow: CodeFlow, authorization: AuthorizationRequest
) -> tuple[Outcome, str] | None:
    """The PAR endpoint's verdict; None for a provider without one."""
    try:
        await flow.push_authorization_request(authorization)
    except FlowError as error:
        if error.error is FlowFailure.UNSUPPORTED:
            return None
        if error.error is FlowFailure.INVALID_CLIENT:
            # The client line reports it; the redirect URI was never looked at.
            return Outcome.UNCHECKED, "the PAR endpoint refused the client (invalid_client)"
        if error.error is FlowFailure.PROVIDER_UNAVAILABLE:
            return Outcome.FAILED, str(error)
        return (
            Outcome.FAILED,
            (
                f"the PAR endpoint refused the sign-in request ({error}): register "
                f"{settings.redirect_uri} for client {settings.oidc.client_id!r}, or fix "
                "public_url"
            ),
        )
    return Outcome.OK, f"{settings.redirect_uri}: accepted by the PAR endpoint (RFC 9126)"


def redirect_verdict(settings: Settings, status: int, location: str) -> tuple[Outcome, str]:
    """What the authorization endpoint's first answer (`status`, `Location`) to a sign-in
    request says about the redirect URI."""
    redirect_uri = settings.redirect_uri
    if 300 <= status < 400 and location.startswith(redirect_uri):
        # RFC 6749 4.1.2.1: errors other than a bad redirect URI go back to the client.
        error_code = parse_qs(urlsplit(location).query).get("error", ["(none)"])[0]
        return (
            Outcome.FAILED,
            f"{redirect_uri} is accepted, but the sign-in request was refused: {error_code[:80]}",
        )
    if 300 <= status < 400:
        return Outcome.OK, f"{redirect_uri}: the provider goes on to its login"
    if 400 <= status < 500:
        return (
            Outcome.FAILED,
            (
                f"the provider refused the sign-in request (HTTP {status}): register "
                f"{redirect_uri} for client {settings.oidc.client_id!r}, or fix public_url"
            ),
        )
    if status >= 500:
        return Outcome.FAILED, f"authorization endpoint answered HTTP {status}"
    return (
        Outcome.UNCHECKED,
        (
            f"the provider answered HTTP {status} with a page (its login or an error): sign in "
            "once in a browser to confirm"
        ),
    )
