"""Requests and WebSockets to an mTLS upstream through idgate: the route's CA and client
certificate are used, and an upstream presenting the wrong SPIFFE ID is a counted 502."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config.model import Policy, Route, UpstreamTLS
from tests.support.certificates import CertificateAuthority, Issued
from tests.support.gate import StartGate
from tests.support.tls_upstream import Upstream, https_upstream

LEDGER = "spiffe://idgate.test/ns/prod/sa/ledger"


def _route(upstream: Upstream, directory: Path, client: Issued, spiffe_id: str) -> Route:
    ca_file = directory / "upstream-ca.pem"
    ca_file.write_bytes(upstream.ca.root.pem)
    cert_file, key_file = client.write(directory, "idgate-client")
    return Route(
        name="ledger",
        path="/",
        upstream=f"https://127.0.0.1:{upstream.port}",
        upstream_tls=UpstreamTLS(
            ca_file=ca_file, cert_file=cert_file, key_file=key_file, spiffe_id=spiffe_id
        ),
        policy=Policy(public=True),
    )


@pytest.mark.parametrize("presented", [LEDGER, "spiffe://idgate.test/ns/prod/sa/impostor"])
async def test_an_http_request_reaches_only_the_expected_workload(
    start_gate: StartGate, tmp_path: Path, presented: str
) -> None:
    """The upstream sees idgate's client certificate; one naming another workload is a 502,
    counted by route."""
    clients = CertificateAuthority.create("workloads")
    client = clients.issue(common_name="idgate")
    async with https_upstream(tmp_path, client_ca=clients, uris=(presented,)) as upstream:
        gate = await start_gate(routes=(_route(upstream, tmp_path, client, LEDGER),))
        response = await gate.client.get("/books")
        mismatches = gate.metric("idgate_upstream_identity_mismatches_total", route="ledger")

        if presented == LEDGER:
            assert response.status == 200
            assert await response.text() == str(client.certificate.serial_number)
            assert mismatches == 0
        else:
            assert response.status == 502
            assert mismatches == 1
            assert upstream.requests == []


@pytest.mark.parametrize("presented", [LEDGER, "spiffe://idgate.test/ns/prod/sa/impostor"])
async def test_a_websocket_reaches_only_the_expected_workload(
    start_gate: StartGate, tmp_path: Path, presented: str
) -> None:
    """A WebSocket route uses the same CA, client certificate and SPIFFE ID check; an impostor
    receives not even the handshake request."""
    clients = CertificateAuthority.create("workloads")
    client = clients.issue(common_name="idgate")
    async with https_upstream(tmp_path, client_ca=clients, uris=(presented,)) as upstream:
        gate = await start_gate(routes=(_route(upstream, tmp_path, client, LEDGER),))
        if presented == LEDGER:
            async with gate.client.ws_connect("/ws") as socket:
                assert await socket.receive_str() == str(client.certificate.serial_number)
        else:
            response = await gate.client.get(
                "/ws",
                headers={
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                },
            )
            assert response.status == 502
            assert gate.metric("idgate_upstream_identity_mismatches_total", route="ledger") == 1
            assert upstream.requests == []
