"""The idgate benchmark: idgate against no proxy, nginx, and Apache + mod_auth_openidc.

`bench/run` (or `python -m bench`) does, on loopback and free ports, in a scratch directory:

    servers.py    start and stop every program in its own process group
    nginx.py      the upstream (small body, the JWKS, a large file, PUT uploads) and nginx as proxy
    apache.py     Apache + mod_auth_openidc checking signature, exp, iss, aud and group
    idgate.py     `idgate serve` as shipped (workers per core, decision log, metrics, assertion)
    tokens.py     the issuer: RSA key, JWKS, RS256 tokens (thousands, minted on every core)
    pool.py       distinct tokens handed out so idgate is never sent one twice
    stage.py      the running servers, and one measured run against any of them
    verify.py     every server enforces what it is credited with, or no number is taken
    wrk.py        one wrk run (wrk.lua cycles distinct tokens and prints the result line)
    measure.py    CPU and RSS from /proc (procfs.py) around each run; medians of the rounds
    transfer.py   100 MB up and down through idgate, its memory sampled meanwhile
    targets.py    the issue's targets judged; report.py renders BENCHMARKS.md
    profiling.py  py-spy over idgate at the end of a run (or alone with `--profile DIR`),
                  summed by stacks.py
    soak.py       `--soak MINUTES`: the mixed workload of soak_load.py against idgate in front
                  of soak_upstream.py, memory and descriptors sampled by soak_sample.py
    runner.py     the order of it all; __main__.py the command line

The plan (plan.py) runs every workload against every server it applies to, in interleaved rounds
whose server order rotates, so a slow minute of the machine does not land on one server alone.
"""
