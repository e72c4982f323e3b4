"""`coco bench longtext`: LongText-Bench through the batch driver, every attempt's draft and the final scored
(local-OCR proxy)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from coco_agent.cli import add_run_options, settle_models
from coco_agent.cli_batch import (
    DEFAULT_DEADLINE_S,
    EXIT_DONE,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    add_engine_option,
    options_from_args,
)

PROXY_TITLE = "LongText-Bench text score, local-OCR proxy (not the official number)"
COLUMNS = {  # table heading -> key of the bench figures
    "round 1": "first_draft_text_score",
    "draft": "draft_text_score",
    "best draft": "best_draft_text_score",
    "final": "final_text_score",
}


def add_parsers(subparsers: Any) -> None:
    """Register `bench longtext` on an argparse subparsers object (reusing `bench` if another module made it)."""
    bench = subparsers.choices.get("bench") or subparsers.add_parser("bench", help="run a benchmark")
    which = next((a for a in bench._actions if isinstance(a, argparse._SubParsersAction)), None)
    if which is None:
        which = bench.add_subparsers(metavar="BENCHMARK")
        bench.set_defaults(func=lambda args: _help(bench))
    longtext = which.add_parser(
        "longtext",
        help="LongText-Bench: text score of every draft and final (local-OCR proxy, not the official number)",
    )
    longtext.add_argument("--lang", choices=["en", "zh"], default="en", help="prompt set (default en)")
    longtext.add_argument("-o", "--out", type=Path, required=True, help="batch folder: OUT/<prompt_id>/")
    longtext.add_argument("--workers", type=int, default=4, help="runs at once (default 4)")
    longtext.add_argument("--limit", type=int, help="only the first N prompts")
    longtext.add_argument(
        "--data", type=Path, help="LongText-Bench folder (default ../shared/benchmarks/longtext_bench)"
    )
    add_engine_option(longtext)
    add_run_options(longtext)
    longtext.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help="seconds per prompt before it is stopped and marked failed (default %(default)g; 0: none)",
    )
    longtext.add_argument("--model-concurrency", type=int, help="model requests at once (default: no bound)")
    longtext.add_argument("--retries", type=int, default=3, help="extra tries of a model request (default 3)")
    longtext.add_argument("--force", action="store_true", help="use OUT even when other settings made it")
    longtext.add_argument(
        "--json", action="store_true", help="one JSON line per finished prompt, the benchmark figures last"
    )
    longtext.set_defaults(func=cmd_longtext)


def cmd_longtext(args: argparse.Namespace) -> int:
    """Run (or continue) the benchmark batch, score what is not scored yet, print the figures."""
    from coco_agent.batch import BatchAborted, BatchRefused, PromptsFileError, run_batch
    from coco_agent.batch.longtext import (
        BenchDataMissing,
        LongTextScorer,
        bench_summary,
        find_prompts,
        score_missing,
    )
    from coco_agent.batch.progress import BatchProgress, JsonEvents
    from coco_agent.scoring.ocr import OcrUnavailable, load_ocr

    if args.workers < 1 or (args.limit is not None and args.limit < 1) or args.deadline < 0:
        return _fail("--workers and --limit must be at least 1, --deadline 0 or more")
    try:
        prompts = find_prompts(args.lang, args.data)
        engine = load_ocr(args.ocr)
    except (BenchDataMissing, OcrUnavailable) as exc:
        return _fail(str(exc))
    scorer = LongTextScorer(args.lang, args.ocr)
    options = options_from_args(args, prompts)
    try:
        settle_models(options.ctx)
        options.ctx.validate()
        if args.json:
            events = JsonEvents()
            run_batch(options, on_event=events, on_result=scorer)
        else:
            with BatchProgress() as progress:
                run_batch(options, on_event=progress, on_result=scorer)
        score_missing(args.out, prompts, args.limit, scorer)
    except (PromptsFileError, BatchRefused, BatchAborted, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted: finished prompts are kept; rerun the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    label = getattr(engine, "label", engine.name)
    figures = bench_summary(args.out, prompts, args.limit, args.lang, args.ocr, label)
    if args.json:
        events.line({"event": "bench", **figures})
    else:
        print_bench(figures)
    return EXIT_DONE


def print_bench(figures: dict[str, Any]) -> None:
    """The benchmark table: overall, then by category and by length. Columns: round 1's draft (before any
    critique), the chosen draft, the best-reading draft of all rounds, and the final."""
    from rich.table import Table

    from coco_agent.rundir import RESULT_FILE
    from coco_agent.safe_text import markup_text, plain_text, safe_console

    unit = "characters" if figures["lang"] == "zh" else "words"
    table = Table(title=markup_text(f"{PROXY_TITLE} [{figures['lang']}]"), title_justify="left")
    for name, justify in (("group", "left"), ("prompts", "right"), (unit, "right")):
        table.add_column(name, justify=justify)
    for name in COLUMNS:
        table.add_column(name, justify="right")

    def row(name: str, part: dict[str, Any], end_section: bool = False) -> None:
        cells = [f"{part[key]:.3f}" if part.get(key) is not None else "-" for key in COLUMNS.values()]
        table.add_row(markup_text(name), str(part["n"]), str(part["units"]), *cells, end_section=end_section)

    row("all", figures, end_section=True)
    categories = list(figures["by_category"].items())
    for i, (name, part) in enumerate(categories):
        row(f"category {name}", part, end_section=i == len(categories) - 1)
    for name, part in figures["by_length"].items():
        row(f"length {name}", part)
    console = safe_console()
    console.print(table)
    console.print(
        plain_text(
            f"OCR: {figures['ocr']}. {figures['proxy']}. Statuses: {figures['statuses']}. "
            "round 1: the first draft, before any critique; draft: the chosen one (what the refiner got); "
            "best draft: the best-reading draft of any round. "
            f"Per prompt: {figures['out']}/<id>/{RESULT_FILE} (scores, text_scores); coco report {figures['out']}"
        ),
        soft_wrap=True,
        highlight=False,
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_REFUSED


def _fail(message: str) -> int:
    from coco_agent.safe_text import terminal_text

    print(f"error: {terminal_text(message)}", file=sys.stderr)
    return EXIT_REFUSED
