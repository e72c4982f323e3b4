"""The `coco` command line: generate, resume, render, sandbox."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from coco_agent import formats
from coco_agent.rundir import RESULT_FILE
from coco_agent.safe_text import json_text, terminal_text

EXIT = {"accepted": 0, "failed": 1, "max_rounds": 3}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted. A run continues with `coco resume RUN_DIR`.", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coco", description="Code as CoT text-to-image agent.")
    sub = parser.add_subparsers(metavar="COMMAND")

    gen = sub.add_parser("generate", help="turn a prompt into an image by way of drawing code")
    gen.add_argument("prompt", help="what to draw; '-' reads it from standard input")
    gen.add_argument("-o", "--out", help="run directory (default runs/<time>)")
    add_run_options(gen)
    gen.add_argument("--force", action="store_true", help="start over in an existing run directory")
    gen.add_argument(
        "--json", action="store_true", help=f"print {RESULT_FILE} to stdout; no progress display"
    )
    gen.set_defaults(func=cmd_generate)

    res = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    res.add_argument("run_dir")
    res.add_argument("--json", action="store_true", help=f"print {RESULT_FILE} to stdout")
    res.set_defaults(func=cmd_resume)

    from coco_agent import cli_batch, cli_bench, cli_sandbox, cli_score

    cli_sandbox.add_parsers(sub)
    cli_batch.add_parsers(sub)
    cli_score.add_parsers(sub)
    cli_bench.add_parsers(sub)
    cli_sandbox.add_bench_parser(sub)
    return parser


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the agent."""
    p.add_argument(
        "--llm", help="code writer 'provider:model' (openai:, anthropic:, ollama:, hf:PATH); env COCO_LLM"
    )
    p.add_argument("--vlm", help="critic 'provider:model', or 'none'; env COCO_VLM; default: same as --llm")
    p.add_argument(
        "--base-url", help="OpenAI-compatible server URL (vLLM, llama.cpp, LM Studio); env OPENAI_BASE_URL"
    )
    p.add_argument(
        "--refiner",
        default="none",
        help="'none', or a diffusers pipeline by hub id or local dir (img2img, FLUX.1 Kontext, Qwen-Image-Edit, "
        "SDXL ControlNet); inpaint:NAME keeps the draft's text pixels; controlnet:CONTROLNET+BASE",
    )
    p.add_argument("--max-rounds", type=int, default=4, help="attempts before giving up (default 4)")
    p.add_argument("--format", default="matplotlib", choices=list(formats.names()), help="drawing code")
    p.add_argument("--sandbox", default="auto", choices=["auto", "docker", "process", "bubblewrap"])
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per program in the sandbox")
    p.add_argument("--memory-mb", type=int, default=1024, help="memory per program in the sandbox")
    p.add_argument("--model-timeout", type=float, default=180.0, help="seconds per model call")
    p.add_argument(
        "--refine-strength", type=float, help="0-1; default: chosen by prompt kind (0 keeps the draft)"
    )
    p.add_argument(
        "--refine-margin", type=float, default=0.02, help="largest CLIP drop a refined image may cost"
    )
    p.add_argument(
        "--no-refine-guard", action="store_true", help="keep the refined image even if scores drop"
    )
    p.add_argument(
        "--no-repairs",
        action="store_true",
        help="run the model's program as written (no indentation/colour/legend/keyword repairs)",
    )
    p.add_argument("--ocr", default="auto", choices=["auto", "rapidocr", "tesseract"], help="OCR for scores")
    p.add_argument(
        "--clip", default="auto", help="open_clip ARCH:TAG, hf-hub:org/repo, local dir, auto or none"
    )


def context_from_args(args: argparse.Namespace):
    from coco_agent.context import RunContext

    llm = args.llm or os.environ.get("COCO_LLM") or None
    vlm = args.vlm or os.environ.get("COCO_VLM") or llm
    return RunContext(
        llm=llm,
        vlm=vlm,
        base_url=args.base_url or os.environ.get("OPENAI_BASE_URL") or None,
        refiner=args.refiner,
        max_rounds=args.max_rounds,
        format=args.format,
        sandbox=args.sandbox,
        timeout_s=args.timeout,
        memory_mb=args.memory_mb,
        model_timeout_s=args.model_timeout,
        refine_strength=args.refine_strength,
        refine_margin=args.refine_margin,
        refine_guard=not args.no_refine_guard,
        repairs=not getattr(args, "no_repairs", False),
        ocr_engine=args.ocr,
        clip_model=args.clip,
    )


def settle_models(ctx) -> None:
    """Name the models the run will use before it starts (run.json, result.json and summaries record them).

    A role left open (no flag, no COCO_LLM/COCO_VLM) gets the auto-detected model now; when none can be
    detected, ModelChoiceError (a usage error) lists every way to choose one.
    """
    from coco_agent.models.resolve import detect_model

    if ctx.llm is None or (isinstance(ctx.llm, str) and not ctx.llm.strip()):
        ctx.llm = detect_model("coder", base_url=ctx.base_url)
    if ctx.vlm is None or (isinstance(ctx.vlm, str) and not ctx.vlm.strip()):
        ctx.vlm = detect_model("critic", base_url=ctx.base_url)


def cmd_generate(args: argparse.Namespace) -> int:
    from coco_agent.models import ModelChoiceError
    from coco_agent.runner import RunDirError, start_run

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    out = args.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    ctx = context_from_args(args)
    try:
        settle_models(ctx)
    except ModelChoiceError as exc:
        return _fail(str(exc))
    try:
        result = _with_progress(
            args.json, lambda cb: start_run(prompt, ctx, out, force=args.force, on_update=cb)
        )
    except RunDirError as exc:
        return _fail(str(exc))
    return _report(result, args.json)


def cmd_resume(args: argparse.Namespace) -> int:
    from coco_agent.runner import RunDirError, resume_run

    try:
        result = _with_progress(args.json, lambda cb: resume_run(args.run_dir, on_update=cb))
    except RunDirError as exc:
        return _fail(str(exc))
    return _report(result, args.json)


def _with_progress(quiet: bool, run):
    """Run with a live progress display on stderr (none under --json)."""
    if quiet:
        return run(None)
    from coco_agent.progress import RunProgress

    with RunProgress() as progress:
        return run(progress.update)


def _report(result: dict[str, Any], as_json: bool) -> int:
    code = EXIT.get(result.get("status", "failed"), 1)
    if as_json:
        print(json_text(result, indent=2))
        return code
    from coco_agent.progress import print_summary

    print_summary(result)
    return code


def _fail(message: str) -> int:
    print(f"error: {terminal_text(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
