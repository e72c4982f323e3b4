"""`coco edit RUN`: change the program of a round and continue the run from there, as a new branch of its
checkpoint history (`coco_agent.human.edit`)."""

from __future__ import annotations

import argparse

import coco_agent.cli.display as display
from coco_agent.cli.options import FORMATS
from coco_agent.rundir import RESULT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "edit",
        help="edit a round's program (in $EDITOR, or --code FILE) and continue the run from there",
    )
    parser.add_argument("run_dir", help="a run directory (also OUT/<id> of a batch)")
    parser.add_argument(
        "--round", type=int, dest="round", help="the round whose program to edit (default: the chosen one)"
    )
    parser.add_argument("--code", metavar="FILE", help="the new program ('-' reads stdin); default: $EDITOR")
    parser.add_argument(
        "--format", choices=FORMATS, help="the program's format, when it is not the run's (switches the run)"
    )
    parser.add_argument(
        "--no-critic", action="store_true", help="no critique from here on: the deterministic checks decide"
    )
    parser.add_argument(
        "--full-refine",
        action="store_true",
        help="refine the whole new draft (default: only what changed since the run's final)",
    )
    parser.add_argument("--json", action="store_true", help=f"print {RESULT_FILE} to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Find the round, get the program, fork and continue; exit by the new result's status."""
    from coco_agent import formats
    from coco_agent.cli.program_input import read_program
    from coco_agent.errors import EditRefused, RunDirError
    from coco_agent.human.edit import edit_point, edit_run

    try:
        point = edit_point(args.run_dir, args.round)
        suffix = formats.get(args.format or point.format).suffix
        code = read_program(args.code, point.program, suffix)
        result = display.with_progress(
            args.json,
            lambda on_update: edit_run(
                args.run_dir,
                code,
                rnd=point.round,
                fmt=args.format,
                critic=not args.no_critic,
                full_refine=args.full_refine,
                on_update=on_update,
                source_name=args.code or "$EDITOR",
            ),
        )
    except (RunDirError, EditRefused, ValueError) as exc:
        return display.fail(exc)
    return display.show_result(result, args.json)
