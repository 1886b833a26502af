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
from bench.soak import kept_section, render, soak, with_section

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
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead of the benchmark: idgate under a mixed workload for MINUTES, memory and "
        "descriptors sampled every second; the result replaces BENCHMARKS.md's Soak section",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="soak: concurrent clients (default 32)"
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


def _soak(workdir: Path, minutes: float, concurrency: int, output: Path) -> int:
    say(f"soak: {minutes:g} minutes, {concurrency} clients")
    result = soak(workdir, seconds=minutes * 60, concurrency=concurrency)
    section = render(result)
    sys.stdout.write(section)
    previous = output.read_text() if output.exists() else ""
    output.write_text(with_section(previous, section))
    say(f"written to {output}")
    return 0 if result.passed else 1


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
            previous = output.read_text() if output.exists() else ""
            if (soak_section := kept_section(previous)) is not None:
                markdown = with_section(markdown, soak_section)
            output.write_text(markdown)
            say(f"written to {output}")

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="idgate-bench-"))
    # Unprivileged nginx and Apache workers read the JWKS and files below it.
    workdir.chmod(0o755)
    try:
        if args.soak is not None:
            return _soak(
                workdir, args.soak, args.concurrency, args.output or REPO / "BENCHMARKS.md"
            )
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
