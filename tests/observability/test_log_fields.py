"""Every log line says when (ISO 8601 UTC) and, when it is about a request, which one and from
whom: refusals before routing and aiohttp's own included; sign-in and sign-out name the user."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from proxy.observability.decision_log import DECISION_LOGGER, _PlainFormatter
from proxy.observability.http_log import HTTP_LOGGER
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.raw_http import send_raw
from tests.support.signed_in import HTML, cookie_header, sign_in

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def decision_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == DECISION_LOGGER]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=DECISION_LOGGER)
    caplog.set_level(logging.INFO, logger=HTTP_LOGGER)
    return caplog


def test_other_records_carry_iso_time_and_their_request_fields() -> None:
    """A log record outside the decision log gets `time` in ISO 8601 UTC next to the epoch
    `ts`, and the request fields it was given."""
    record = logging.LogRecord("idgate.forward", logging.WARNING, __file__, 1, "cut", (), None)
    record.created = datetime(2026, 12, 2, tzinfo=UTC).timestamp() + 0.5
    record.request_id = "abc"
    record.client_ip = "192.0.2.1"

    line = json.loads(_PlainFormatter().format(record))

    assert line == {
        "time": "2026-12-02T00:00:00.500Z",
        "ts": record.created,
        "level": "warning",
        "logger": "idgate.forward",
        "msg": "cut",
        "request_id": "abc",
        "client_ip": "192.0.2.1",
    }


async def test_a_request_refused_before_routing_is_logged_with_its_request(
    gate: Gate, logged: pytest.LogCaptureFixture
) -> None:
    """A 400 for a malformed Host header (refused before any route is looked up) carries a
    request id, and its line names that id, the client, the method and the path."""
    response = await gate.client.get("/public/x?token=SECRET", headers={"Host": "bad host!"})

    assert response.status == 400
    (line,) = decision_lines(logged)
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert (line["client_ip"], line["method"], line["path"]) == ("127.0.0.1", "GET", "/public/x")
    assert ISO_UTC.fullmatch(line["time"])
    assert "SECRET" not in json.dumps(line)


async def test_a_request_the_parser_refuses_is_logged_with_its_client(
    gate: Gate, logged: pytest.LogCaptureFixture
) -> None:
    """aiohttp's own 400 to an unparseable request is logged with the client's address and a
    request id, and without the bytes it refused (they may hold a token)."""
    server = gate.client.server
    answer = await send_raw(
        server.host, server.port, b"GET /x HTTP/1.1\r\nAuthorization Bearer SECRET\r\n\r\n"
    )

    assert answer.split(b" ", 2)[1] == b"400"
    (record,) = (r for r in logged.records if r.name == HTTP_LOGGER)
    line = json.loads(_PlainFormatter().format(record))
    assert line["client_ip"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{16}", line["request_id"])
    assert line["msg"].startswith("refused a malformed request")
    assert "SECRET" not in json.dumps(line)


async def test_sign_in_and_sign_out_lines_name_the_user(
    start_gate: StartGate, logged: pytest.LogCaptureFixture
) -> None:
    """The callback's line names who signed in; the sign-out's, whose session it ended."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")], subject="carol")
    gate = await start_gate(issuer=issuer)
    cookies = await sign_in(gate)
    signed_out = await gate.client.get(
        "/oauth2/sign_out", headers={**HTML, **cookie_header(cookies)}, allow_redirects=False
    )
    assert signed_out.status == 302

    users = {line["path"]: line["user"] for line in decision_lines(logged)}
    assert users["/oauth2/callback"] == "carol"
    assert users["/oauth2/sign_out"] == "carol"
