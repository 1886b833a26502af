"""Before any number is taken: each server really enforces the policy it is credited with.

Apache and idgate must pass a valid token and refuse every bad one (none, wrong group, issuer or
audience, expired, forged signature, `alg: none`); idgate also its session cookie and
`/oauth2/auth`, with the decision log written, the metrics listener answering and a signed
assertion reaching the upstream. nginx and the upstream check nothing; they must serve the body.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.idgate import ROUTE_NAME
from bench.nginx import BENCH_PATH, BODY, IDENTITY_PATH
from bench.tokens import OTHER_GROUP, Issuer

FORWARD_AUTH_PATH: Final = "/oauth2/auth"
UNAUTHORIZED: Final = frozenset({401})
#: mod_auth_openidc answers a failed `Require claim` on an OAuth 2.0 path with 401.
FORBIDDEN_OR_UNAUTHORIZED: Final = frozenset({401, 403})


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    target: str
    what: str
    ok: bool
    detail: str


def fetch(port: int, path: str, headers: Mapping[str, str]) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=dict(headers))
        response = connection.getresponse()
        return Answer(
            status=response.status, headers=dict(response.getheaders()), body=response.read()
        )
    finally:
        connection.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bad_tokens(issuer: Issuer) -> dict[str, str]:
    """Tokens each server must refuse with 401, by what is wrong with them."""
    now = int(time.time())
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "wrong issuer": issuer.token(iss="https://attacker.example"),
        "wrong audience": issuer.token(aud="https://other-api.example"),
        "expired": issuer.token(iat=now - 7200, exp=now - 3600),
        "forged signature": issuer.sign(issuer.claims("bench-user"), key=forger),
        "alg none": issuer.unsigned(),
    }


def _status(target: str, what: str, answer: Answer, expected: frozenset[int]) -> Check:
    ok = answer.status in expected
    return Check(
        target=target, what=what, ok=ok, detail=f"{answer.status}, want {sorted(expected)}"
    )


def _serves_body(target: str, port: int, headers: Mapping[str, str]) -> Check:
    answer = fetch(port, BENCH_PATH, headers)
    ok = answer.status == 200 and answer.body == BODY.encode()
    return Check(target=target, what="valid request served", ok=ok, detail=f"{answer.status}")


def pass_through(target: str, port: int, issuer: Issuer) -> list[Check]:
    """nginx and the upstream: no checks of their own, the body served."""
    return [_serves_body(target, port, bearer(issuer.token()))]


def bearer_enforced(
    target: str, port: int, issuer: Issuer, *, forbidden: frozenset[int]
) -> list[Check]:
    checks = [_serves_body(target, port, bearer(issuer.token()))]
    checks.append(_status(target, "no token", fetch(port, BENCH_PATH, {}), UNAUTHORIZED))
    wrong_group = fetch(port, BENCH_PATH, bearer(issuer.token(groups=[OTHER_GROUP])))
    checks.append(_status(target, "wrong group", wrong_group, forbidden))
    for what, token in bad_tokens(issuer).items():
        checks.append(_status(target, what, fetch(port, BENCH_PATH, bearer(token)), UNAUTHORIZED))
    return checks


def idgate_extras(
    target: str, port: int, metrics_port: int, issuer: Issuer, *, cookie: str
) -> list[Check]:
    """Session cookie, `/oauth2/auth`, the assertion upstream, and the metrics listener."""
    name, _, value = cookie.partition("=")
    tampered = {"Cookie": f"{name}={value[:-4]}{'BBBB' if value.endswith('AAAA') else 'AAAA'}"}
    original = {"X-Original-URI": BENCH_PATH, "X-Original-Method": "GET"}
    allowed = fetch(port, FORWARD_AUTH_PATH, original | bearer(issuer.token()))
    named = allowed.headers.get("X-Auth-Request-User") == "bench-user"
    wrong_group = bearer(issuer.token(groups=[OTHER_GROUP]))
    scrape = fetch(metrics_port, "/metrics", {})
    counted = scrape.status == 200 and b"idgate_requests_total{" in scrape.body
    return [
        _serves_body(target, port, {"Cookie": cookie}),
        _status(target, "tampered cookie", fetch(port, BENCH_PATH, tampered), UNAUTHORIZED),
        Check(
            target=target,
            what="forward-auth allowed",
            ok=allowed.status == 202 and named,
            detail=f"{allowed.status}",
        ),
        _status(
            target, "forward-auth no token", fetch(port, FORWARD_AUTH_PATH, original), UNAUTHORIZED
        ),
        _status(
            target,
            "forward-auth wrong group",
            fetch(port, FORWARD_AUTH_PATH, original | wrong_group),
            frozenset({403}),
        ),
        _assertion(target, port, issuer),
        Check(target=target, what="metrics listener", ok=counted, detail=f"{scrape.status}"),
    ]


def _assertion(target: str, port: int, issuer: Issuer) -> Check:
    """The upstream received X-Authenticated-Assertion, verifiable with idgate's `/oauth2/jwks`."""
    what = "signed assertion upstream"
    seen = fetch(port, IDENTITY_PATH, bearer(issuer.token()))
    keys = jwt.PyJWKSet.from_dict(json.loads(fetch(port, "/oauth2/jwks", {}).body))
    token = seen.body.decode().strip()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(key for key in keys.keys if key.key_id == kid)
        claims = jwt.decode(token, key, algorithms=[key.algorithm_name], audience=ROUTE_NAME)
    except (jwt.PyJWTError, StopIteration) as error:
        return Check(target=target, what=what, ok=False, detail=str(error))
    subject = claims.get("sub")
    return Check(target=target, what=what, ok=subject == "bench-user", detail=str(subject))


def decision_logged(target: str, log_text: str) -> Check:
    """At least one decision-log line (JSON with `decision` and `latency_ms`) reached the file."""
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "decision" in entry and "latency_ms" in entry:
            return Check(target=target, what="decision log", ok=True, detail=str(entry["decision"]))
    return Check(target=target, what="decision log", ok=False, detail="no decision line")
