"""Named token issuers: each with its own keys, audiences and claim mapping, chosen by `iss`.

`issuer.py` verifies one issuer's tokens, `kinds.py` holds what each kind of issuer adds (its
claim checks and its way from claims to a Principal), `registry.py` picks the issuer of a token by
its unverified `iss` before any key is looked up, and `peek.py` reads that `iss`.
"""

from proxy.identity.issuers.issuer import Issuer, IssuerKeys
from proxy.identity.issuers.registry import IssuerRegistry

__all__ = ["Issuer", "IssuerKeys", "IssuerRegistry"]
