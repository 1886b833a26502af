"""`idgate revoke` and `idgate sessions`: the admin endpoints (proxy/server/admin.py) called from
the command line.

It reads the same config as the server, so it finds the metrics listener (never the public
port) and derives the same admin token from the newest session secret.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from proxy.config.model import Settings
from proxy.server.admin import PATH, SESSIONS_PATH, admin_token
from proxy.sessions.model import HANDLE_CHARS, MAX_CLIENT_CHARS, MAX_USER_AGENT_CHARS, printable

TIMEOUT_SECONDS: Final = 10.0


class AdminError(Exception):
    """The admin endpoint could not be reached or refused the request; the message says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminClient:
    base_url: str
    token: str

    @classmethod
    def for_settings(cls, settings: Settings, base_url: str | None = None) -> AdminClient:
        if base_url is None:
            listen = settings.metrics.listen
            if listen is None:
                raise AdminError("metrics.listen is not configured: there is no admin listener")
            host = "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host  # noqa: S104
            base_url = (
                f"http://[{host}]:{listen.port}" if ":" in host else f"http://{host}:{listen.port}"
            )
        return cls(base_url=base_url.rstrip("/"), token=admin_token(settings.session.secrets[0]))

    def revocations(self) -> list[dict[str, Any]]:
        return _entries(self._call("GET", PATH), "revocations")

    def revoke(self, kind: str, value: str) -> dict[str, Any]:
        return self._call("POST", PATH, {"kind": kind, "value": value})

    def lift(self, kind: str, value: str) -> dict[str, Any]:
        return self._call("DELETE", PATH, {"kind": kind, "value": value})

    def sessions(self, user: str) -> list[dict[str, Any]]:
        return _entries(
            self._call("GET", f"{SESSIONS_PATH}?{urlencode({'user': user})}"), "sessions"
        )

    def _call(self, method: str, path: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 (the URL is http(s), built above or given)
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read(512).decode("utf-8", "replace").strip()
            raise AdminError(f"{self.base_url}: {error.code} {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise AdminError(f"{self.base_url}: {error}") from None
        if not isinstance(answer, dict):
            raise AdminError(f"{self.base_url}: unexpected answer")
        return answer


def _entries(answer: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The objects of the answer's list `name` (none when it has no such list)."""
    entries = answer.get(name)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def when(timestamp: object) -> str:
    """A Unix time as ISO 8601 UTC, for the command's output."""
    if not isinstance(timestamp, int | float):
        return "?"
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def line(entry: dict[str, Any]) -> str:
    """One revocation of `--list`: kind, value, since, until (tab-separated)."""
    return "\t".join(
        (
            str(entry.get("kind")),
            str(entry.get("value")),
            f"revoked {when(entry.get('revoked_at'))}",
            f"until {when(entry.get('expires_at'))}",
        )
    )


def session_line(entry: dict[str, Any]) -> str:
    """One session of `idgate sessions`: handle, created, last seen, client, user agent, state
    (tab-separated). What the client sent is printed as printable ASCII whatever the listener
    answered: it reaches the operator's terminal."""
    return "\t".join(
        (
            printable(str(entry.get("handle")), HANDLE_CHARS),
            f"created {when(entry.get('created_at'))}",
            f"last seen {when(entry.get('last_seen_at'))}",
            f"client {printable(str(entry.get('client') or '-'), MAX_CLIENT_CHARS)}",
            f"agent {printable(str(entry.get('user_agent') or '-'), MAX_USER_AGENT_CHARS)}",
            "revoked" if entry.get("revoked") is True else "live",
        )
    )
