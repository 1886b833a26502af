"""Every response idgate itself writes says `Server: idgate`, never a version.

aiohttp names itself and the Python version (`Server: Python/3.11 aiohttp/3.14.5`) on every
response it prepares, including those its parser answers on its own (a 400 to a malformed
request) before any application hook runs; a version tells a scanner which advisories to try.
nginx's `server_tokens off` keeps the name and drops the version: so does this. An upstream's
own `Server` header is relayed unchanged (proxy/forward/headers.py).

aiohttp has no setting for it: its response module reads the name from a module global when it
prepares each response, so that global is what is replaced (once, for the process).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web_response

SERVER_NAME: Final = "idgate"


def name_the_server() -> None:
    """Make every response aiohttp prepares from now on say `Server: idgate` (idempotent)."""
    setattr(web_response, "SERVER_SOFTWARE", SERVER_NAME)  # noqa: B010 (mypy: a Final by type)
