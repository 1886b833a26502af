"""`idgate serve` as a real process: its own config file and ports, captured output, signals.

The config is a YAML document written to the test's directory; `listen`, `metrics.listen`,
`public_url` and `workers` are filled in here (free loopback ports), secrets come from the
environment through `${VAR}`, as an operator would write them. stdout goes to a file; stderr (JSON
lines, see proxy/observability/decision_log.py) is read line by line by a thread that copies it to
a file and wakes whoever waits for a line, so readiness and reloads are waited for on the log,
never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from proxy.demo.ports import free_loopback_ports
from tests.e2e.tools import API_AUDIENCE, stop_process

SESSION_SECRET: Final = "e2e-session-secret-0123456789abcdefghij"
CLIENT_SECRET: Final = "idgate-secret"
#: Both reach idgate only through the environment; neither may ever appear in its output.
SECRET_ENVIRONMENT: Final = {
    "IDGATE_SESSION_SECRET": SESSION_SECRET,
    "IDGATE_CLIENT_SECRET": CLIENT_SECRET,
}
START_TIMEOUT: Final = 20.0
LOG_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 5.0
LISTENING: Final = "idgate listening on"

Entry = dict[str, Any]


@dataclass(frozen=True)
class CommandRun:
    """What an `idgate` command run against a gate did (IdgateProcess.command)."""

    returncode: int
    stdout: str
    stderr: str


def base_document(issuer: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    """A config for bearer tokens from `issuer` (audience API_AUDIENCE) with these routes.

    Any new kid refreshes the provider keys at once (`jwks_min_refresh_interval`), so a rotation
    test never depends on how long ago the last fetch happened.
    """
    return {
        "oidc": {
            "issuer": issuer,
            "client_id": "idgate",
            "client_secret": "${IDGATE_CLIENT_SECRET}",
            "audiences": [API_AUDIENCE],
            "jwks_min_refresh_interval": "1ms",
            "http_timeout": "2s",
        },
        "session": {"secret": "${IDGATE_SESSION_SECRET}"},
        "routes": routes,
    }


def parse_entry(line: str) -> Entry | None:
    """A JSON log line as a mapping; None for anything else (a traceback, a stray print)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def is_decision(entry: Entry) -> bool:
    """Decision lines are the idgate.decision logger's own JSON, without the `logger` envelope."""
    return "logger" not in entry and "status" in entry and "latency_ms" in entry


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition; 0.0 when it is absent."""
    for family in text_string_to_metric_families(exposition):
        for each in family.samples:
            if each.name == name and each.labels == labels:
                return float(each.value)
    return 0.0


class LogLines:
    """A pipe's lines as they arrive: copied to a file, kept in order, waited for by predicate."""

    def __init__(self, pipe: IO[bytes], copy: Path) -> None:
        self._pipe = pipe
        self._copy = copy
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"read {copy.name}", daemon=True)
        self._thread.start()

    def snapshot(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def wait_for(self, predicate: Callable[[str], bool], *, start: int, timeout: float) -> str:
        """The first line from index `start` on that satisfies `predicate`.

        Raises LookupError when the pipe ends or `timeout` passes first.
        """
        found: list[str] = []

        def ready() -> bool:
            for line in self._lines[start:]:
                if predicate(line):
                    found.append(line)
                    return True
            return self._ended

        with self._changed:
            self._changed.wait_for(ready, timeout)
        if not found:
            raise LookupError("no such line")
        return found[0]

    def join(self) -> None:
        self._thread.join(STOP_TIMEOUT)
        self._pipe.close()

    def _read(self) -> None:
        with self._copy.open("wb") as copy:
            for raw in iter(self._pipe.readline, b""):
                copy.write(raw)
                copy.flush()
                with self._changed:
                    self._lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()


class IdgateProcess:
    """A running `python -m proxy serve -c FILE`; create it with `running_idgate`.

    With `ssl_context` (for a document with `tls`), idgate is reached over https with that
    client context, which must trust idgate's certificate.
    """

    def __init__(
        self,
        workdir: Path,
        document: Mapping[str, Any],
        *,
        ssl_context: ssl.SSLContext | None = None,
        public_url: str | None = None,
        workers: int = 1,
        port: int | None = None,
    ) -> None:
        """`public_url` defaults to idgate's own URL; behind a gateway it is the gateway's, so the
        provider sends the browser back through the gateway. `port` shares another idgate's port
        (SO_REUSEPORT, as a rolling restart on one host does); a free one otherwise."""
        self.workdir = workdir
        self.ssl_context = ssl_context
        self.public_url = public_url
        self.workers = workers
        self.config_path = workdir / "idgate.yaml"
        self.port, self.metrics_port = free_loopback_ports(2)
        if port is not None:
            self.port = port
        self.write_config(document)
        self._stdout_path = workdir / "idgate.stdout.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
        with self._stdout_path.open("wb") as stdout:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "proxy", "serve", "-c", str(self.config_path)],
                cwd=workdir,
                env=environment | SECRET_ENVIRONMENT,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
            )
        assert self._process.stderr is not None
        self._stderr = LogLines(self._process.stderr, workdir / "idgate.stderr.log")

    @property
    def pid(self) -> int:
        """The process `idgate serve` runs in (with workers, their supervisor)."""
        return self._process.pid

    @property
    def admin_url(self) -> str:
        """The metrics listener, where the admin endpoints are."""
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def write_config(self, document: Mapping[str, Any]) -> None:
        """Write `document` as the config file, on this process's ports (for a later reload)."""
        completed = {
            **document,
            "listen": f"127.0.0.1:{self.port}",
            "public_url": self.public_url or self.url,
            "workers": self.workers,
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
        }
        self.config_path.write_text(yaml.safe_dump(completed, sort_keys=False), encoding="utf-8")

    def wait_until_ready(self) -> None:
        """Block until idgate logs that it listens (every worker of it), then require `/readyz`
        to say ready.

        The listeners start only after the first provider key fetch has finished
        (proxy/server/serve.py builds the runtime first), so one `/readyz` answer after that line
        is the real state.
        """
        listening: set[str] = set()

        def one_more_listens(line: str) -> bool:
            message = str((parse_entry(line) or {}).get("msg", ""))
            if message.startswith(LISTENING):
                listening.add(message)  # each names its pid
            return len(listening) == self.workers

        try:
            self._stderr.wait_for(one_more_listens, start=0, timeout=START_TIMEOUT)
        except LookupError:
            code = self._process.poll()
            why = f"not listening within {START_TIMEOUT}s" if code is None else f"exited {code}"
            pytest.fail(f"idgate {why}; its stderr:\n{self._tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(  # noqa: S310 (our own http(s) URL)
                f"{self.url}/readyz", timeout=LOG_TIMEOUT, context=self.ssl_context
            ):
                pass
        except urllib.error.HTTPError as refused:
            pytest.fail(
                f"idgate listens but /readyz is {refused.code}; its stderr:\n{self._tail()}",
                pytrace=False,
            )

    def send_hup(self) -> None:
        self._process.send_signal(signal.SIGHUP)

    def send_term(self) -> None:
        """SIGTERM, without waiting: the drain starts."""
        self._process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, once the process has exited; fails the test after `timeout`."""
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"idgate still running {timeout}s after SIGTERM:\n{self._tail()}")

    def log_mark(self) -> int:
        """How many stderr lines there are now: pass it as `after` to wait for later ones."""
        return len(self._stderr.snapshot())

    def log_entries(self) -> list[Entry]:
        """Every JSON line written to stderr so far, in order."""
        return [e for e in map(parse_entry, self._stderr.snapshot()) if e is not None]

    def decision_log(self) -> list[Entry]:
        """The decision-log lines written so far, in order."""
        return [entry for entry in self.log_entries() if is_decision(entry)]

    async def wait_for_entry(self, predicate: Callable[[Entry], bool], *, after: int = 0) -> Entry:
        """The first JSON stderr line from index `after` on that satisfies `predicate`.

        idgate writes its log from a thread of its own, so a request's line may reach stderr a
        moment after the client has its response.
        """

        def matches(line: str) -> bool:
            entry = parse_entry(line)
            return entry is not None and predicate(entry)

        try:
            line = await asyncio.to_thread(
                self._stderr.wait_for, matches, start=after, timeout=LOG_TIMEOUT
            )
        except LookupError:
            pytest.fail(f"idgate never logged the expected line; its stderr:\n{self._tail()}")
        entry = parse_entry(line)
        assert entry is not None
        return entry

    async def wait_for_entries(
        self, predicate: Callable[[Entry], bool], count: int, *, after: int = 0
    ) -> None:
        """Until `count` JSON stderr lines from index `after` on satisfy `predicate` (one line
        per worker, say)."""
        for _ in range(count):
            await self.wait_for_entry(predicate, after=after)
            after = next(
                index + 1
                for index, line in enumerate(self._stderr.snapshot())
                if index >= after and predicate(parse_entry(line) or {})
            )

    async def wait_for_decision(self, path: str) -> Entry:
        """The decision-log line of the (one) request for `path`."""
        return await self.wait_for_entry(lambda e: is_decision(e) and e.get("path") == path)

    async def scrape(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as resp:
            assert resp.status == 200
            return await resp.text()

    async def metric(self, name: str, **labels: str) -> float:
        """One sample from `/metrics` right now; 0.0 when it is absent."""
        return sample(await self.scrape(), name, **labels)

    async def command(self, *arguments: str, secret: str | None = None) -> CommandRun:
        """`idgate <command> -c <this gate's config> <options>` (`arguments` are the command and
        its options), as an operator on its host would run it (with another session secret than
        the gate's when `secret` is given)."""
        command, *options = arguments
        environment = dict(SECRET_ENVIRONMENT)
        if secret is not None:
            environment["IDGATE_SESSION_SECRET"] = secret
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "proxy", command, "-c", str(self.config_path), *options),
            env=environment | {"PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return CommandRun(process.returncode, stdout.decode(), stderr.decode())

    def output(self) -> str:
        """Everything idgate wrote to stdout and stderr so far."""
        stdout = self._stdout_path.read_text(encoding="utf-8", errors="replace")
        return stdout + "\n".join(self._stderr.snapshot())

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; the exit code (idempotent)."""
        code = stop_process(self._process, STOP_TIMEOUT)
        self._stderr.join()
        return code

    def _tail(self) -> str:
        return "\n".join(self._stderr.snapshot()[-30:])


@contextmanager
def running_idgate(
    workdir: Path,
    document: Mapping[str, Any],
    *,
    ssl_context: ssl.SSLContext | None = None,
    public_url: str | None = None,
    workers: int = 1,
    port: int | None = None,
) -> Iterator[IdgateProcess]:
    """A ready idgate serving `document`, stopped when the block ends, whatever happens."""
    process = IdgateProcess(
        workdir,
        document,
        ssl_context=ssl_context,
        public_url=public_url,
        workers=workers,
        port=port,
    )
    try:
        process.wait_until_ready()
        yield process
    finally:
        process.stop()
