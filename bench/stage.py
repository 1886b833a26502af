"""The running servers, and one measured wrk run against any of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from bench import apache, idgate, nginx, verify, wrk
from bench.measure import Measurement, snapshot
from bench.plan import (
    DECISION_CACHE_SECONDS,
    DISTINCT,
    GATEWAYS,
    USER_COUNT,
    Credential,
    Options,
    Target,
    Workload,
)
from bench.pool import TokenPool, TokenSlice
from bench.servers import Server, ServerFailed, Servers
from bench.session_cookie import cookie_header
from bench.tls import write_tls_files
from bench.tokens import GROUP, Issuer
from proxy.config.load import load_settings
from proxy.config.model import ForwardAuthSettings
from proxy.demo.ports import free_loopback_ports

AUDIENCE: Final = "https://api.bench.test"
SUBJECT: Final = "bench-user"
#: Before each idgate run, the pool holds this many times what its fastest run so far used.
_POOL_MARGIN: Final = 1.5
#: The calibration run has new tokens for up to this many requests per second.
_CALIBRATION_RATE: Final = 5_000
#: Each user's token is sent this often before the users workload is measured: a worker has
#: then missed about 2**-6 (under 2%) of them.
_PRIMING_PASSES: Final = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    servers: Mapping[Target, Server]
    companions: Mapping[Target, int]
    """Process trees whose CPU and memory count as the target's too: idgate behind nginx."""
    idgate_config: Path
    idgate_secret: str
    metrics_port: int
    issuer: Issuer
    token: str
    """The one token of the same-token workloads."""
    pool: TokenPool
    """Tokens of the distinct-token workload."""
    users: Path
    """USER_COUNT tokens, one per user, for the users workload (wrk goes round them)."""
    options: Options

    def cookie(self) -> str:
        return cookie_header(
            self.idgate_config, secret=self.idgate_secret, issuer=self.issuer, subject=SUBJECT
        )

    def measure(
        self,
        workload: Workload,
        target: Target,
        *,
        seconds: float,
        tokens: TokenSlice | None = None,
    ) -> Measurement:
        """One wrk run of `workload` against `target`, with the server's CPU and memory."""
        server = self.servers[target]
        path = nginx.BENCH_PATH
        headers: dict[str, str] = {}
        if workload.credential is Credential.SESSION:
            headers["Cookie"] = self.cookie()
        elif workload.credential is Credential.FORWARD_AUTH:
            path = verify.FORWARD_AUTH_PATH
            headers |= {"X-Original-URI": nginx.BENCH_PATH, "X-Original-Method": "GET"}
            headers |= verify.bearer(self.token)
        elif workload.credential is Credential.SAME_TOKEN:
            headers |= verify.bearer(self.token)
        elif workload.credential is Credential.USERS:
            tokens = TokenSlice(path=self.users, start=0, capacity=USER_COUNT, tracked=False)
        server.truncate_logs()
        upstream = None if target is Target.DIRECT else self.servers[Target.DIRECT].process.pid
        companion = self.companions.get(target)
        before = snapshot(server.process.pid, upstream, companion)
        result = wrk.run(
            server.url + path,
            connections=workload.connections,
            threads=self.options.threads,
            seconds=seconds,
            headers=headers,
            tokens=(tokens.path, tokens.start) if tokens else None,
        )
        after = snapshot(server.process.pid, upstream, companion)
        repeated = tokens.reused(result, self.options.threads) if tokens else 0
        return Measurement.of(
            workload, target, result, before=before, after=after, repeated=repeated
        )

    def prime(self, workload: Workload) -> None:
        """Before a round of the users workload: send idgate the users' tokens, unmeasured, until
        each worker's caches hold nearly all of them, as after a while of real traffic. The
        never-seen workload pushes them out again, hence once per round; Apache's runs in
        between leave idgate's caches alone, and nginx+idgate asks the same idgate.

        Each wrk connection stays with one worker, and a token goes to whichever connection
        sends next: a worker misses a user sent n times with odds 2**-n (two workers), so every
        token is sent _PRIMING_PASSES times, in runs as long as a measured one."""
        if workload.credential is not Credential.USERS:
            return
        server = self.servers[Target.IDGATE]
        sent = 0
        while sent < _PRIMING_PASSES * USER_COUNT:
            result = wrk.run(
                server.url + nginx.BENCH_PATH,
                connections=workload.connections,
                threads=self.options.threads,
                seconds=self.options.seconds,
                headers={},
                tokens=(self.users, sent // self.options.threads),
            )
            if result.tokens_sent == 0:
                raise ServerFailed(f"priming {Target.IDGATE.value} with the users' tokens failed")
            sent += result.tokens_sent


def start(servers: Servers, options: Options) -> Stage:
    """Every server started and ready: the upstream first, since the others read its JWKS."""
    upstream_port, tls_port, nginx_port, apache_port = free_loopback_ports(4)
    tls = write_tls_files(servers.workdir)
    issuer = Issuer(issuer=f"http://127.0.0.1:{upstream_port}", audience=AUDIENCE)
    upstream = nginx.start_upstream(
        servers,
        port=upstream_port,
        tls_port=tls_port,
        tls=tls,
        jwks=issuer.jwks(),
        download_bytes=options.transfer_bytes,
    )
    started = {Target.DIRECT: upstream}
    started[Target.NGINX] = nginx.start_proxy(servers, port=nginx_port, upstream_port=upstream_port)
    started[Target.APACHE] = apache.start(
        servers,
        port=apache_port,
        upstream=upstream.url,
        jwks_uri=f"https://127.0.0.1:{tls_port}{nginx.JWKS_PATH}",
        ca_bundle=tls.ca,
        issuer=issuer.issuer,
        audience=AUDIENCE,
        group=GROUP,
    )
    secret = idgate.new_secret()
    metrics_port = 0
    for target, routes in ((Target.IDGATE, 10), (Target.IDGATE_1K, 1000)):
        server, port = idgate.start(
            servers,
            name=target.value,
            issuer=issuer.issuer,
            audience=AUDIENCE,
            upstream=upstream.url,
            route_count=routes,
            secret=secret,
        )
        started[target] = server
        metrics_port = metrics_port or port
    config = servers.workdir / f"{Target.IDGATE.value}.yaml"
    decider = started[Target.IDGATE]
    settings = load_settings(config, {idgate.SECRET_VARIABLE: secret})
    for target, ceiling in (
        (Target.NGINX_IDGATE, 0),
        (Target.NGINX_IDGATE_CACHED, DECISION_CACHE_SECONDS),
    ):
        started[target] = nginx.start_gateway(
            servers,
            name="nginx-idgate" if ceiling == 0 else "nginx-idgate-cached",
            port=free_loopback_ports(1)[0],
            # Without a ceiling the rendered config has no decision cache at all.
            settings=replace(
                settings, forward_auth=ForwardAuthSettings(decision_cache_seconds=ceiling)
            ),
            idgate=f"127.0.0.1:{decider.port}",
        )
    pool = TokenPool(
        issuer,
        servers.workdir / "distinct-tokens.txt",
        threads=options.threads,
        processes=idgate.worker_count(),
    )
    users = servers.workdir / "users-tokens.txt"
    tokens = issuer.mint_many(USER_COUNT, prefix="user", processes=idgate.worker_count())
    users.write_text("".join(f"{token}\n" for token in tokens))
    return Stage(
        servers=started,
        companions=dict.fromkeys(GATEWAYS, decider.process.pid),
        idgate_config=config,
        idgate_secret=secret,
        metrics_port=metrics_port,
        issuer=issuer,
        token=issuer.token(SUBJECT),
        pool=pool,
        users=users,
        options=options,
    )


class DistinctTokens:
    """Distinct-token runs: idgate's start past every token it was sent, with the pool topped up
    beforehand from idgate's fastest uncached rate so far; Apache's from the pool's start."""

    def __init__(self, stage: Stage, say: Callable[[str], None]) -> None:
        self._stage = stage
        self._say = say
        self.rps = 0.0

    def calibrate(self) -> None:
        """A first, short idgate run, to size the pool for the real ones."""
        seconds = self._stage.options.warmup_seconds
        self._stage.pool.top_up(math.ceil(_CALIBRATION_RATE * seconds))
        self.run(Target.IDGATE, seconds=seconds)

    def prepare(self, seconds: float) -> None:
        """Mint what an idgate run of `seconds` needs (run() does it too; a profiler calls this
        first, so that minting is not inside its sampling window)."""
        minted = self._stage.pool.top_up(math.ceil(self.rps * seconds * _POOL_MARGIN))
        if minted:
            self._say(f"minted {minted:,} distinct tokens ({self._stage.pool.minted:,} in all)")

    def run(self, target: Target, *, seconds: float) -> Measurement:
        pool = self._stage.pool
        if target is not Target.IDGATE:
            return self._stage.measure(DISTINCT, target, seconds=seconds, tokens=pool.from_start())
        self.prepare(seconds)
        tokens = pool.fresh()
        measured = self._stage.measure(DISTINCT, target, seconds=seconds, tokens=tokens)
        pool.consumed(tokens, measured.wrk)
        self.rps = max(self.rps, measured.wrk.rps)
        return measured
