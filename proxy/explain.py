"""`idgate explain`: which route a request matches and what policy decides, without a server.

It runs the very functions the server runs (normalize_path, RouteTable, evaluate), so what it
prints is what the proxy would do for the same host, path, method and identity.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from proxy.config.model import BROWSER_ISSUER, IssuerSettings, PolicyMode, Route, Settings
from proxy.config.values import InvalidValueError, trust_domain_of
from proxy.endpoints.own_paths import Endpoint, answers_robots, own_endpoint
from proxy.errors import BadRequest, InvalidToken
from proxy.identity.bearer import check_accepted
from proxy.identity.claims import claim_strings, sign_in_from_claims
from proxy.identity.issuers.kinds import KIND_RULES
from proxy.identity.issuers.kubernetes import service_account_of_user
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.decision import Decision, Outcome
from proxy.policy.evaluate import evaluate
from proxy.policy.routes import RouteTable
from proxy.reasons import Reason
from proxy.stages.paths import NormalizedPath, normalize_path

#: 9999-12-31T23:59:59Z: an explained identity never expires.
_FAR_FUTURE: Final = 253402300799.0

_STATUS_OF: Final = {
    Outcome.ALLOW: 200,
    Outcome.WOULD_DENY: 200,
    Outcome.UNAUTHENTICATED: 401,
    Outcome.DENY: 403,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    method: str
    url: str
    """As given, without query and fragment: never matched, and a query may carry a token."""
    host: str
    """Lower case, no port; empty when the URL names no host (or is malformed)."""
    path: NormalizedPath | None
    """None when the URL or its path is malformed; `problem` says why."""
    route: Route | None
    decision: Decision | None
    status: int
    """What the proxy would answer; 202 for an allowed decision-only route (via /oauth2/auth)."""
    principal: Principal | None = None
    problem: str | None = None
    endpoint: Endpoint | None = None
    """Set when the path is one of idgate's own endpoints, which no route or policy governs."""

    def render(self) -> str:
        lines = [f"request:   {self.method} {self.url}", f"identity:  {_who(self.principal)}"]
        if self.path is None:
            lines.append(f"path:      malformed: {self.problem}")
            lines.append(f"answer:    {self.status} (refused before any route is consulted)")
            return "\n".join(lines)
        lines.append(f"host:      {self.host or '(none)'}")
        lines.append(f"path:      {self.path.decoded} (sent upstream as {self.path.encoded})")
        if self.endpoint is not None:
            lines.append(f"endpoint:  idgate's own `{self.endpoint}` endpoint; routes do not apply")
            return "\n".join(lines)
        if self.route is None or self.decision is None:
            lines.append("route:     no route: 404")
            lines.append(f"answer:    {self.status} (no route matches; nothing is open by default)")
            return "\n".join(lines)
        lines.append(f"route:     {_describe(self.route)}")
        lines.append(f"decision:  {self.decision.outcome}")
        lines.append(f"reason:    {self.decision.reason}")
        lines.append(f"rule:      {_rule(self.decision)}")
        lines.append(f"matched:   {self.decision.matched or '-'}")
        lines.append(f"answer:    {self.status} ({_consequence(self.route, self.decision)})")
        return "\n".join(lines)


def explain(
    settings: Settings, *, method: str, url: str, principal: Principal | None
) -> Explanation:
    """What the proxy would do with `method url` from `principal` under `settings`."""
    method = method.upper()
    url_shown = re.split(r"[?#]", url, maxsplit=1)[0]
    try:
        host, raw_path, path = _split_url(url)
    except BadRequest as error:
        return Explanation(
            method=method,
            url=url_shown,
            host="",
            path=None,
            route=None,
            decision=None,
            status=error.status,
            principal=principal,
            problem=error.public_message,
        )
    route = RouteTable(settings.routes).match(host=host, path=path.decoded, method=method)
    endpoint = own_endpoint(raw_path, path.decoded, settings.prefix)
    if endpoint is Endpoint.ROBOTS and not answers_robots(route):
        endpoint = None
    if endpoint is not None:
        return Explanation(
            method=method,
            url=url_shown,
            host=host,
            path=path,
            route=None,
            decision=None,
            status=200,
            principal=principal,
            endpoint=endpoint,
        )
    decision = None if route is None else _decide(route, principal)
    return Explanation(
        method=method,
        url=url_shown,
        host=host,
        path=path,
        route=route,
        decision=decision,
        status=_status(route, decision),
        principal=principal,
    )


def _decide(route: Route, principal: Principal | None) -> Decision:
    """The route's decision, after its `issuers` had their say as the verifier has it."""
    issuer = None if principal is None else principal.issuer
    try:
        check_accepted(issuer, route.issuers)
    except InvalidToken:
        return Decision(
            outcome=Outcome.UNAUTHENTICATED,
            reason=Reason.INVALID_TOKEN,
            route=route,
            matched=f"issuer:{issuer}",
        )
    return evaluate(route, principal)


def principal_for_explain(
    *,
    user: str | None,
    email: str | None,
    groups: Sequence[str],
    claims: Mapping[str, Any],
    issuer: str = BROWSER_ISSUER,
) -> Principal | None:
    """The identity given on the command line, as a bearer token of `issuer` (its name) would
    yield it; None: anonymous. A user `system:serviceaccount:<namespace>:<name>` is that
    Kubernetes service account."""
    if user is None:
        return None
    account = service_account_of_user(user)
    return Principal(
        user=user,
        email=email,
        groups=frozenset(groups),
        claims=MappingProxyType(dict(claims)),
        source=CredentialSource.BEARER,
        expires_at=_FAR_FUTURE,
        sign_in=sign_in_from_claims(claims),
        service_account=None if account is None else account.qualified,
        issuer=issuer,
    )


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a signed JWT (JWS compact form), decoded WITHOUT checking its signature,
    issuer, audience or expiry: explain shows what policy makes of them, never whether the proxy
    would believe them. ValueError says what is wrong with the token, without repeating it."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("not a signed JWT: expected three base64url parts separated by dots")
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        raise ValueError("its payload is not base64url-encoded JSON") from None
    if not isinstance(claims, dict):
        raise ValueError("its payload is not a JSON object")  # noqa: TRY004 (one error kind)
    return claims


def token_issuer(claims: Mapping[str, Any], settings: Settings) -> IssuerSettings | None:
    """The configured issuer a token with these claims would be verified by, as the proxy picks
    it: by its exact `iss`, or for a SPIFFE issuer without one, by the trust domain of `sub`."""
    issuers = settings.all_issuers
    issuer = claims.get("iss")
    named = [candidate for candidate in issuers if candidate.issuer == issuer]
    if named:
        return next((candidate for candidate in named if candidate.audiences), named[0])
    subject = claims.get("sub")
    try:
        domain = trust_domain_of(subject) if isinstance(subject, str) else None
    except InvalidValueError:
        domain = None
    return next(
        (
            candidate
            for candidate in issuers
            if candidate.issuer is None
            and candidate.spiffe is not None
            and candidate.spiffe.trust_domain == domain
        ),
        None,
    )


def principal_from_token(claims: Mapping[str, Any], issuer: IssuerSettings) -> Principal | None:
    """The identity a bearer token of `issuer` with these claims yields, by its claim mapping;
    None when it names no user or its kind refuses the claims (the proxy would refuse it)."""
    exp = claims.get("exp")
    expires_at = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    try:
        return KIND_RULES[issuer.kind].principal(claims, issuer, expires_at or _FAR_FUTURE)
    except InvalidToken:
        return None


def token_notes(
    claims: Mapping[str, Any], issuer: IssuerSettings | None, *, now: float | None = None
) -> list[str]:
    """What explain says about a token given with --token: that nothing was verified, and each
    plain reason the proxy would refuse it before any policy."""
    unverified = (
        "claims decoded WITHOUT verification: the signature, issuer, audience and expiry are not"
        " checked here (the proxy checks them all)"
    )
    notes = [unverified]
    if issuer is None:
        notes.append(
            f"iss is {claims.get('iss')!r}, which no configured issuer has: the proxy would"
            " refuse it"
        )
    else:
        notes.append(f"read as a token of issuer {issuer.name}")
        if not claim_strings(claims.get("aud")) & set(issuer.audiences):
            notes.append(
                f"aud names none of issuer {issuer.name}'s audiences: the proxy would refuse it"
            )
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp < (time.time() if now is None else now):
        notes.append("exp has passed: the proxy would refuse it")
    if issuer is not None and principal_from_token(claims, issuer) is None:
        notes.append(
            f"no user in {', '.join(issuer.claims.user)} (issuer {issuer.name}'s user claims):"
            " the proxy would refuse it"
        )
    return [f"token:     {note}" for note in notes]


def _split_url(url: str) -> tuple[str, str, NormalizedPath]:
    """(host, raw path, normalised path) of an absolute URL, or of a bare path (then no host)."""
    # urlsplit silently drops tabs and newlines; the server would refuse them, so refuse here.
    if any(char in url for char in "\t\r\n"):
        raise BadRequest("control character in URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise BadRequest("malformed URL") from None
    # The server keeps an IPv6 literal's brackets in the host it matches (`[::1]`).
    if ":" in host:
        host = f"[{host}]"
    raw_path = parts.path or "/"
    return host, raw_path, normalize_path(raw_path)


def _status(route: Route | None, decision: Decision | None) -> int:
    if route is None or decision is None:
        return 404
    if decision.lets_through and route.upstream is None:
        return 202
    return _STATUS_OF[decision.outcome]


def _who(principal: Principal | None) -> str:
    if principal is None:
        return "anonymous"
    groups = ", ".join(sorted(principal.groups)) or "none"
    issuer = f", issuer {principal.issuer}" if principal.issuer is not None else ""
    return f"user {principal.user}, email {principal.email or '-'}, groups {groups}{issuer}"


def _rule(decision: Decision) -> str:
    if decision.rule is None:
        return "-"
    if decision.reason is Reason.NOT_ALLOWED:
        return f"{decision.rule}: none of its conditions is met"
    return decision.rule


def _consequence(route: Route, decision: Decision) -> str:
    if decision.reason is Reason.STEP_UP:
        return "a more recent or stronger sign-in is required"
    if decision.reason is Reason.INVALID_TOKEN:
        return "the route does not accept this issuer's tokens"
    if decision.outcome is Outcome.UNAUTHENTICATED:
        return "not signed in"
    if decision.outcome is Outcome.DENY:
        return "forbidden"
    target = f"forwarded to {route.upstream}" if route.upstream else "/oauth2/auth allows it"
    if decision.outcome is Outcome.WOULD_DENY:
        return f"audit mode: {target}; logged and counted as would_deny"
    return target


def _describe(route: Route) -> str:
    methods = ",".join(sorted(route.methods)) if route.methods is not None else "any"
    upstream = route.upstream or "none (decision-only)"
    audit = ", audit mode" if route.policy.mode is PolicyMode.AUDIT else ""
    issuers = "" if route.issuers is None else f", issuers {','.join(sorted(route.issuers))}"
    return (
        f"{route.name} (host {route.host or 'any'}, path {route.path}, methods {methods},"
        f" upstream {upstream}{issuers}{audit})"
    )
