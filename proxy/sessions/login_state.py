"""The login state: what ties a provider's callback to the browser that started the sign-in.

SPEC: "the login `state` is bound to the browser and single-use". At /oauth2/start the state,
nonce, PKCE verifier and return URL are sealed into a short-lived cookie named after a hash of
the state, so several tabs can sign in at once. The callback opens only the cookie that the
returned `state` names, compares it in constant time, deletes the cookie, and remembers the state
as used for the cookie's lifetime, so a copied cookie cannot be replayed either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cachetools import TTLCache

from proxy.config.model import Secret, StepUp
from proxy.sessions.crypto import Sealer, SealError
from proxy.sessions.store import CookieChange

MAX_AGE_SECONDS: Final = 600
_PURPOSE: Final = b"idgate login state v1"
_USED_STATES_MAX: Final = 100_000


class InvalidLoginState(Exception):
    """No, a forged, expired or already used login state: the sign-in must start over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginState:
    state: str
    nonce: str
    code_verifier: str
    redirect_to: str
    created_at: float
    step_up: StepUp | None = None
    """What the sign-in asked for on behalf of the route it returns to; the callback holds the
    provider's answer to it (a tampered URL asks for less, and the answer shows it)."""


class LoginStates:
    def __init__(
        self,
        secrets: Sequence[Secret],
        *,
        cookie_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sealer = Sealer(secrets, purpose=_PURPOSE)
        self._prefix = cookie_prefix
        self._clock = clock
        self._used: TTLCache[str, bool] = TTLCache(_USED_STATES_MAX, MAX_AGE_SECONDS, clock)

    def cookie_name(self, state: str) -> str:
        tag = hashlib.sha256(state.encode()).hexdigest()[:16]
        return f"{self._prefix}{tag}"

    def begin(
        self,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        redirect_to: str,
        step_up: StepUp | None = None,
    ) -> CookieChange:
        """The cookie that carries this sign-in's state back to the callback."""
        name = self.cookie_name(state)
        fields: dict[str, object] = {
            "s": state,
            "n": nonce,
            "v": code_verifier,
            "r": redirect_to,
            "t": self._clock(),
        }
        if step_up is not None:
            fields["u"] = {
                "m": step_up.max_age_seconds,
                "a": list(step_up.acr_values),
                "r": sorted(step_up.amr),
            }
        payload = json.dumps(fields).encode()
        sealed = self._sealer.seal(payload, aad=name.encode())
        return CookieChange(name=name, value=sealed, max_age=MAX_AGE_SECONDS)

    def finish(self, state: str, cookies: Mapping[str, str]) -> tuple[LoginState, CookieChange]:
        """The state this callback completes, and the deletion of its cookie.

        Raises InvalidLoginState for a missing, forged, expired or replayed state.
        """
        name = self.cookie_name(state)
        sealed = cookies.get(name)
        if sealed is None:
            raise InvalidLoginState("no sign-in in progress for this state")
        try:
            raw = json.loads(self._sealer.open(sealed, aad=name.encode()))
            login = LoginState(
                state=str(raw["s"]),
                nonce=str(raw["n"]),
                code_verifier=str(raw["v"]),
                redirect_to=str(raw["r"]),
                created_at=float(raw["t"]),
                step_up=_step_up(raw.get("u")),
            )
        except (SealError, ValueError, KeyError, TypeError):
            raise InvalidLoginState("sign-in state cookie is not valid") from None
        if not hmac.compare_digest(login.state.encode(), state.encode()):
            raise InvalidLoginState("sign-in state does not match")
        if self._clock() - login.created_at > MAX_AGE_SECONDS:
            raise InvalidLoginState("sign-in took too long")
        if state in self._used:
            raise InvalidLoginState("sign-in state already used")
        self._used[state] = True
        return login, CookieChange(name=name, value=None)

    def deletion(self, state: str) -> CookieChange:
        """Clears the cookie a (possibly forged) state names, so nothing lingers after a failure."""
        return CookieChange(name=self.cookie_name(state), value=None)


def _step_up(raw: object) -> StepUp | None:
    """The step-up a sealed state carries (it was written by `begin`, so a bad one is a bug)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("step-up is not an object")
    max_age = raw["m"]
    return StepUp(
        max_age_seconds=None if max_age is None else int(max_age),
        acr_values=tuple(str(value) for value in raw["a"]),
        amr=frozenset(str(value) for value in raw["r"]),
    )
