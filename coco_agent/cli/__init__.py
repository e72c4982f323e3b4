"""The `coco` command line: one module per command, each registering itself, listed once in ``COMMANDS``.

Adding a command = one module with ``register(subparsers)`` (it adds its parser and sets ``func(args) -> int``)
+ one line in ``COMMANDS``. Shared options live in ``options.py`` (defaults read from ``RunContext``), terminal
output in ``display.py``, exit codes in ``exit_codes.py``. Command modules import only light things at the top
(argparse, these helpers), so `coco --help` loads no LangChain, LangGraph, torch or matplotlib; the work is
done by the library (``coco_agent.generate``, ``resume``, ``render``, ``score``, the batch engine).
"""

from __future__ import annotations

import argparse
import sys

from coco_agent.cli import (
    batch,
    bench,
    edit,
    generate,
    render,
    replay,
    report,
    resume,
    review,
    sandbox,
    score,
    studio,
)
from coco_agent.cli.display import INTERRUPTED_RUN
from coco_agent.cli.exit_codes import ExitCode

COMMANDS = (generate, resume, replay, render, sandbox, batch, report, score, bench, edit, review, studio)


def build_parser() -> argparse.ArgumentParser:
    """The `coco` parser with every command of ``COMMANDS`` registered, in that order."""
    parser = argparse.ArgumentParser(prog="coco", description="Code as CoT text-to-image agent.")
    subparsers = parser.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `coco ARGS` (``sys.argv`` when ``argv`` is None); return the exit code (``ExitCode``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return int(ExitCode.USAGE)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(INTERRUPTED_RUN, file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


__all__ = ["COMMANDS", "ExitCode", "build_parser", "main"]
