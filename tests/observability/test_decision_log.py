"""The decision log's writer: every line handed to it reaches the stream, in order."""

from __future__ import annotations

import io
import json

from proxy.observability.decision_log import _LineWriter


async def test_lines_logged_on_the_loop_are_all_written_in_order_by_stop() -> None:
    """Lines wait on the loop's side to be handed over in batches; none is lost at shutdown."""
    stream = io.StringIO()
    writer = _LineWriter(stream)
    writer.start()
    for number in range(600):  # more than one batch
        writer.add(f'{{"n":{number}}}')
    writer.stop()
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(600))


def test_lines_logged_without_a_running_loop_are_written() -> None:
    stream = io.StringIO()
    writer = _LineWriter(stream)
    writer.start()
    writer.add('{"n":1}')
    writer.stop()
    assert stream.getvalue() == '{"n":1}\n'
