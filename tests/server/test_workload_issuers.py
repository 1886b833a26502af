"""Workload identities through idgate over real HTTP: Kubernetes service-account tokens checked
against a cluster's API server, and SPIFFE JWT-SVIDs against a trust bundle.

No real cluster runs where these tests run, so the API server is a stand-in
(tests/support/kubernetes_api.py): TLS with its own CA, discovery and keys only for a caller
presenting the pod token from a file the tests rotate, and TokenReview.
"""

from __future__ import annotations

import base64
import ipaddress
import time
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.config.model import (
    ClientCertificateSettings,
    IssuerKind,
    IssuerSettings,
    Policy,
    Route,
    Rule,
    SpiffeSettings,
)
from tests.support.certificates import CertificateAuthority
from tests.support.gate import Gate, StartGate
from tests.support.issuer import SigningKey
from tests.support.kubernetes_api import StandInApiServer, serve_other_origin
from tests.support.upstream import EchoUpstream, serve_echo

AUDIENCE = "idgate"
SPIRE = "https://spire.example.org"
INVOICER = "spiffe://example.org/ns/billing/sa/invoicer"


def workload_routes(upstream: str) -> tuple[Route, ...]:
    def route(name: str, rule: Rule) -> Route:
        return Route(name=name, path=f"/{name}", upstream=upstream, policy=Policy(allow=rule))

    return (
        route("payments", Rule(service_accounts=frozenset({"payments/frontend"}))),
        route("metrics", Rule(service_accounts=frozenset({"monitoring/*"}))),
        route("invoices", Rule(spiffe_ids=frozenset({INVOICER}))),
    )


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> EchoUpstream:
    return await serve_echo(aiohttp_server)


async def cluster_gate(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer, **kubernetes: Any
) -> Gate:
    issuer = IssuerSettings(
        name="cluster",
        kind=IssuerKind.KUBERNETES,
        audiences=(AUDIENCE,),
        kubernetes=cluster.settings(**kubernetes),
        jwks_min_refresh_seconds=0.0,
    )
    return await start_gate(issuers=(issuer,), routes=workload_routes(upstream.url))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_service_account_token_opens_its_route_as_that_service_account(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    """The upstream learns the service account as Kubernetes names it; another route's
    service_accounts condition does not list it."""
    gate = await cluster_gate(start_gate, upstream, cluster)
    token = cluster.service_account_token("payments", "frontend")

    allowed = await gate.client.get("/payments/charge", headers=bearer(token))
    denied = await gate.client.get("/metrics", headers=bearer(token))

    assert (allowed.status, denied.status) == (200, 403)
    seen = upstream.last()["headers"]
    assert isinstance(seen, dict)
    assert seen["x-authenticated-user"] == "system:serviceaccount:payments:frontend"
    assert seen["x-authenticated-issuer"] == "cluster"
    assert (
        seen["x-authenticated-groups"] == "system:serviceaccounts,system:serviceaccounts:payments"
    )


async def test_a_namespace_wildcard_admits_every_service_account_of_that_namespace_only(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    gate = await cluster_gate(start_gate, upstream, cluster)

    async def status(namespace: str, name: str) -> int:
        token = cluster.service_account_token(namespace, name)
        return (await gate.client.get("/metrics", headers=bearer(token))).status

    assert await status("monitoring", "prometheus") == 200
    assert await status("monitoring", "grafana") == 200
    assert await status("monitoring-dev", "prometheus") == 403
    assert await status("payments", "frontend") == 403


async def test_a_service_account_token_for_another_audience_is_refused(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    """A token the cluster issued for something else (here: Vault) is no key to idgate's routes."""
    gate = await cluster_gate(start_gate, upstream, cluster)
    token = cluster.service_account_token("payments", "frontend", audience="vault")

    response = await gate.client.get("/payments", headers=bearer(token))

    assert response.status == 401
    assert upstream.calls == 0
    labels = {"result": "invalid", "reason": "audience", "issuer": "cluster"}
    assert gate.metric("idgate_token_validations_total", **labels) == 1


async def test_the_pods_token_goes_to_the_api_server_and_nowhere_else(
    aiohttp_server: AiohttpServer,
    start_gate: StartGate,
    upstream: EchoUpstream,
    cluster: StandInApiServer,
) -> None:
    """Discovery advertises a jwks_uri on another host; idgate fetches the keys from the API
    server itself, and the other host is never asked, with or without the token."""
    elsewhere = await serve_other_origin(aiohttp_server)
    cluster.advertised_jwks_uri = elsewhere.url
    gate = await cluster_gate(start_gate, upstream, cluster)

    response = await gate.client.get(
        "/payments", headers=bearer(cluster.service_account_token("payments", "frontend"))
    )

    assert response.status == 200
    assert elsewhere.authorizations == []
    pod_token = f"Bearer {cluster.token_file.read_text()}"
    assert {authorization for _, authorization in cluster.requests} == {pod_token}


async def test_a_rotated_pod_token_is_used_for_the_next_key_fetch(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    """The kubelet rotated the pod's token and the cluster its signing key: a token with the new
    key's kid makes idgate fetch the keys again, with the new pod token the API server wants."""
    gate = await cluster_gate(start_gate, upstream, cluster)
    first = await gate.client.get(
        "/payments", headers=bearer(cluster.service_account_token("payments", "frontend"))
    )
    new_pod_token = cluster.rotate_pod_token()
    cluster.key = SigningKey(kid="cluster-2", alg="RS256")

    second = await gate.client.get(
        "/payments", headers=bearer(cluster.service_account_token("payments", "frontend"))
    )

    assert (first.status, second.status) == (200, 200)
    assert cluster.authorizations("/openid/v1/jwks")[-1] == f"Bearer {new_pod_token}"


async def test_token_review_refuses_the_token_of_a_deleted_service_account(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    """Signed by the cluster and unexpired, but the API server no longer authenticates it: 401
    with the failure `token_review`; a living account's token passes the same review."""
    gate = await cluster_gate(start_gate, upstream, cluster, token_review=True)
    cluster.deleted.add("payments/frontend")

    refused = await gate.client.get(
        "/payments", headers=bearer(cluster.service_account_token("payments", "frontend"))
    )
    allowed = await gate.client.get(
        "/metrics", headers=bearer(cluster.service_account_token("monitoring", "prometheus"))
    )

    assert (refused.status, allowed.status) == (401, 200)
    assert [review["audiences"] for review in cluster.reviews] == [[AUDIENCE], [AUDIENCE]]
    labels = {"result": "invalid", "reason": "token_review", "issuer": "cluster"}
    assert gate.metric("idgate_token_validations_total", **labels) == 1


async def test_an_api_server_that_cannot_review_fails_closed(
    start_gate: StartGate, upstream: EchoUpstream, cluster: StandInApiServer
) -> None:
    """Keys loaded, then the API server stops answering: no token passes unreviewed."""
    gate = await cluster_gate(start_gate, upstream, cluster, token_review=True)
    cluster.down = True

    response = await gate.client.get(
        "/payments", headers=bearer(cluster.service_account_token("payments", "frontend"))
    )

    assert response.status == 503
    assert upstream.calls == 0


class TrustBundle:
    """A SPIFFE bundle endpoint's answer for one trust domain: its JWT-SVID key, beside an X.509
    authority and the bundle's own members."""

    def __init__(self) -> None:
        self.key = SigningKey(kid="spire-1", alg="ES256")
        authority = CertificateAuthority.create("example.org")
        self.document = {
            "spiffe_sequence": 3,
            "spiffe_refresh_hint": 300,
            "keys": [
                self.key.jwk | {"use": "jwt-svid"},
                {
                    "use": "x509-svid",
                    "kty": "EC",
                    "x5c": [base64.b64encode(authority.root.der).decode()],
                },
            ],
        }

    def svid(self, subject: str, *, key: SigningKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": SPIRE, "sub": subject, "aud": [AUDIENCE], "exp": now + 300, **claims}
        present = {name: value for name, value in payload.items() if value is not None}
        return (key or self.key).sign(present, headers={"typ": "JWT"})


@pytest.fixture(params=[SPIRE, None], ids=["issuer-configured", "no-issuer"])
async def mesh_gate(
    request: pytest.FixtureRequest,
    aiohttp_server: AiohttpServer,
    start_gate: StartGate,
    upstream: EchoUpstream,
) -> tuple[Gate, TrustBundle]:
    """idgate trusting JWT-SVIDs of example.org, and X.509-SVIDs from a trusted proxy's XFCC;
    the issuer configured with SPIRE's `jwt_issuer`, or without (then chosen by trust domain)."""
    bundle = TrustBundle()

    async def serve(bundle_request: web.Request) -> web.Response:
        del bundle_request
        return web.json_response(bundle.document)

    app = web.Application()
    app.router.add_get("/bundle", serve)
    endpoint = await aiohttp_server(app)
    issuer = IssuerSettings(
        name="mesh",
        kind=IssuerKind.SPIFFE,
        issuer=request.param,
        jwks_uri=str(endpoint.make_url("/bundle")),
        audiences=(AUDIENCE,),
        algorithms=("ES256", "RS256"),
        spiffe=SpiffeSettings(trust_domain="example.org"),
    )
    gate = await start_gate(
        issuers=(issuer,),
        routes=workload_routes(upstream.url),
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
        client_certificates=ClientCertificateSettings(forwarded_header="X-Forwarded-Client-Cert"),
    )
    return gate, bundle


async def test_one_spiffe_ids_condition_admits_a_jwt_svid_and_an_x509_svid(
    mesh_gate: tuple[Gate, TrustBundle], upstream: EchoUpstream
) -> None:
    """The same workload by JWT-SVID or by certificate (a proxy's XFCC `URI=`) meets the same
    `spiffe_ids` condition, and the upstream sees the same user."""
    gate, bundle = mesh_gate

    by_token = await gate.client.get("/invoices", headers=bearer(bundle.svid(INVOICER)))
    token_user = upstream.last()["headers"]
    by_certificate = await gate.client.get(
        "/invoices", headers={"X-Forwarded-Client-Cert": f"Hash=0f1e;URI={INVOICER}"}
    )
    certificate_user = upstream.last()["headers"]

    assert (by_token.status, by_certificate.status) == (200, 200)
    assert isinstance(token_user, dict)
    assert isinstance(certificate_user, dict)
    assert (
        token_user["x-authenticated-user"] == certificate_user["x-authenticated-user"] == INVOICER
    )


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("spiffe://evil.org/ns/billing/sa/invoicer", "wrong_trust_domain"),
        ("spiffe://example.org.evil.org/ns/billing/sa/invoicer", "wrong_trust_domain"),
        ("invoicer", "malformed"),
    ],
)
async def test_a_jwt_svid_naming_another_trust_domain_is_refused(
    mesh_gate: tuple[Gate, TrustBundle], upstream: EchoUpstream, subject: str, reason: str
) -> None:
    """Even signed with example.org's own key, a token naming another trust domain's workload
    (or no SPIFFE ID) is no identity of example.org: the issuer pinned to SPIRE's `iss` refuses
    it, and an issuer chosen by trust domain is not even asked."""
    gate, bundle = mesh_gate
    pinned = gate.settings.issuers[0].issuer is not None

    response = await gate.client.get("/invoices", headers=bearer(bundle.svid(subject)))

    assert response.status == 401
    assert upstream.calls == 0
    failure, issuer = (reason, "mesh") if pinned else ("issuer", "")
    labels = {"result": "invalid", "reason": failure, "issuer": issuer}
    assert gate.metric("idgate_token_validations_total", **labels) == 1


async def test_another_trust_domains_key_verifies_nothing(
    mesh_gate: tuple[Gate, TrustBundle], upstream: EchoUpstream
) -> None:
    """A JWT-SVID signed by another trust domain's key, naming example.org's issuer and
    workload: the bundle does not hold that key, so it is refused."""
    gate, bundle = mesh_gate
    forged = bundle.svid(INVOICER, key=SigningKey(kid="evil-1", alg="ES256"))

    response = await gate.client.get("/invoices", headers=bearer(forged))

    assert response.status == 401
    assert upstream.calls == 0


async def test_a_jwt_svid_needs_an_audience_of_idgate(
    mesh_gate: tuple[Gate, TrustBundle], upstream: EchoUpstream
) -> None:
    """JWT-SVID 3.2: `aud` MUST be present and name the validator."""
    gate, bundle = mesh_gate

    for audience in (["billing"], []):
        svid = bundle.svid(INVOICER, aud=audience)
        assert (await gate.client.get("/invoices", headers=bearer(svid))).status == 401
    assert upstream.calls == 0


async def test_a_jwt_svid_without_iss_is_chosen_by_its_trust_domain(
    mesh_gate: tuple[Gate, TrustBundle], upstream: EchoUpstream
) -> None:
    """JWT-SVID 3 does not require `iss` (SPIRE leaves it out unless `jwt_issuer` is set): an
    issuer configured without `issuer` takes such tokens of its trust domain; one pinned to an
    `issuer` refuses them as missing it. Another trust domain's finds no issuer either way."""
    gate, bundle = mesh_gate
    pinned = gate.settings.issuers[0].issuer is not None

    ours = await gate.client.get("/invoices", headers=bearer(bundle.svid(INVOICER, iss=None)))
    theirs = await gate.client.get(
        "/invoices",
        headers=bearer(bundle.svid("spiffe://evil.org/ns/billing/sa/invoicer", iss=None)),
    )

    assert ours.status == (401 if pinned else 200)
    assert theirs.status == 401
    labels = {"result": "invalid", "reason": "missing_claim", "issuer": ""}
    assert gate.metric("idgate_token_validations_total", **labels) == (2 if pinned else 1)
