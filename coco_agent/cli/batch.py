"""`coco batch PROMPTS -o OUT`: every prompt of a file, one run directory each, N at once; rerun to continue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.cli.options import (
    add_batch_options,
    add_run_options,
    batch_problem,
    options_from_args,
    settle,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run every prompt of a file (.txt, .jsonl, .csv), N at once; rerun to continue after a crash",
    )
    parser.add_argument(
        "prompts", type=Path, help=".txt (a prompt a line), .jsonl (prompt, id, text) or .csv"
    )
    parser.add_argument("-o", "--out", type=Path, required=True, help="batch folder: OUT/<id>/ per prompt")
    add_run_options(parser)
    add_batch_options(parser, what="the summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch; exit 0 when every prompt has an outcome (see summary.json for each one), 1 when some
    have none (pending: a worker stopped early; rerun to continue them)."""
    from coco_agent.batch import run_batch
    from coco_agent.batch.progress import BatchProgress, JsonEvents, print_batch_summary
    from coco_agent.errors import BatchAborted, BatchRefused, PromptsFileError

    problem = batch_problem(args)
    if problem:
        return display.fail(problem)
    options = options_from_args(args, args.prompts)
    try:
        settle(options.ctx)
        options.ctx.validate()
        if args.json:
            events = JsonEvents()
            summary = run_batch(options, on_event=events)
            events.line({"event": "summary", **summary})
        else:
            with BatchProgress() as progress:
                summary = run_batch(options, on_event=progress)
            print_batch_summary(summary, str(args.out))
        if not args.json:
            from coco_agent.human.review import waiting_runs

            display.runs_waiting([str(path) for path in waiting_runs(args.out)])
    except (PromptsFileError, BatchRefused, BatchAborted, ValueError) as exc:
        return display.fail(exc)
    except KeyboardInterrupt:
        return display.interrupted_batch()
    return exit_code(summary)


def exit_code(summary: dict[str, Any]) -> ExitCode:
    """OK when every prompt has an outcome; PAUSED when the others wait for review (`coco review`); BUDGET
    when the batch budget left some without one; else FAILED (saying how many have none)."""
    statuses = summary.get("statuses") or {}
    pending = statuses.get("pending", 0)
    if not pending:
        return ExitCode.PAUSED if statuses.get("paused") else ExitCode.OK
    stopped = (summary.get("batch_budget") or {}).get("stopped")
    if stopped:
        display.batch_budget_stopped(pending, stopped)
        return ExitCode.BUDGET
    display.batch_incomplete(pending)
    return ExitCode.FAILED
