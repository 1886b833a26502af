"""TokenReview: whether the Kubernetes API server still stands behind a service-account token.

A signature and an `exp` say a token was issued; only the API server knows whether the pod or
service account it is bound to still exists. Asked with `spec.audiences` set to the issuer's
audiences, it answers for those audiences only. Answers are cached by token hash, briefly and
never beyond the token's `exp`, in a bounded cache; an API server that cannot be asked fails
closed (503) for tokens it has not answered for.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import aiohttp

from proxy.config.model import IssuerSettings
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.oidc.discovery import ProviderError
from proxy.oidc.kubernetes_api import KubernetesApi
from proxy.reasons import TokenFailure

logger = logging.getLogger("idgate.oidc")

TOKEN_REVIEWS_PATH: Final = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 (a path)


def token_reviews(settings: IssuerSettings, http: aiohttp.ClientSession) -> TokenReviews | None:
    """The TokenReviews of a `kubernetes` issuer with `token_review: true`; None otherwise."""
    kubernetes = settings.kubernetes
    if kubernetes is None or not kubernetes.token_review:
        return None
    return TokenReviews(
        KubernetesApi(kubernetes, http, timeout=settings.http_timeout_seconds),
        audiences=settings.audiences,
        cache_seconds=kubernetes.token_review_cache_seconds,
        cache_size=kubernetes.token_review_cache_size,
    )


class TokenReviews:
    """TokenReview answers for tokens already verified, cached per token."""

    def __init__(
        self,
        api: KubernetesApi,
        *,
        audiences: Sequence[str],
        cache_seconds: float,
        cache_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (Unix time) decides when a cached answer has expired."""
        self._api = api
        self._audiences = tuple(audiences)
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._answers: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()

    async def check(self, token: str, *, user: str, expires_at: float) -> None:
        """Raises InvalidToken (token_review) unless the API server authenticates `token` as
        `user` for one of the audiences; ProviderUnavailable when it cannot be asked."""
        key = hashlib.sha256(token.encode("ascii")).digest()
        authenticated = self._cached(key)
        if authenticated is None:
            authenticated = await self._review(token, user)
            self._remember(
                key, authenticated, until=min(expires_at, self._clock() + self._cache_seconds)
            )
        if not authenticated:
            raise InvalidToken(TokenFailure.TOKEN_REVIEW)

    def _cached(self, key: bytes) -> bool | None:
        answer = self._answers.get(key)
        if answer is None:
            return None
        until, authenticated = answer
        if until <= self._clock():
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return authenticated

    def _remember(self, key: bytes, authenticated: bool, *, until: float) -> None:
        self._answers[key] = (until, authenticated)
        self._answers.move_to_end(key)
        if len(self._answers) > self._cache_size:
            self._answers.popitem(last=False)

    async def _review(self, token: str, user: str) -> bool:
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": list(self._audiences)},
        }
        try:
            answer = await self._api.create(TOKEN_REVIEWS_PATH, review)
        except ProviderError as error:
            # 401/403 here: idgate's own service account may not create TokenReviews (it needs
            # the `system:auth-delegator` ClusterRole).
            logger.warning("TokenReview failed, refusing the token: %s", error)
            raise ProviderUnavailable("the Kubernetes API server cannot review tokens") from None
        return self._vouches(answer.get("status"), user)

    def _vouches(self, status: Any, user: str) -> bool:
        if not isinstance(status, Mapping) or status.get("authenticated") is not True:
            return False
        reviewed = status.get("user")
        username = reviewed.get("username") if isinstance(reviewed, Mapping) else None
        audiences = status.get("audiences")
        # The review must be about the same service account. TokenReviewStatus.audiences: "A
        # client of the TokenReview API that sets the spec.audiences field should validate that a
        # compatible audience identifier is returned in the status.audiences field to ensure that
        # the TokenReview server is audience aware."
        return (
            username == user
            and isinstance(audiences, list)
            and any(audience in self._audiences for audience in audiences)
        )
