"""`coco resume DIR`: continue an interrupted run from its last checkpoint (`coco_agent.resume`)."""

from __future__ import annotations

import argparse

import coco_agent.cli.display as display
from coco_agent.rundir import RESULT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("run_dir")
    parser.add_argument("--json", action="store_true", help=f"print {RESULT_FILE} to stdout")
    parser.add_argument(
        "--budget-usd",
        type=float,
        help="a new dollar budget (a run stopped by its budget continues within it)",
    )
    parser.add_argument("--budget-tokens", type=int, help="a new token budget")
    parser.add_argument("--deadline", type=float, help="a new deadline, seconds of node time in all")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resume with the run's own settings (run.json), the budgets given here replacing its own; exit by the
    result's status."""
    import coco_agent
    from coco_agent.errors import RunDirError
    from coco_agent.ledger.budget import limits_problem

    budget = {"budget_usd": args.budget_usd, "budget_tokens": args.budget_tokens, "deadline_s": args.deadline}
    budget = {k: v for k, v in budget.items() if v is not None}
    problem = limits_problem(args.budget_usd, args.budget_tokens, args.deadline)
    if problem:
        return display.fail(problem)
    try:
        result = display.with_progress(
            args.json, lambda on_update: coco_agent.resume(args.run_dir, on_update=on_update, **budget)
        )
    except (RunDirError, ValueError) as exc:
        return display.fail(exc)
    return display.show_result(result, args.json)
