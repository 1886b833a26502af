"""One benchmark run: start every server, check it enforces, then interleaved rounds of wrk,
the streaming test, and the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from bench import nginx, profiling, stage, transfer, verify
from bench.environment import describe
from bench.measure import Measurement, aggregate
from bench.plan import GATEWAYS, WORKLOADS, Credential, Options, Target
from bench.report import render
from bench.servers import Servers
from bench.stage import DistinctTokens, Stage
from bench.targets import judge


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 (progress for whoever runs the benchmark)


def _verify(stage: Stage) -> bool:
    checks: list[verify.Check] = []
    issuer = stage.issuer
    for target in (Target.DIRECT, Target.NGINX):
        checks += verify.pass_through(target.value, stage.servers[target].port, issuer)
    checks += verify.bearer_enforced(
        Target.APACHE.value,
        stage.servers[Target.APACHE].port,
        issuer,
        forbidden=verify.FORBIDDEN_OR_UNAUTHORIZED,
    )
    for target in (Target.IDGATE, Target.IDGATE_1K, *GATEWAYS):
        port = stage.servers[target].port
        checks += verify.bearer_enforced(target.value, port, issuer, forbidden=frozenset({403}))
    idgate_server = stage.servers[Target.IDGATE]
    checks += verify.idgate_extras(
        Target.IDGATE.value,
        idgate_server.port,
        stage.metrics_port,
        issuer,
        cookie=stage.cookie(),
    )
    log = idgate_server.logs[0].read_text(errors="replace")
    checks.append(verify.decision_logged(Target.IDGATE.value, log))
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        say(f"  {mark} {check.target:<10} {check.what:<28} {check.detail}")
    return all(check.ok for check in checks)


def _rounds(stage: Stage, distinct: DistinctTokens) -> list[Measurement]:
    measurements = []
    rounds, seconds = stage.options.rounds, stage.options.seconds
    for index in range(rounds):
        for workload in WORKLOADS:
            stage.prime(workload)
            shift = index % len(workload.targets)
            for target in workload.targets[shift:] + workload.targets[:shift]:
                if workload.credential is Credential.DISTINCT_TOKENS:
                    measurement = distinct.run(target, seconds=seconds)
                else:
                    measurement = stage.measure(workload, target, seconds=seconds)
                measurements.append(measurement)
                say(_progress(index, rounds, measurement))
    return measurements


def _progress(index: int, rounds: int, m: Measurement) -> str:
    return (
        f"[{index + 1}/{rounds}] {m.workload.name:<28} {m.target.value:<10}"
        f"{m.wrk.rps:>9,.0f} req/s  p50 {m.wrk.p50_ms:6.2f} ms  p99 {m.wrk.p99_ms:7.1f} ms"
        f"  {m.cpu_us_per_request:5.0f} µs/req  errors {m.wrk.errors}"
        f"  others {m.others_share:4.0%}" + (f"  reused {m.repeated:,}" if m.repeated else "")
    )


def _transfers(stage: Stage, servers: Servers) -> list[transfer.Transfer]:
    server = stage.servers[Target.IDGATE]
    headers = verify.bearer(stage.token)
    size = stage.options.transfer_bytes
    down = transfer.download(server, server.url + nginx.DOWNLOAD_PATH, size=size, headers=headers)
    stored = nginx.uploaded_file(servers)
    source = servers.workdir / "www" / nginx.DOWNLOAD_PATH.lstrip("/")
    up = transfer.upload(
        server, server.url + nginx.UPLOAD_PATH, source=source, stored=stored, headers=headers
    )
    stored.unlink(missing_ok=True)
    for moved in (down, up):
        say(
            f"{moved.direction}: {moved.size_bytes >> 20} MB in {moved.seconds:.2f} s, status "
            f"{moved.status}, complete {moved.complete}, largest process "
            f"{moved.rss_before >> 20} -> {moved.rss_peak >> 20} MB"
        )
    return [down, up]


def _hot_spots(stage: Stage, distinct: DistinctTokens, directory: Path) -> str:
    try:
        return profiling.profile(stage, distinct, directory, say, short=True)
    except profiling.ProfilerMissing as missing:
        say(f"no profile: {missing}")
        return f"No profile: {missing}."


def run(
    workdir: Path,
    options: Options,
    write: Callable[[str], None],
    *,
    profile: Path | None = None,
    profiled: bool = True,
) -> int:
    """The whole benchmark, `profiled` with py-spy at the end (or, with `profile`, only py-spy
    summaries of idgate, written to that directory).

    1 when a server does not enforce its policy or a transfer did not arrive whole, else 0.
    """
    environment = describe()
    with Servers(workdir) as servers:
        say(f"starting servers in {workdir}")
        started = stage.start(servers, options)
        say("checking that every server enforces its policy")
        if not _verify(started):
            say("a server does not enforce what it is credited with: no numbers taken")
            return 1
        say(f"warming up ({options.warmup_seconds:g} s each)")
        for target in started.servers:
            started.measure(WORKLOADS[0], target, seconds=options.warmup_seconds)
        distinct = DistinctTokens(started, say)
        distinct.calibrate()
        if profile is not None:
            write(profiling.profile(started, distinct, profile, say, short=False))
            return 0
        measurements = _rounds(started, distinct)
        transfers = _transfers(started, servers)
        hot_spots = _hot_spots(started, distinct, workdir / "profile") if profiled else None
    rows = aggregate(measurements)
    markdown = render(
        environment=environment,
        options=options,
        body_bytes=len(nginx.BODY.encode()),
        tokens_minted=started.pool.minted,
        rows=rows,
        verdicts=judge(rows, transfers),
        transfers=transfers,
        hot_spots=hot_spots,
    )
    write(markdown)
    whole = all(moved.complete and 200 <= moved.status < 300 for moved in transfers)
    if not whole:
        say("a 100 MB transfer through idgate did not arrive whole")
    return 0 if whole else 1
