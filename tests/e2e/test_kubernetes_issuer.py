"""A real idgate process with a `kind: kubernetes` issuer written in YAML, as in a pod: the API
server found from KUBERNETES_SERVICE_HOST/PORT, service-account tokens admitted by
`service_accounts`, and TokenReview refusing a deleted service account's token.

No real cluster runs where these tests run, so the API server is the stand-in of
tests/support/kubernetes_api.py (TLS with its own CA, discovery and keys only for the pod token);
the browser provider is the in-process one of tests/support/issuer.py. Both answer idgate's first
fetches at start, so idgate is started off the event loop that serves them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.support.issuer import serve_issuer
from tests.support.kubernetes_api import StandInApiServer
from tests.support.upstream import EchoUpstream


@pytest.fixture
async def gate(
    aiohttp_server: AiohttpServer,
    cluster: StandInApiServer,
    upstream: EchoUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[IdgateProcess]:
    """idgate whose environment says where the API server is, as the kubelet's does in a pod."""
    api_server = urlsplit(cluster.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(api_server.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api_server.port))
    provider = await serve_issuer(aiohttp_server)
    route = {
        "name": "payments",
        "path": "/payments",
        "upstream": upstream.url,
        "allow": {"service_accounts": ["payments/*"]},
    }
    document = base_document(provider.url, [route])
    document["issuers"] = [
        {
            "name": "cluster",
            "kind": "kubernetes",
            "audiences": ["idgate"],
            # Only the files differ from a pod's defaults: the tests have no service-account volume.
            "kubernetes": {
                "ca_file": str(cluster.ca_file),
                "token_file": str(cluster.token_file),
                "token_review": True,
            },
        }
    ]
    workdir = tmp_path / "idgate"
    workdir.mkdir()
    running = running_idgate(workdir, document)
    process = await asyncio.to_thread(running.__enter__)
    try:
        yield process
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


async def call(gate: IdgateProcess, token: str) -> tuple[int, str]:
    path = f"/payments/{uuid4().hex}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(gate.url + path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, path


async def test_service_accounts_of_a_namespace_pass_and_a_deleted_ones_token_does_not(
    gate: IdgateProcess, cluster: StandInApiServer, upstream: EchoUpstream
) -> None:
    cluster.deleted.add("payments/retired")

    allowed, allowed_path = await call(gate, cluster.service_account_token("payments", "frontend"))
    refused, refused_path = await call(gate, cluster.service_account_token("payments", "retired"))
    other, _ = await call(gate, cluster.service_account_token("billing", "frontend"))

    assert (allowed, refused, other) == (200, 401, 403)
    headers = upstream.last()["headers"]
    assert isinstance(headers, dict)
    assert headers["x-authenticated-user"] == "system:serviceaccount:payments:frontend"
    assert headers["x-authenticated-issuer"] == "cluster"
    allowed_line = await gate.wait_for_decision(allowed_path)
    refused_line = await gate.wait_for_decision(refused_path)
    assert (allowed_line["issuer"], allowed_line["reason"]) == ("cluster", "service_account")
    assert (refused_line["issuer"], refused_line["token_failure"]) == ("cluster", "token_review")
    pod_token = f"Bearer {cluster.token_file.read_text()}"
    assert {authorization for _, authorization in cluster.requests} == {pod_token}


async def test_readyz_names_the_cluster_issuer_loaded(gate: IdgateProcess) -> None:
    async with aiohttp.ClientSession() as http, http.get(gate.url + "/readyz") as response:
        assert (response.status, await response.json()) == (
            200,
            {"ready": True, "issuers": {"oidc": True, "cluster": True}},
        )
