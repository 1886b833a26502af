"""The results as Markdown: printed at the end of a run and written to BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bench.environment import Environment
from bench.measure import Row
from bench.plan import DECISION_CACHE_SECONDS, DISTINCT, USER_COUNT, Options, Target
from bench.targets import MB, Verdict, find
from bench.transfer import Transfer

_ABOUT: Final = """\
## What is measured

- **direct**: wrk straight to the upstream (nginx answering a {body_bytes}-byte body): no proxy.
- **nginx**: nginx as a plain reverse proxy (pooled keep-alive upstream connections, access log
  on), no authentication: the floor of one proxy hop.
- **apache**: Apache httpd (mpm_event, Debian's shipped settings, access log on) with
  mod_auth_openidc as an OAuth 2.0 resource server: RS256 signature against the keys at
  `OIDCOAuthVerifyJwksUri`, `exp`, and `Require claim` for `iss`, `aud` and the group.
- **idgate**: `idgate serve` with one worker per core, the decision log on (stderr to a file),
  the metrics listener on, the signed assertion on every forwarded request; 10 routes, the
  benchmark route last. **idgate-1k**: the same with 1,000 routes.
- **nginx+idgate**: nginx configured by `idgate render nginx` from that idgate's routes: nginx
  proxies, asking the idgate above (`auth_request`, `/oauth2/auth`) on every request; CPU and
  memory are nginx's and idgate's together. **nginx+idgate, decision cache {ceiling} s**: the
  same, nginx reusing each allow for as long as idgate's answer says, at most
  `forward_auth.decision_cache_seconds` = {ceiling} s (a revocation takes that long to apply).

Before any run, every server is checked to enforce what it is credited with (a valid token
passes; no token, another group, another issuer or audience, an expired, forged or `alg: none`
token are refused; for idgate also the session cookie, `/oauth2/auth`, the assertion upstream,
the decision log and the metrics listener).

Workloads: **same bearer token** on every request; **distinct bearer tokens**: each request
carries a token idgate has never been sent (pre-minted between runs, so idgate's
validated-token cache cannot help; mod_auth_openidc keeps no such cache); **{users:,} users'
bearer tokens**: {users:,} pre-minted tokens, one per user, each wrk thread going round its share
of them; before each round idgate is sent every one of them 6 times, unmeasured, so that each
worker's caches hold nearly all (a worker sees a token only when one of its connections sends
it); **session cookie**: a sealed idgate session cookie, minted by idgate's own code just before
the run; **/oauth2/auth**: forward-auth decisions (bearer token, `X-Original-URI`) as nginx
`auth_request` asks them.

wrk runs {threads} threads for {seconds:g} s per run, {rounds} interleaved round(s) (every
workload against every server, the order of servers rotating each round); tables show medians.
CPU µs/req is user + system time of the server's whole process tree (from /proc) divided by the
requests served; RSS is the largest single process (a worker) and the sum of all. wrk, the
upstream and the server share the machine's cores, as in the issue's measurements. "others' CPU"
is the share of the machine used during the run by anything else (the machine's busy time from
/proc/stat minus the server, the upstream and wrk): above a few percent, other programs competed
with that run. Numbers vary about ±15% between runs, so compare within one table.
"""


_HOT_SPOTS: Final = """\
## Where idgate's time goes

py-spy over idgate's workers (`--gil`: Python code running) for one more run of each workload
idgate serves at -c32, after the rounds. System time is mostly the kernel's side of socket I/O;
under uvloop the `write` that triggers it is counted where aiohttp calls it. Full summaries and
collapsed stacks: `bench/run --profile DIR`; what they mean: docs/benchmark.md.

"""


def _row(row: Row, rows: Sequence[Row]) -> str:
    apache = find(rows, row.workload, Target.APACHE)
    nginx = find(rows, row.workload, Target.NGINX)
    versus_apache = f"{row.rps / apache.rps:.2f}" if apache else "—"
    versus_nginx = f"{row.rps / nginx.rps:.2f}" if nginx else "—"
    reuse = f" ({row.repeated_share:.0%} reused)" if row.repeated_share else ""
    cells = [
        row.workload.name,
        row.target.value,
        f"{row.rps:,.0f}{reuse}",
        f"{row.p50_ms:.2f}",
        f"{row.p99_ms:.1f}",
        f"{row.errors:,}",
        f"{row.cpu_us_per_request:.0f}",
        f"{row.rss_max / MB:.0f} / {row.rss_total / MB:.0f}",
        versus_apache,
        versus_nginx,
        f"{row.others_share:.0%}",
    ]
    return "| " + " | ".join(cells) + " |"


def results_table(rows: Sequence[Row]) -> str:
    header = (
        "| workload | server | req/s | p50 ms | p99 ms | errors | CPU µs/req "
        "| RSS MB (max / all) | x Apache | x nginx | others' CPU |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    return "\n".join([header, *(_row(row, rows) for row in rows)])


def targets_table(verdicts: Sequence[Verdict]) -> str:
    lines = ["| target | measured | result |", "|---|---|---|"]
    for verdict in verdicts:
        result = "pass" if verdict.passed else f"**miss**: {verdict.gap}"
        lines.append(f"| {verdict.target} | {verdict.measured} | {result} |")
    return "\n".join(lines)


def transfers_table(transfers: Sequence[Transfer]) -> str:
    header = (
        "| direction | size | status | complete | seconds | MB/s "
        "| worker RSS before | peak | growth |\n"
        "|---|--:|--:|---|--:|--:|--:|--:|--:|"
    )
    lines = [
        f"| {t.direction} | {t.size_bytes / MB:.0f} MB | {t.status} "
        f"| {'yes' if t.complete else 'NO'} | {t.seconds:.2f} "
        f"| {t.size_bytes / MB / t.seconds:,.0f} | {t.rss_before / MB:.1f} MB "
        f"| {t.rss_peak / MB:.1f} MB | {t.growth / MB:+.1f} MB |"
        for t in transfers
    ]
    return "\n".join([header, *lines])


def render(
    *,
    environment: Environment,
    options: Options,
    body_bytes: int,
    tokens_minted: int,
    rows: Sequence[Row],
    verdicts: Sequence[Verdict],
    transfers: Sequence[Transfer],
    hot_spots: str | None = None,
) -> str:
    versions = " · ".join(f"{name} {version}" for name, version in environment.versions)
    distinct = find(rows, DISTINCT, Target.IDGATE)
    machine = (
        f"Generated by `bench/run` on {environment.date}: {environment.cores} cores "
        f"({environment.cpu}), {environment.memory_gb} GB RAM, Linux {environment.kernel}, "
        f"load average {environment.load} at the start."
    )
    sections = [
        "# idgate benchmarks",
        f"{machine}\n\n{versions}",
        "## Targets\n\n" + targets_table(verdicts),
        "## Results\n\n" + results_table(rows),
    ]
    if distinct is not None:
        sections.append(
            f"Distinct tokens: {tokens_minted:,} minted; each idgate run started past every "
            "token idgate had been sent, so its cache could not answer (an idgate run that "
            "outpaced the pool would show the share of requests that reused a token). "
            "mod_auth_openidc keeps no cache of validated tokens (it verifies every JWT access "
            "token afresh), so Apache's runs go round the same pool at no advantage."
        )
    if transfers:
        sections.append("## Streaming through idgate\n\n" + transfers_table(transfers))
    if hot_spots:
        sections.append(_HOT_SPOTS + hot_spots)
    sections.append(
        _ABOUT.format(
            body_bytes=body_bytes,
            threads=options.threads,
            seconds=options.seconds,
            rounds=options.rounds,
            ceiling=DECISION_CACHE_SECONDS,
            users=USER_COUNT,
        )
    )
    return "\n\n".join(sections).rstrip() + "\n"
