"""The Kubernetes API server as a token issuer: discovery, keys and TokenReview, over the
cluster CA and with the pod's own service-account token.

The kubelet rotates the pod's token (a projected token lives an hour by default), so the file is
read again for every call; the CA file is re-read when it changes. The token goes to the API
server's own origin (scheme, host and port) only, and a redirect is never followed with it: a
discovery document, a configured URL or a redirect naming another host never receives it.

The keys come from the API server's own `/openid/v1/jwks` whatever discovery advertises: the
advertised `jwks_uri` (`--service-account-jwks-uri`) is for verifiers outside the cluster, which
may reach neither the API server nor its CA; the API server serves the same keys at this path.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from proxy.config.model import KubernetesSettings
from proxy.oidc.discovery import WELL_KNOWN_PATH, ProviderError, request_json_object

#: Kubernetes "Service account issuer discovery": the API server serves the issuer's JWKS here.
JWKS_PATH: Final = "/openid/v1/jwks"

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
        self._origin = _origin(settings.api_server)
        self._ca: tuple[_FileVersion, ssl.SSLContext] | None = None

    @property
    def discovery_url(self) -> str:
        return self._settings.api_server + WELL_KNOWN_PATH

    @property
    def jwks_url(self) -> str:
        return self._settings.api_server + JWKS_PATH

    async def get(self, url: str) -> dict[str, Any]:
        """GET a JSON object; with the pod's token and the cluster CA only on the API server's
        origin, anywhere else as any public URL is fetched."""
        if _origin(url) != self._origin:
            return await request_json_object(self._http, "GET", url, timeout=self._timeout)
        context, token = await asyncio.to_thread(self._credentials)
        return await request_json_object(
            self._http,
            "GET",
            url,
            timeout=self._timeout,
            headers=_authorization(token),
            ssl_context=context,
        )

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON object to an API path (201 Created is what a create answers)."""
        context, token = await asyncio.to_thread(self._credentials)
        return await request_json_object(
            self._http,
            "POST",
            self._settings.api_server + path,
            timeout=self._timeout,
            headers=_authorization(token),
            json_body=body,
            ssl_context=context,
            accepted=(200, 201),
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


def _authorization(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return (parts.scheme.lower(), "", None)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port or default)
