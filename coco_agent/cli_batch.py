"""`coco batch` (many prompts, one run directory each) and `coco report` (a static HTML report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coco_agent.cli import add_run_options, context_from_args, settle_models
from coco_agent.rundir import REPORT_FILE
from coco_agent.safe_text import terminal_text

if TYPE_CHECKING:
    from coco_agent.batch import BatchOptions

EXIT_DONE, EXIT_INCOMPLETE, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_DEADLINE_S = 1800.0


def add_parsers(subparsers) -> None:
    """Register `batch` and `report` on an argparse subparsers object (each sets func(args) -> int)."""
    batch = subparsers.add_parser(
        "batch",
        help="run every prompt of a file (.txt, .jsonl, .csv), N at once; rerun to continue after a crash",
    )
    batch.add_argument("prompts", type=Path, help=".txt (a prompt a line), .jsonl (prompt, id, text) or .csv")
    batch.add_argument("-o", "--out", type=Path, required=True, help="batch folder: OUT/<id>/ per prompt")
    batch.add_argument("--workers", type=int, default=4, help="runs at once (default 4)")
    batch.add_argument("--limit", type=int, help="only the first N prompts")
    add_engine_option(batch)
    add_run_options(batch)
    batch.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help="seconds per prompt before it is stopped and marked failed (default %(default)g; 0: none)",
    )
    batch.add_argument(
        "--model-concurrency", type=int, help="model requests at once, over all runs (default: no bound)"
    )
    batch.add_argument(
        "--retries",
        type=int,
        default=3,
        help="extra tries of a model request on HTTP 429/5xx or a timeout, with backoff (default 3)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="start prompts that ended failed over (default: keep them)",
    )
    batch.add_argument(
        "--force", action="store_true", help="use OUT even when another batch or other settings made it"
    )
    batch.add_argument(
        "--json", action="store_true", help="one JSON line per finished prompt, the summary last; no display"
    )
    batch.set_defaults(func=cmd_batch)

    report = subparsers.add_parser("report", help="write a static HTML report of a batch or of one run")
    report.add_argument("target", type=Path, help="a batch folder (coco batch -o) or a run directory")
    report.add_argument("-o", "--output", type=Path, help=f"HTML file (default TARGET/{REPORT_FILE})")
    report.add_argument(
        "--embed-images", action="store_true", help="put every image inside the HTML (one portable file)"
    )
    report.add_argument(
        "--details", type=int, default=500, help="prompts shown in full, the rest only in the table (500)"
    )
    report.set_defaults(func=cmd_report)


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch; exit 0 when every prompt has an outcome (see summary.json for each one), 1 when some
    have none (pending: a worker stopped early; rerun to continue them)."""
    from coco_agent.batch import BatchAborted, BatchRefused, PromptsFileError, run_batch
    from coco_agent.batch.progress import BatchProgress, JsonEvents, print_batch_summary

    problem = _bad_numbers(args)
    if problem:
        return _fail(problem)
    options = options_from_args(args, args.prompts)
    try:
        settle_models(options.ctx)
        options.ctx.validate()
        if args.json:
            events = JsonEvents()
            summary = run_batch(options, on_event=events)
            events.line({"event": "summary", **summary})
        else:
            with BatchProgress() as progress:
                summary = run_batch(options, on_event=progress)
            print_batch_summary(summary, str(args.out))
    except (PromptsFileError, BatchRefused, BatchAborted, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted: finished prompts are kept; rerun the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_code(summary)


def exit_code(summary: dict[str, Any]) -> int:
    """EXIT_DONE when every prompt has an outcome, else EXIT_INCOMPLETE (saying how many have none)."""
    pending = (summary.get("statuses") or {}).get("pending", 0)
    if not pending:
        return EXIT_DONE
    print(
        f"error: {pending} prompt(s) have no outcome (pending); rerun the same command to continue them",
        file=sys.stderr,
    )
    return EXIT_INCOMPLETE


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report and print its path."""
    from coco_agent.report import ReportError, write_report

    try:
        path = write_report(
            args.target, args.output, embed_images=args.embed_images, details=max(0, args.details)
        )
    except ReportError as exc:
        return _fail(str(exc))
    print(terminal_text(path))
    return EXIT_DONE


def _bad_numbers(args: argparse.Namespace) -> str:
    if args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.limit is not None and args.limit < 1:
        return f"--limit must be at least 1, got {args.limit}"
    if args.deadline < 0:
        return f"--deadline must be 0 (none) or more seconds, got {args.deadline:g}"
    if args.model_concurrency is not None and args.model_concurrency < 1:
        return f"--model-concurrency must be at least 1, got {args.model_concurrency}"
    if args.retries < 0:
        return f"--retries must be 0 or more, got {args.retries}"
    return ""


def _fail(message: str) -> int:
    print(f"error: {terminal_text(message)}", file=sys.stderr)
    return EXIT_REFUSED


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """`--engine`: which engine of the table runs the prompts (an unknown name is a usage error)."""
    from coco_agent.engines import DEFAULT_ENGINE, ENGINES, engine_help

    parser.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE, help=engine_help())


def options_from_args(args: argparse.Namespace, prompts: Any) -> BatchOptions:
    """Batch options from the flags `coco batch` and `coco bench` share."""
    from coco_agent.batch import BatchOptions

    return BatchOptions(
        prompts=prompts,
        out=args.out,
        ctx=context_from_args(args),
        workers=args.workers,
        limit=args.limit,
        force=args.force,
        deadline_s=args.deadline or None,
        model_concurrency=args.model_concurrency,
        retries=args.retries,
        retry_failed=getattr(args, "retry_failed", False),
        engine=getattr(args, "engine", "local"),
    )
