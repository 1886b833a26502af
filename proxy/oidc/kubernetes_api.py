"""The Kubernetes API server as a token issuer: discovery, keys and TokenReview, over the
cluster CA and with the pod's own service-account token.

The kubelet rotates the pod's token (a projected token lives an hour by default), so the file is
read again for every call; the CA file is re-read when it changes. Calls take a path on the API
server, never a URL, and a redirect is an error, not followed: the token reaches the API server
and nothing else, whatever a document or an answer names.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from proxy.config.model import KubernetesSettings
from proxy.oidc.discovery import ProviderError, request_json_object

_FileVersion = tuple[int, int, int]


class KubernetesApi:
    """Calls to one cluster's API server, authenticated as the pod idgate runs in."""

    def __init__(
        self,
        settings: KubernetesSettings,
        http: aiohttp.ClientSession,
        *,
        timeout: float,
    ) -> None:
        self._settings = settings
        self._http = http
        self._timeout = timeout
        self._ca: tuple[_FileVersion, ssl.SSLContext] | None = None

    async def get(self, path: str) -> dict[str, Any]:
        """GET a JSON object at an API server path (`/openid/v1/jwks`)."""
        return await self._call("GET", path)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON object to an API server path (201 Created is what a create answers)."""
        return await self._call("POST", path, body)

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        # Only a path is taken: the token can go to no other origin than the API server's.
        context, token = await asyncio.to_thread(self._credentials)
        return await request_json_object(
            self._http,
            method,
            self._settings.api_server + path,
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {token}"},
            json_body=body,
            ssl_context=context,
            accepted=(200,) if body is None else (200, 201),
        )

    def _credentials(self) -> tuple[ssl.SSLContext, str]:
        """The CA context and the pod's token as they are on disk now (runs in a thread)."""
        return self._ca_context(), _read_token(self._settings.token_file)

    def _ca_context(self) -> ssl.SSLContext:
        path = self._settings.ca_file
        try:
            found = path.stat()
            version = (found.st_ino, found.st_mtime_ns, found.st_size)
            if self._ca is None or self._ca[0] != version:
                self._ca = (version, ssl.create_default_context(cafile=str(path)))
        except (OSError, ssl.SSLError) as error:
            raise ProviderError(f"API server CA {path}: {type(error).__name__}") from error
        return self._ca[1]


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ProviderError(f"service-account token {path}: {type(error).__name__}") from error
    if not token or any(char.isspace() or not char.isprintable() for char in token):
        raise ProviderError(f"service-account token {path} holds no token")
    return token
