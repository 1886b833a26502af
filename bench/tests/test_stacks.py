from pathlib import Path

from bench.stacks import brief, parse_frame, render, summarize

SITE = "/work/main/.venv/lib/python3.11/site-packages"
REPO = str(Path(__file__).resolve().parent.parent.parent)
OUTER = 'process 7:"python -m proxy";thread (0x1);run (/usr/lib/python3.11/asyncio/runners.py:118)'
JOSERFC = f"extract_compact ({SITE}/joserfc/_rfc7797/compact.py:40)"
LINES = [
    f"{OUTER};verify ({REPO}/proxy/identity/bearer.py:80);{JOSERFC} 3",
    f"{OUTER};verify ({REPO}/proxy/identity/bearer.py:81) 1",
    "garbage without a count",
]


def test_frames_name_function_and_short_file() -> None:
    """Frames lose their line number and the site-packages or stdlib prefix of their path."""
    frame = parse_frame(JOSERFC)
    assert frame is not None
    assert frame.label == "extract_compact (joserfc/_rfc7797/compact.py)"
    assert frame.area == "joserfc"
    assert parse_frame('process 7:"python -m proxy"') is None
    assert parse_frame("thread (0x7f00)") is None


def test_self_and_inclusive_time_are_summed_per_function() -> None:
    """Self time goes to the innermost frame; inclusive time to every function on the stack."""
    profile = summarize(LINES)
    assert profile.total == 4
    assert profile.own["extract_compact (joserfc/_rfc7797/compact.py)"] == 3
    assert profile.own["verify (proxy/identity/bearer.py)"] == 1
    assert profile.inclusive["verify (proxy/identity/bearer.py)"] == 4
    assert profile.inclusive["run (asyncio/runners.py)"] == 4
    assert profile.areas == {"joserfc": 3, "idgate (proxy/)": 1}


def test_render_shows_shares() -> None:
    """The summary states each function's share of all samples."""
    text = render(summarize(LINES))
    assert "75.0%  extract_compact (joserfc/_rfc7797/compact.py)" in text
    assert "4 samples" in text
    assert "100.0%  verify (proxy/identity/bearer.py)" in text.split("idgate functions")[1]


def test_brief_lists_libraries_and_top_functions_as_markdown() -> None:
    """The short form names each library's share on one line and the top functions below."""
    text = brief(summarize(LINES), top=1)
    assert text.startswith("Self time by library: joserfc 75.0%, idgate (proxy/) 25.0%.")
    assert "- 75.0% `extract_compact (joserfc/_rfc7797/compact.py)`" in text
    assert "verify" not in text.split("\n", 1)[1]
