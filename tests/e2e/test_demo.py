"""`idgate demo` as a newcomer runs it: one command, the printed curl line, a browser tour, Ctrl-C.

The demo runs as a real subprocess (`python -m proxy demo`); everything the test does comes from
what it printed: the URL to open, the curl line, the metrics URL and the explain line. Screenshots
of the tour go to `artifacts/demo/` at the repository root (git-ignored) and the test's directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from playwright.async_api import Browser, Page, async_playwright

from proxy.demo.banner import READY_LINE
from proxy.demo.ports import free_loopback_ports
from tests.e2e.tools import require_tool

REPO: Final = Path(__file__).resolve().parents[2]
ARTIFACTS: Final = REPO / "artifacts" / "demo"
#: The demo starts in well under 2 s here; the bound leaves room for a loaded CI machine.
READY_TIMEOUT_SECONDS: Final = 20.0
STOP_TIMEOUT_SECONDS: Final = 10.0
CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS: Final = 10_000


@dataclass
class Demo:
    process: asyncio.subprocess.Process
    printed: list[str]
    stderr_path: Path
    startup_seconds: float

    def printed_line(self, prefix: str) -> str:
        """The first printed line that starts with `prefix` (leading spaces ignored)."""
        return next(line.strip() for line in self.printed if line.strip().startswith(prefix))

    def printed_value(self, label: str) -> str:
        """The value after a label of the ready text, e.g. the URL after `Open`."""
        return self.printed_line(label).removeprefix(label).split()[0]

    @property
    def url(self) -> str:
        return self.printed_value("Open")

    async def interrupt(self) -> int:
        """Ctrl-C: SIGINT, and the exit code within STOP_TIMEOUT_SECONDS."""
        self.process.send_signal(signal.SIGINT)
        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
            return await self.process.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def running_demo(workdir: Path) -> AsyncIterator[Demo]:
    """`python -m proxy demo --port <free>` until its ready line; killed at the end if still up."""
    (port,) = free_loopback_ports(1)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
    stderr_path = workdir / "demo.stderr.log"
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy",
            "demo",
            "--port",
            str(port),
            cwd=workdir,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            while not printed or printed[-1] != READY_LINE:
                raw = await process.stdout.readline()
                assert raw, f"demo exited before it was ready:\n{stderr_path.read_text()}"
                printed.append(raw.decode("utf-8").rstrip("\n"))
        (workdir / "demo.stdout.log").write_text("\n".join(printed), encoding="utf-8")
        yield Demo(
            process=process,
            printed=printed,
            stderr_path=stderr_path,
            startup_seconds=time.monotonic() - started,
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.read()


def decision_lines(stderr: str) -> list[dict[str, object]]:
    entries = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "latency_ms" in entry:
            entries.append(entry)
    return entries


async def test_printed_curl_line_and_explain_line_work_and_ctrl_c_exits_cleanly(
    tmp_path: Path,
) -> None:
    """The printed curl line reaches /api/whoami as the demo service, the metrics URL and the
    explain line work, and Ctrl-C stops everything with exit code 0 and removes the config."""
    async with running_demo(tmp_path) as demo:
        curl = shlex.split(demo.printed_line("curl -H"))
        assert curl[:2] == ["curl", "-H"]
        name, _, value = curl[2].partition(": ")
        token = value.removeprefix("Bearer ")
        async with aiohttp.ClientSession() as http:
            async with http.get(curl[3], headers={name: value}) as response:
                assert response.status == 200
                seen = await response.json()
            async with http.get(demo.printed_value("Metrics")) as response:
                assert response.status == 200
                assert 'idgate_auth_decisions_total{decision="allow"' in await response.text()
        assert seen["path"] == "/api/whoami"
        assert seen["identity"]["X-Authenticated-User"] == "demo-service"
        assert seen["assertion"]["verified"] is True
        assert seen["assertion"]["claims"]["aud"] == "api"

        explain_line = shlex.split(demo.printed_line("idgate explain"))
        config_path = Path(explain_line[explain_line.index("-c") + 1])
        explained = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy",
            *explain_line[1:],
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await explained.communicate()
        assert explained.returncode == 4, "explain exits 4 for a denial"
        assert "decision:  deny" in output.decode()

        assert await demo.interrupt() == 0
        assert not await asyncio.to_thread(config_path.exists)
        stderr = demo.stderr()
        assert "DEV-ONLY OpenID issuer" in stderr
        assert token not in stderr
        assert demo.startup_seconds < READY_TIMEOUT_SECONDS


async def screenshot(page: Page, name: str, workdir: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for directory in (ARTIFACTS, workdir):
        await page.screenshot(path=directory / name, full_page=True)


async def sign_in_as(page: Page, demo: Demo, user: str) -> None:
    """From the dev issuer's sign-in page: press the user's button, end back at idgate."""
    await page.get_by_text("DEV ONLY").first.wait_for()
    await page.get_by_role("button", name=f"Sign in as {user}").click()
    await page.wait_for_url(lambda url: url.startswith(demo.url))


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    executable = require_tool(CHROMIUM, "Debian package chromium runs the demo's browser tour")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_browser_tour(tmp_path: Path) -> None:
    """alice signs in and sees her identity with a verified assertion; /beta lets her through and
    logs would_deny; bob, in a fresh browser profile, gets the 403 page at /admin."""
    async with headless_chromium() as browser, running_demo(tmp_path) as demo:
        alice = await browser.new_context()
        alice.set_default_timeout(TIMEOUT_MS)
        page = await alice.new_page()
        await page.goto(demo.url)
        await page.get_by_role("button", name="Sign in as carol").wait_for()
        await screenshot(page, "01-sign-in.png", tmp_path)
        await sign_in_as(page, demo, "alice")
        await page.get_by_text("Hello, alice").wait_for()
        assert await page.get_by_text("verified ✓").is_visible()
        await screenshot(page, "02-alice-home.png", tmp_path)
        beta = await page.goto(f"{demo.url}beta")
        assert beta is not None
        assert beta.status == 200
        assert await page.get_by_text("verified ✓").is_visible()
        await alice.close()

        bob = await browser.new_context()
        bob.set_default_timeout(TIMEOUT_MS)
        page = await bob.new_page()
        await page.goto(demo.url)
        await sign_in_as(page, demo, "bob")
        await page.get_by_text("Hello, bob").wait_for()
        admin = await page.goto(f"{demo.url}admin")
        assert admin is not None
        assert admin.status == 403
        assert await page.get_by_role("heading", name="Access denied").is_visible()
        await screenshot(page, "03-bob-admin-denied.png", tmp_path)
        await bob.close()

        assert await demo.interrupt() == 0
        assert any(
            entry.get("path") == "/beta"
            and entry.get("user") == "alice"
            and entry.get("decision") == "would_deny"
            for entry in decision_lines(demo.stderr())
        )


async def test_sign_out_ends_on_the_signed_out_page_and_signs_in_again(tmp_path: Path) -> None:
    """Sign out from the 403 page goes through the issuer's end_session and back to idgate's
    signed-out page, whose button leads to the issuer's sign-in page again."""
    async with headless_chromium() as browser, running_demo(tmp_path) as demo:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        await page.goto(f"{demo.url}admin")
        await sign_in_as(page, demo, "bob")
        await page.get_by_role("heading", name="Access denied").wait_for()
        await page.get_by_role("link", name="Sign out").click()
        await page.get_by_role("heading", name="Signed out").wait_for()
        await screenshot(page, "04-signed-out.png", tmp_path)
        await page.get_by_role("link", name="Sign in again").click()
        await page.get_by_role("button", name="Sign in as bob").wait_for()
        await context.close()
        assert await demo.interrupt() == 0
