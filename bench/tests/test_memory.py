from bench.memory import measure


async def test_the_memory_tool_reads_a_worker_and_its_caches() -> None:
    """The tool reads a worker's imports (the benchmark's cookie-store config loads no redis-py)
    and RSS that does not shrink as the caches fill, with idgate's real verifier and signer."""
    found = await measure(20)
    assert "redis" not in found.optional_loaded
    assert 0 < found.worker_imports < found.runtime <= found.identities <= found.assertions
