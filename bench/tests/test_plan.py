from bench.plan import GATEWAYS, HIGH_CONCURRENCY, USERS, WORKLOADS, Target


def test_every_run_measures_the_nginx_gateways_beside_apache() -> None:
    """The plan is the same for `--quick` (CI's benchmark smoke) and full runs: nginx+idgate,
    cache off and on, runs at -c32 and -c256 and on the users workload, with Apache beside."""
    for workload in (WORKLOADS[0], HIGH_CONCURRENCY, USERS):
        assert Target.APACHE in workload.targets
        assert set(GATEWAYS) <= set(workload.targets)
    assert Target.IDGATE in USERS.targets
    assert USERS.name == "10,000 users' bearer tokens -c32"
