"""Loopback ports nothing listens on, for servers that bind by number a moment later."""

from __future__ import annotations

import socket


def free_loopback_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 (the kernel's picks for port 0). All probes are bound at once,
    so the kernel cannot hand out the same port twice; another process may still take one before
    its server binds it."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()
