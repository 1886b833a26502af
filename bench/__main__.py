"""`python -m bench [--quick] [--output FILE] ...`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Final

from bench.plan import FULL, QUICK
from bench.runner import run, say

REPO: Final = Path(__file__).resolve().parent.parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="idgate against direct, nginx and Apache + mod_auth_openidc"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round (about 2 minutes): a smoke test"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, help="length of one wrk run (default 10; quick 3)")
    parser.add_argument(
        "--output",
        type=Path,
        help="Markdown file for the results (default BENCHMARKS.md; with --quick: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory and its logs")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip py-spy at the end of a full run"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="instead of the benchmark: py-spy over idgate under each workload, stacks and "
        "summaries written to DIR",
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so every server is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    options = QUICK if args.quick else FULL
    changes = {"rounds": args.rounds, "seconds": args.seconds}
    options = dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
    quiet = args.quick or args.profile is not None
    output = args.output or (None if quiet else REPO / "BENCHMARKS.md")

    def write(markdown: str) -> None:
        sys.stdout.write(markdown)
        if output is not None:
            output.write_text(markdown)
            say(f"written to {output}")

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="idgate-bench-"))
    # Unprivileged nginx and Apache workers read the JWKS and files below it.
    workdir.chmod(0o755)
    try:
        profiled = not (args.quick or args.no_profile)
        return run(workdir, options, write, profile=args.profile, profiled=profiled)
    except KeyboardInterrupt:
        say("interrupted: every server was stopped")
        return 130
    finally:
        if args.keep:
            say(f"run directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
