"""`coco bench BENCHMARK`: one `bench` command; each benchmark is a module here that registers itself into it.

Adding a benchmark = one module with ``register(benchmarks)`` + one line in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse

from coco_agent.cli.bench import longtext, sandbox
from coco_agent.cli.exit_codes import ExitCode

BENCHMARKS = (sandbox, longtext)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark")
    benchmarks = parser.add_subparsers(metavar="BENCHMARK")
    for benchmark in BENCHMARKS:
        benchmark.register(benchmarks)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return ExitCode.USAGE

    parser.set_defaults(func=show_help)
