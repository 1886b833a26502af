"""Which of idgate's worker processes holds a connection, read from /proc (Linux).

Workers share one port (SO_REUSEPORT): the kernel picks the worker for each new connection, and
nothing in a response names it. The server side of a TCP connection is a socket whose inode
/proc/net/tcp lists by both ports; the worker is the supervisor's child holding that inode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path


def _children(parent: int) -> list[int]:
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # the process ended meanwhile
        if f"\nPPid:\t{parent}\n" in text:
            children.append(int(status.parent.name))
    return children


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                return fields[9]
    return None


def worker_holding(supervisor: int, server_port: int, client_port: int) -> int | None:
    """The pid of the supervisor's child serving the connection from `client_port`."""
    inode = _server_socket_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in _children(supervisor):
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if str(descriptor.readlink()) == target:
                    return pid
            except OSError:
                continue
    return None


async def status_and_worker(
    supervisor: int, port: int, path: str, headers: Mapping[str, str]
) -> tuple[int, int | None]:
    """GET `path` on a new connection to 127.0.0.1:`port`: the response's status, and the worker
    that served it (looked up while the connection is still open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
        client_port = int(writer.get_extra_info("sockname")[1])
        worker = await asyncio.to_thread(worker_holding, supervisor, port, client_port)
        return int(status_line.split()[1]), worker
    finally:
        writer.close()
        await writer.wait_closed()
