"""`coco resume DIR`: continue an interrupted run from its last checkpoint (`coco_agent.resume`)."""

from __future__ import annotations

import argparse

import coco_agent.cli.display as display
from coco_agent.rundir import RESULT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("run_dir")
    parser.add_argument("--json", action="store_true", help=f"print {RESULT_FILE} to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resume with the run's own settings (run.json); exit by the result's status."""
    import coco_agent
    from coco_agent.errors import RunDirError

    try:
        result = display.with_progress(
            args.json, lambda on_update: coco_agent.resume(args.run_dir, on_update=on_update)
        )
    except RunDirError as exc:
        return display.fail(exc)
    return display.show_result(result, args.json)
