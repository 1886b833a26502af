"""Real Redis topologies on loopback: a Sentinel set (primary, replica, three sentinels) and a
three-master Cluster, built from Debian's redis-server, redis-sentinel and redis-cli.

Every process logs to a pipe read line by line (LogLines), so readiness, replication and a
sentinel's `+switch-master` are waited for on what the servers say, with a deadline, never by
sleeping. Each topology is a context manager that stops every process it started.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import pytest
import redis

from proxy.config.model import RedisNode, RedisSentinelSettings, RedisSettings
from proxy.demo.ports import free_loopback_ports
from tests.e2e.idgate_process import LogLines
from tests.e2e.tools import require_tool, stop_process

READY_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 5.0
MASTER_NAME: Final = "idgate-sessions"
#: Sentinel's timings, small so a failover takes about a second (the defaults are 30 s and 3 min).
DOWN_AFTER_MS: Final = 500
FAILOVER_TIMEOUT_MS: Final = 2000
FAILOVER_DEADLINE: Final = 20.0


class RedisProcess:
    """One redis-server or redis-sentinel, its output as lines."""

    def __init__(self, command: list[str], workdir: Path, name: str, ready_mark: str) -> None:
        self.name = name
        self._process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self._process.stdout is not None
        self.log = LogLines(self._process.stdout, workdir / f"{name}.log")
        self.wait_for_line(lambda line: ready_mark in line.lower(), timeout=READY_TIMEOUT)

    def wait_for_line(self, predicate: Callable[[str], bool], *, timeout: float) -> str:
        try:
            return self.log.wait_for(predicate, start=0, timeout=timeout)
        except LookupError:
            tail = "\n".join(self.log.snapshot()[-20:])
            pytest.fail(f"{self.name}: expected line not seen; its output:\n{tail}", pytrace=False)

    def kill(self) -> None:
        """SIGKILL: the machine under Redis is gone, nothing is flushed or handed over."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        stop_process(self._process, STOP_TIMEOUT)
        self.log.join()


def _server_args(port: int, workdir: Path) -> list[str]:
    return [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]


def _wait_until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Ask `condition` until it holds; each question is a round trip to a server, so this waits
    on the servers' own state rather than on a guess of how long they take."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s", pytrace=False)
        time.sleep(0.05)  # the state lives in other processes: poll it


class SentinelSet:
    """A primary, its replica and three sentinels watching them, quorum two."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        server = require_tool("redis-server", "Redis backs the session store of replicas")
        sentinel = require_tool("redis-sentinel", "Sentinel fails Redis over (apt redis-sentinel)")
        ports = free_loopback_ports(5)
        self.primary_port, self.replica_port = ports[:2]
        self.sentinel_ports = ports[2:]
        self.primary = self._start(
            stack, workdir, "primary", [server, *_server_args(self.primary_port, workdir)]
        )
        self.replica = self._start(
            stack,
            workdir,
            "replica",
            [
                server,
                *_server_args(self.replica_port, workdir),
                "--replicaof",
                "127.0.0.1",
                str(self.primary_port),
            ],
        )
        self.replica.wait_for_line(
            lambda line: "master <-> replica sync: finished with success" in line.lower(),
            timeout=READY_TIMEOUT,
        )
        self.sentinels = []
        for index, port in enumerate(self.sentinel_ports):
            config = workdir / f"sentinel-{index}.conf"
            config.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {workdir}",
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2",
                        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                        "",
                    ]
                ),
                encoding="utf-8",
            )
            self.sentinels.append(
                self._start(
                    stack, workdir, f"sentinel-{index}", [sentinel, str(config)], "+monitor"
                )
            )
        # A failover needs every sentinel to know the replica and its two peers (learnt from
        # the primary's INFO and the hello messages the sentinels publish every two seconds).
        _wait_until(self._all_sentinels_see_everyone, "sentinels did not find each other", 15.0)

    @staticmethod
    def _start(
        stack: ExitStack, workdir: Path, name: str, command: list[str], mark: str = ""
    ) -> RedisProcess:
        process = RedisProcess(command, workdir, name, mark or "ready to accept connections")
        stack.callback(process.stop)
        return process

    def _all_sentinels_see_everyone(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(port=port, socket_timeout=1.0) as client:
                state = client.sentinel_master(MASTER_NAME)
            if state["num-slaves"] != 1 or state["num-other-sentinels"] != 2:
                return False
        return True

    def settings(self) -> RedisSettings:
        return RedisSettings(
            sentinel=RedisSentinelSettings(
                master=MASTER_NAME,
                addresses=tuple(RedisNode(host="127.0.0.1", port=p) for p in self.sentinel_ports),
            )
        )

    def document(self) -> dict[str, object]:
        """The `session.redis` block idgate's config would carry."""
        return {
            "sentinel": {
                "master": MASTER_NAME,
                "addresses": [f"127.0.0.1:{port}" for port in self.sentinel_ports],
            }
        }

    def primary_client(self) -> redis.Redis:
        return redis.Redis(port=self.primary_port, socket_timeout=2.0)

    def replicated(self) -> None:
        """Block until the replica has every write the primary acknowledged so far."""
        with self.primary_client() as client:
            assert client.execute_command("WAIT", 1, int(READY_TIMEOUT * 1000)) == 1

    def fail_over(self) -> int:
        """Kill the primary and wait for the sentinels to promote the replica; its port."""
        self.primary.kill()
        for sentinel in self.sentinels:
            sentinel.wait_for_line(lambda line: "+switch-master" in line, timeout=FAILOVER_DEADLINE)
        return self.replica_port


class Cluster:
    """Three masters, no replicas: every slot is served, each by one node."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        server = require_tool("redis-server", "Redis backs the session store of replicas")
        cli = require_tool("redis-cli", "redis-cli --cluster create builds the cluster")
        ports = free_loopback_ports(6)
        self.ports = ports[:3]
        self.nodes = []
        for index, (port, bus) in enumerate(zip(ports[:3], ports[3:], strict=True)):
            node_dir = workdir / f"node-{index}"
            node_dir.mkdir()
            process = RedisProcess(
                [
                    server,
                    *_server_args(port, node_dir),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(bus),
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ],
                node_dir,
                f"node-{index}",
                "ready to accept connections",
            )
            stack.callback(process.stop)
            self.nodes.append(process)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _wait_until(self._ok_everywhere, "the cluster did not become ok", 15.0)

    def _ok_everywhere(self) -> bool:
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=1.0) as client:
                info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text or "cluster_known_nodes:3" not in text:
                return False
        return True

    def settings(self) -> RedisSettings:
        return RedisSettings(
            cluster_nodes=tuple(RedisNode(host="127.0.0.1", port=p) for p in self.ports)
        )

    def flush(self) -> None:
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=2.0) as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextmanager
def running_sentinel_set(workdir: Path) -> Iterator[SentinelSet]:
    with ExitStack() as stack:
        yield SentinelSet(workdir, stack)


@contextmanager
def running_cluster(workdir: Path) -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield Cluster(workdir, stack)
