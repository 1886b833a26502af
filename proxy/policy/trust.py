"""Which peers are trusted proxies, and who the client is behind them.

Built once per Runtime from `trusted_proxies`, so a reload brings a new instance and no verdict
of the old configuration is ever reused.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from proxy.config.model import IPNetwork

#: A deployment sees few peers (the proxies in front, or its clients); the memo is emptied when
#: full rather than kept in order, since peer addresses come from the socket and stay short.
_VERDICTS_MAX: Final = 4096


class TrustedProxies:
    """`trusted_proxies` as a question about one connection's peer address."""

    __slots__ = ("_networks", "_verdicts")

    def __init__(self, networks: tuple[IPNetwork, ...]) -> None:
        self._networks = networks
        self._verdicts: dict[str, bool] = {}

    def trusts(self, peer: str | None) -> bool:
        """Whether the connection's peer address is a trusted proxy: asked for every request,
        from few peers, so the answer is remembered rather than parsed again."""
        if peer is None or not self._networks:
            return False
        known = self._verdicts.get(peer)
        if known is not None:
            return known
        try:
            verdict = self._contains(ipaddress.ip_address(peer))
        except ValueError:
            verdict = False
        if len(self._verdicts) >= _VERDICTS_MAX:
            self._verdicts.clear()
        self._verdicts[peer] = verdict
        return verdict

    def client_from_forwarded_for(self, value: str, peer: str) -> str:
        """The rightmost address in the chain that is not a trusted proxy: the first one a
        trusted hop vouches for. Entries to its left were written by the client and prove
        nothing."""
        for hop in reversed([part.strip() for part in value.split(",")]):
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return peer
            if not self._contains(address):
                return str(address)
        return peer

    def _contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self._networks)
