"""The decision-log line: the fields a log pipeline parses, as json.dumps would write them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from proxy.config.model import Policy, Route
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.decision import Decision, Outcome
from proxy.reasons import Reason, TokenFailure
from proxy.runtime import Runtime
from proxy.stages.context import RefusedRequest, RequestContext
from proxy.stages.decision_line import decision_line
from tests.support.context import make_context

ROUTE = Route(name="admin", path="/admin", policy=Policy())


@pytest.fixture
def context(runtime: Runtime) -> Callable[..., RequestContext]:
    def build(**fields: Any) -> RequestContext:
        return make_context(
            runtime,
            **{
                "request_id": "ae0f99f96601fc99",
                "client_ip": "10.1.2.3",
                "host": "admin.example.com",
                "path": "/users",
                "upstream_path": "/users",
                "query": "access_token=SECRET",
                "authority": "admin.example.com",
            }
            | fields,
        )

    return build


BOB = Principal(
    user="bob",
    email="bob@example.com",
    groups=frozenset({"staff"}),
    claims={},
    source=CredentialSource.BEARER,
    expires_at=2e9,
    issuer="partners",
)


def _parsed(line: str) -> dict[str, Any]:
    """The line's fields, checking that it is exactly json.dumps of them (order included)."""
    fields: dict[str, Any] = json.loads(line)
    assert line == json.dumps(fields, separators=(",", ":"))
    assert "\n" not in line
    return fields


async def test_a_denied_request_names_user_decision_rule_and_reason(
    context: Callable[..., RequestContext],
) -> None:
    ctx = context(
        principal=BOB,
        decision=Decision(
            outcome=Outcome.DENY,
            reason=Reason.DENY_RULE,
            route=ROUTE,
            rule="deny",
            matched="group:contractors",
        ),
    )

    fields = _parsed(decision_line(ctx, status=403, route="admin", latency=0.0028, reason=None))

    assert fields.pop("ts") > 0
    assert fields.pop("time").endswith("Z")
    assert fields == {
        "status": 403,
        "route": "admin",
        "latency_ms": 2.8,
        "request_id": "ae0f99f96601fc99",
        "client_ip": "10.1.2.3",
        "method": "GET",
        "host": "admin.example.com",
        "path": "/users",
        "user": "bob",
        "source": "bearer",
        "issuer": "partners",
        "decision": "deny",
        "rule": "deny",
        "matched": "group:contractors",
        "reason": "deny_rule",
    }


async def test_a_refused_token_names_its_failure_and_no_user(
    context: Callable[..., RequestContext],
) -> None:
    ctx = context(
        token_failure=TokenFailure.EXPIRED,
        token_issuer="partners",
        decision=Decision(
            outcome=Outcome.UNAUTHENTICATED, reason=Reason.INVALID_TOKEN, route=ROUTE
        ),
    )

    fields = _parsed(decision_line(ctx, status=401, route="admin", latency=0.001, reason=None))

    assert (fields["user"], fields["source"], fields["issuer"]) == (None, None, "partners")
    assert (fields["decision"], fields["token_failure"], fields["reason"]) == (
        "unauthenticated",
        "expired",
        "invalid_token",
    )


async def test_the_line_opens_with_its_time_in_iso_8601_utc(
    context: Callable[..., RequestContext],
) -> None:
    """`time` is ISO 8601 in UTC with milliseconds, the same instant as the epoch `ts`."""
    fields = _parsed(decision_line(context(), status=200, route="r", latency=0.1, reason=None))

    assert list(fields)[:2] == ["time", "ts"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    written = datetime.strptime(fields["time"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert abs(written.timestamp() - fields["ts"]) < 0.002


async def test_an_error_before_any_decision_logs_the_error_reason(
    context: Callable[..., RequestContext],
) -> None:
    fields = _parsed(
        decision_line(context(), status=400, route="_none", latency=0.0, reason="bad_request")
    )

    assert "decision" not in fields
    assert fields["reason"] == "bad_request"


async def test_a_request_without_context_logs_what_is_known(
    context: Callable[..., RequestContext],
) -> None:
    """A request refused before accept built its context still gets its line, naming the
    request and its peer."""
    refused = RefusedRequest(request_id="r-1", peer_ip="192.0.2.7", method="GET", path="/x%zz")
    fields = _parsed(
        decision_line(refused, status=400, route="_none", latency=0.5, reason="bad_request")
    )

    assert list(fields) == [
        "time",
        "ts",
        "status",
        "route",
        "latency_ms",
        "request_id",
        "client_ip",
        "method",
        "path",
        "reason",
    ]
    assert (fields["status"], fields["latency_ms"], fields["reason"]) == (400, 500.0, "bad_request")
    assert (fields["request_id"], fields["client_ip"], fields["path"]) == (
        "r-1",
        "192.0.2.7",
        "/x%zz",
    )


@pytest.mark.parametrize(
    "path", ['/a"b\\c', "/new\nline", "/tab\there", "/\x00\x1f\x7f", "/é/日本/😀", "/\u2028"]
)
async def test_any_path_stays_one_parseable_json_line(
    path: str, context: Callable[..., RequestContext]
) -> None:
    """Paths are client-chosen: quotes, controls and non-ASCII are escaped, never break the line."""
    line = decision_line(
        context(path=path, principal=BOB), status=200, route="r", latency=0.1, reason=None
    )

    assert _parsed(line)["path"] == path
    assert line.isascii()


async def test_the_query_string_is_never_logged(context: Callable[..., RequestContext]) -> None:
    """The query may carry a token or a code."""
    line = decision_line(context(), status=200, route="r", latency=0.1, reason=None)

    assert "SECRET" not in line
    assert "query" not in _parsed(line)
