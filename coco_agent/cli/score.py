"""`coco score IMAGE --prompt "..." [--text "..."]... [--json]`: text accuracy (local-OCR proxy) and CLIP score
(`coco_agent.score`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.environment import ENV_VARS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="score any image: OCR text accuracy (local proxy) and CLIP score against a prompt"
    )
    parser.add_argument("image", type=Path, help="the image to score (PNG, JPEG, ...)")
    parser.add_argument(
        "--prompt", default="", help="what the image should show (CLIP; quoted strings = text)"
    )
    parser.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="TEXT",
        help="a string the image must show (repeatable); default: the strings quoted in --prompt",
    )
    parser.add_argument(
        "--ocr",
        help=f"OCR engine: auto, rapidocr or tesseract (env {ENV_VARS['ocr_engine']}; default auto)",
    )
    parser.add_argument(
        "--clip",
        help="open_clip model: ARCH:TAG, hf-hub:org/repo, a local dir, auto (first cached) or none; "
        f"env {ENV_VARS['clip_model']}; default auto",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the scores of one image; unavailable parts say why (exit 0), an unreadable image exits 2."""
    from PIL import Image, UnidentifiedImageError

    import coco_agent
    from coco_agent.environment import context_from_env
    from coco_agent.safe_text import json_text, terminal_text

    try:
        with Image.open(args.image) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        return display.fail(f"cannot read image {args.image}: {exc}")
    ctx = context_from_env({"ocr_engine": args.ocr, "clip_model": args.clip})
    scores = coco_agent.score(
        image, args.prompt, args.text, ocr_engine=ctx.ocr_engine, clip_model=ctx.clip_model
    )
    scores = {"image": str(args.image), "prompt": args.prompt, **scores}
    if args.json:
        print(json_text(scores, indent=2))
    else:
        print(terminal_text(display.score_lines(scores)))
    return ExitCode.OK
