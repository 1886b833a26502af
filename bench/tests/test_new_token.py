from bench.new_token import measure


async def test_a_new_token_costs_more_than_a_cached_one() -> None:
    """The microbenchmark runs idgate's real verifier, policy and signer: every token is allowed
    (it stops otherwise), and a new token costs more than a cached one."""
    costs = await measure(20, 1)
    assert costs.new > costs.cached > 0
    assert costs.new_stages["identify"] > costs.cached_stages["identify"] > 0
