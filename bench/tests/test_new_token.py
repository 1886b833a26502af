from bench.new_token import measure


async def test_a_new_token_costs_more_than_a_cached_one() -> None:
    """The microbenchmark runs idgate's real verifier, policy and signer: every token is allowed
    (it stops otherwise), and a new token costs more than a cached one."""
    new, cached = await measure(20, 1)
    assert new > cached > 0
