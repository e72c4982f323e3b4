"""`coco bench longtext`: LongText-Bench through the batch engine, every attempt's draft and the final scored
(local-OCR proxy, not the official number)."""

from __future__ import annotations

import argparse
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.cli.options import (
    add_batch_options,
    add_run_options,
    batch_problem,
    context_from_args,
    options_from_args,
    settle,
)


def register(benchmarks: argparse._SubParsersAction) -> None:
    parser = benchmarks.add_parser(
        "longtext",
        help="LongText-Bench: text score of every draft and final (local-OCR proxy, not the official number)",
    )
    parser.add_argument("--lang", choices=["en", "zh"], default="en", help="prompt set (default en)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="batch folder: OUT/<prompt_id>/")
    parser.add_argument(
        "--data", type=Path, help="LongText-Bench folder (default ../shared/benchmarks/longtext_bench)"
    )
    add_run_options(parser)
    add_batch_options(parser, what="the benchmark figures", retry_failed=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the benchmark batch, score what is not scored yet, print the figures."""
    from coco_agent.batch import run_batch
    from coco_agent.batch.longtext import LongTextScorer, bench_summary, find_prompts, score_missing
    from coco_agent.batch.progress import BatchProgress, JsonEvents
    from coco_agent.errors import (
        BatchAborted,
        BatchRefused,
        BenchDataMissing,
        OcrUnavailable,
        PromptsFileError,
    )
    from coco_agent.scoring.ocr import load_ocr

    problem = batch_problem(args)
    if problem:
        return display.fail(problem)
    ctx = context_from_args(args)
    ocr = ctx.ocr_engine
    try:
        prompts = find_prompts(args.lang, args.data)
        engine = load_ocr(ocr)
    except (BenchDataMissing, OcrUnavailable) as exc:
        return display.fail(exc)
    scorer = LongTextScorer(args.lang, ocr)
    options = options_from_args(args, prompts, ctx)
    try:
        settle(options.ctx)
        options.ctx.validate()
        if args.json:
            events = JsonEvents()
            run_batch(options, on_event=events, on_result=scorer)
        else:
            with BatchProgress() as progress:
                run_batch(options, on_event=progress, on_result=scorer)
        score_missing(args.out, prompts, args.limit, scorer)
    except (PromptsFileError, BatchRefused, BatchAborted, ValueError) as exc:
        return display.fail(exc)
    except KeyboardInterrupt:
        return display.interrupted_batch()
    label = getattr(engine, "label", engine.name)
    figures = bench_summary(args.out, prompts, args.limit, args.lang, ocr, label)
    if args.json:
        events.line({"event": "bench", **figures})
    else:
        display.bench_longtext(figures)
    return ExitCode.OK
