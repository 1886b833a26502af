import pytest

from bench.wrk import WrkFailed, parse_output

OUTPUT = """Running 10s test @ http://127.0.0.1:1234/bench/item
  2 threads and 32 connections
BENCH {"requests":50000,"duration_us":10000000,"connect":0,"read":3,"write":1,"status":7,\
"timeout":2,"p50_us":1500,"p99_us":25000,"tokens_sent":0,"tokens_max_thread":0}
"""


def test_result_line_becomes_rate_latency_and_errors() -> None:
    """The done() line gives req/s, percentiles in ms, socket errors and bad statuses apart."""
    result = parse_output(OUTPUT)
    assert result.rps == 5000
    assert (result.p50_ms, result.p99_ms) == (1.5, 25.0)
    assert result.socket_errors == 3 + 1 + 2
    assert result.bad_status == 7
    assert result.errors == 13


def test_output_without_result_line_is_an_error() -> None:
    """A wrk that printed no result line (a Lua error) fails loudly rather than as zero."""
    with pytest.raises(WrkFailed):
        parse_output("PANIC: unprotected error in call to Lua API\n")
