"""`coco review RUN [accept | reject "what is wrong" | edit]`: see what a paused run waits for, and answer it
(`coco_agent.human.review`). On a batch folder: the runs that wait."""

from __future__ import annotations

import argparse
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.cli.options import FORMATS
from coco_agent.rundir import RESULT_FILE, settings_path

ANSWERS = ("accept", "reject", "edit")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review", help="show what a run paused with --review waits for, and accept, reject or edit it"
    )
    parser.add_argument("run_dir", help="a paused run directory (or a batch folder: lists the waiting runs)")
    parser.add_argument("action", nargs="?", choices=ANSWERS, help="the answer (none: show what waits)")
    parser.add_argument("feedback", nargs="?", help="reject: what is wrong (goes to the code writer)")
    parser.add_argument(
        "--code", metavar="FILE", help="edit: the new program ('-' reads stdin); default: $EDITOR"
    )
    parser.add_argument("--format", choices=FORMATS, help="edit: the program's format, when not the run's")
    parser.add_argument("--json", action="store_true", help=f"print the review, or {RESULT_FILE}, to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coco_agent.errors import EditRefused, ReviewRefused, RunDirError
    from coco_agent.human.review import pending_review, review_run, waiting_runs

    folder = Path(args.run_dir)
    try:
        if args.action is None:
            if folder.is_dir() and not settings_path(folder).is_file():
                return _list_waiting(waiting_runs(folder), args.json)
            review = pending_review(folder)
            if review is None:
                raise ReviewRefused(f"{folder} waits for no review")
            if args.json:
                print(display.json_text(review, indent=2))
            else:
                display.review_waiting(review, str(folder), image=True)
            return int(ExitCode.OK)
        answer = _answer(args, folder)
        result = display.with_progress(
            args.json, lambda on_update: review_run(folder, answer, on_update=on_update)
        )
    except (RunDirError, ReviewRefused, EditRefused, ValueError) as exc:
        return display.fail(exc)
    return display.show_result(result, args.json)


def _answer(args: argparse.Namespace, folder: Path) -> dict:
    from coco_agent import formats
    from coco_agent.cli.program_input import read_program
    from coco_agent.errors import ReviewRefused
    from coco_agent.human.program import checked_program, program_of
    from coco_agent.human.review import pending_review

    if args.action == "accept":
        return {"action": "accept"}
    if args.action == "reject":
        if not (args.feedback or "").strip():
            raise ReviewRefused('say what is wrong: coco review RUN reject "the title must read ..."')
        return {"action": "reject", "feedback": args.feedback}
    review = pending_review(folder)
    if review is None:
        raise ReviewRefused(f"{folder} waits for no review")
    run_format = review.get("format") or formats.DEFAULT
    start = program_of(folder, {"code_path": review.get("code")})
    data = read_program(args.code, start, formats.get(args.format or run_format).suffix)
    code, fmt = checked_program(data, run_format, args.format)
    return {"action": "edit", "code": code, **({"format": fmt} if args.format else {})}


def _list_waiting(paths: list[Path], as_json: bool) -> int:
    if as_json:
        print(display.json_text([str(p) for p in paths]))
    elif paths:
        display.runs_waiting([str(p) for p in paths])
    else:
        print("no run waits for review")
    return int(ExitCode.OK)
