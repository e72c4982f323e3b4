"""`coco generate PROMPT -o DIR`: one prompt -> one run directory (`coco_agent.generate`)."""

from __future__ import annotations

import argparse
import sys

import coco_agent.cli.display as display
from coco_agent.cli.options import add_run_options, context_from_args, settle
from coco_agent.rundir import RESULT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="turn a prompt into an image by way of drawing code")
    parser.add_argument("prompt", help="what to draw; '-' reads it from standard input")
    parser.add_argument("-o", "--out", help="run directory (default runs/<time>)")
    add_run_options(parser, deadline=True)
    parser.add_argument("--force", action="store_true", help="start over in an existing run directory")
    parser.add_argument(
        "--json", action="store_true", help=f"print {RESULT_FILE} to stdout; no progress display"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Settle the models (a usage error when none can be chosen), run, show the result; exit by its status."""
    import coco_agent
    from coco_agent.errors import RunDirError

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    ctx = context_from_args(args)
    try:
        settle(ctx)
    except ValueError as exc:  # no model (ModelChoiceError), a bad price file, a setting that cannot work
        return display.fail(exc)
    try:
        result = display.with_progress(
            args.json,
            lambda on_update: coco_agent.generate(
                prompt, ctx, out=args.out, force=args.force, on_update=on_update
            ),
        )
    except RunDirError as exc:
        return display.fail(exc)
    return display.show_result(result, args.json)
