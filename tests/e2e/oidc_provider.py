"""The real OpenID provider in tests/e2e/provider (oidc-provider on Node.js), run for a test.

`running_provider` starts `node provider.mjs`, reads its one ready line, and stops it at the end;
`OidcProvider` mints tokens through it and drives its test-only admin endpoints. Given a keys
file, a provider can be stopped and started again on the same port with the same signing keys.
Started with `access_token_format="opaque"`, its access tokens are opaque strings that only its
introspection endpoint (RFC 7662, `/token/introspection`) explains.
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.e2e.tools import API_AUDIENCE, require_tool, stop_process

PROVIDER_DIR = Path(__file__).parent / "provider"
USER_GRANT = "urn:idgate:test:user"
MINTER_ID = "e2e-minter"
MINTER_SECRET = "e2e-minter-secret"
WEB_CLIENT_ID = "idgate"
WEB_CLIENT_SECRET = "idgate-secret"
READY_TIMEOUT = 45.0
START_ATTEMPTS = 2
STOP_TIMEOUT = 5.0
AccessTokenFormat = Literal["jwt", "opaque"]


class ProviderError(Exception):
    """The provider refused a request: its OAuth `error` code and description, no credential."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"provider answered {status} {error}: {description}")
        self.status = status
        self.error = error


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The one JSON line provider.mjs prints on stdout once it accepts connections."""

    issuer: str
    admin: str

    @classmethod
    def parse(cls, line: bytes) -> Ready:
        data = json.loads(line)
        return cls(issuer=str(data["issuer"]), admin=str(data["admin"]))


async def _call(method: str, url: str, **kwargs: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        text = await resp.text()
        if resp.status != 200:
            error = json.loads(text) if text.startswith("{") else {}
            raise ProviderError(
                resp.status,
                str(error.get("error", resp.reason)),
                str(error.get("error_description", "")),
            )
        return json.loads(text)


class OidcProvider:
    """A running `node provider.mjs`; the HTTP helpers are async, one client session per call.

    The module-scoped `oidc_provider` is shared, so it is read-only: changing keys, the web client
    or its liveness would leak into other tests. Those need `fresh_oidc_provider`.
    """

    def __init__(self, launcher: _Launcher, *, shared: bool) -> None:
        self._launcher = launcher
        self._ready = launcher.start()
        self._shared = shared

    @property
    def issuer(self) -> str:
        return self._ready.issuer

    async def token_for_user(self, username: str, *, audience: str = API_AUDIENCE) -> str:
        """A JWT access token for a test user (alice, bob, carol) through the test-only grant."""
        return await self._token(
            MINTER_ID, MINTER_SECRET, grant_type=USER_GRANT, username=username, resource=audience
        )

    async def client_credentials_token(
        self, client_id: str, secret: str, resource: str = API_AUDIENCE
    ) -> str:
        """A JWT access token from the real client_credentials grant at the token endpoint."""
        return await self._token(
            client_id, secret, grant_type="client_credentials", resource=resource
        )

    async def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: Literal["current", "unpublished"] = "current",
        typ: str = "at+jwt",
    ) -> str:
        """A token the endpoints never issue: iss/iat/exp/jti default, a None claim is left out;
        `typ` is its JOSE header's (an ID token's is "JWT")."""
        body = await _call(
            "POST",
            f"{self._ready.admin}/sign",
            json={"claims": claims, "key": key, "typ": typ},
        )
        return str(body["token"])

    async def rotate_keys(self, *, keep_old: bool = True) -> str:
        """Sign with a new key from now on and return its kid; keep the old one published or not."""
        self._require_own("rotate_keys")
        body = await _call("POST", f"{self._ready.admin}/rotate-keys", json={"keep_old": keep_old})
        return str(body["kid"])

    async def configure_web_client(
        self,
        *,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
    ) -> None:
        """Point the confidential browser client "idgate" at a running idgate's endpoints."""
        self._require_own("configure_web_client")
        await _call(
            "PUT",
            f"{self._ready.admin}/web-client",
            json={
                "redirect_uris": list(redirect_uris),
                "post_logout_redirect_uris": list(post_logout_redirect_uris),
                "backchannel_logout_uri": backchannel_logout_uri,
            },
        )

    async def revoke_user(self, username: str) -> None:
        """End every grant, token and provider session of a test user, as disabling the account
        would: the user's next refresh is refused, and the next sign-in asks for the password."""
        self._require_own("revoke_user")
        await _call("POST", f"{self._ready.admin}/revoke-user", json={"username": username})

    async def set_revocation(self, mode: Literal["on", "off", "failing"]) -> None:
        """Token revocation (RFC 7009) served ("on", the default), not offered in discovery
        ("off"), or offered but answering 503 ("failing"). idgate reads discovery when it starts,
        so set this before starting the idgate that should see it."""
        self._require_own("set_revocation")
        await _call("PUT", f"{self._ready.admin}/revocation", json={"mode": mode})

    async def revoke_token(self, client_id: str, secret: str, token: str) -> None:
        """The client a token was issued to revokes it at the revocation endpoint (RFC 7009)."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.issuer}/token/revocation",
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": aiohttp.encode_basic_auth(client_id, secret)},
            ) as response,
        ):
            # RFC 7009 2.2: 200 whether or not the token was known; anything else is a failure.
            assert response.status == 200, await response.text()

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """The web client `idgate` redeems `refresh_token` at the token endpoint; the token
        response, or ProviderError (`invalid_grant` once the token is revoked)."""
        body: dict[str, Any] = await _call(
            "POST",
            f"{self.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"Authorization": aiohttp.encode_basic_auth(WEB_CLIENT_ID, WEB_CLIENT_SECRET)},
        )
        return body

    def stop(self) -> None:
        """Take the provider down (idempotent), killing it if it ignores SIGTERM."""
        self._require_own("stop")
        self._launcher.stop()

    def restart(self) -> None:
        """Stop the provider (if running) and start it again on the same port with the signing
        keys it last had (a keys file holds them). Grants and sessions are in memory: gone."""
        self._require_own("restart")
        if self._launcher.keys_file is None:
            raise RuntimeError("restart needs a provider started with a keys file")
        self._launcher.stop()
        ready = self._launcher.start(port=_port_of(self._ready.issuer))
        assert ready == self._ready, f"restarted as {ready}, not {self._ready}"

    async def _token(self, client_id: str, secret: str, **form: str) -> str:
        body = await _call(
            "POST",
            f"{self.issuer}/token",
            data=form,
            headers={"Authorization": aiohttp.encode_basic_auth(client_id, secret)},
        )
        return str(body["access_token"])

    def _require_own(self, action: str) -> None:
        if self._shared:
            raise RuntimeError(f"{action} on the shared oidc_provider: use fresh_oidc_provider")


def _port_of(issuer: str) -> int:
    port = urlsplit(issuer).port
    assert port is not None, issuer
    return port


class _Launcher:
    """Starts `node provider.mjs` (again), appending its stderr to one log in `workdir`."""

    def __init__(
        self, workdir: Path, *, keys_file: Path | None, access_token_format: AccessTokenFormat
    ) -> None:
        self._node = require_tool("node", "Node.js 20+ runs the test OpenID provider")
        require_tool(
            str(PROVIDER_DIR / "node_modules" / "oidc-provider"), f"npm ci in {PROVIDER_DIR}"
        )
        self._log = workdir / "provider.stderr.log"
        self.keys_file = keys_file
        self._access_token_format = access_token_format
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, port: int = 0) -> Ready:
        """A new provider process on `port` (0: any free one), once it accepts connections.

        A start that stalls is tried once more: on a loaded CI machine one node start in many
        has been seen to print nothing for the whole timeout, and it is the machine, not the
        provider, that a test then fails on. A provider that cannot start fails both times."""
        assert self._process is None or self._process.poll() is not None, "already running"
        command = [self._node, "provider.mjs", "--exit-on-stdin-close", "--port", str(port)]
        command += ["--access-token-format", self._access_token_format]
        if self.keys_file is not None:
            command += ["--keys-file", str(self.keys_file)]
        why = ""
        for _ in range(START_ATTEMPTS):
            with self._log.open("ab") as stderr:
                self._process = subprocess.Popen(
                    command,
                    cwd=PROVIDER_DIR,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                )
            ready, why = self._read_ready_line(self._process)
            if ready is not None:
                return ready
            stop_process(self._process, STOP_TIMEOUT)
        tail = "\n".join(self._log.read_text(errors="replace").splitlines()[-20:])
        pytest.fail(
            f"provider.mjs {why} ({START_ATTEMPTS} tries); its stderr:\n{tail}", pytrace=False
        )

    def stop(self) -> None:
        """Stop the current process, if any (idempotent)."""
        if self._process is not None:
            stop_process(self._process, STOP_TIMEOUT)

    @staticmethod
    def _read_ready_line(process: subprocess.Popen[bytes]) -> tuple[Ready | None, str]:
        """The ready line, or None and why there is none."""
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        if not readable:
            return None, f"printed nothing within {READY_TIMEOUT}s"
        line = process.stdout.readline()
        if line:
            return Ready.parse(line), ""
        try:
            # Its stdout closed: it is exiting, so wait a moment for the code (or signal).
            return None, f"exited with {process.wait(STOP_TIMEOUT)}"
        except subprocess.TimeoutExpired:
            return None, "closed its stdout without exiting"


@contextmanager
def running_provider(
    workdir: Path,
    *,
    shared: bool,
    keys_file: Path | None = None,
    access_token_format: AccessTokenFormat = "jwt",  # noqa: S107 (a format, not a password)
) -> Iterator[OidcProvider]:
    """A ready provider, stopped at the end; with `keys_file`, one that `restart()` can bring
    back with the same keys (the file holds private keys: keep it in the test's directory)."""
    launcher = _Launcher(workdir, keys_file=keys_file, access_token_format=access_token_format)
    try:
        yield OidcProvider(launcher, shared=shared)
    finally:
        launcher.stop()
