"""`coco score IMAGE --prompt "..." [--text "..."]... [--json]`: text accuracy (local-OCR proxy) and CLIP score."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from coco_agent.safe_text import json_text, terminal_text

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def add_parsers(subparsers: Any) -> None:
    """Register `score` on an argparse subparsers object (sets func(args) -> int)."""
    score = subparsers.add_parser(
        "score", help="score any image: OCR text accuracy (local proxy) and CLIP score against a prompt"
    )
    score.add_argument("image", type=Path, help="the image to score (PNG, JPEG, ...)")
    score.add_argument(
        "--prompt", default="", help="what the image should show (CLIP; quoted strings = text)"
    )
    score.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="TEXT",
        help="a string the image must show (repeatable); default: the strings quoted in --prompt",
    )
    score.add_argument("--ocr", default="auto", help="OCR engine: auto, rapidocr or tesseract (env COCO_OCR)")
    score.add_argument(
        "--clip",
        default="auto",
        help="open_clip model: ARCH:TAG, hf-hub:org/repo, a local dir, auto (first cached) or none; env COCO_CLIP",
    )
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    score.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    """Print the scores of one image; unavailable parts say why (exit 0), an unreadable image exits 2."""
    from PIL import Image, UnidentifiedImageError

    from coco_agent.scoring import score_image

    try:
        with Image.open(args.image) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        print(terminal_text(f"error: cannot read image {args.image}: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    scores = score_image(image, args.prompt, args.text, ocr_engine=args.ocr, clip_model=args.clip)
    scores = {"image": str(args.image), "prompt": args.prompt, **scores}
    if args.json:
        print(json_text(scores, indent=2))
    else:
        print(terminal_text(render_scores(scores)))
    return EXIT_OK


def render_scores(scores: dict[str, Any]) -> str:
    """A few human lines for the scores of one image."""
    text, clip = scores["text"], scores["clip"]
    lines = [f"image: {scores['image']}"]
    if "score" in text:
        unit = "characters" if text["mode"] == "zh" else "words"
        lines.append(
            f"text accuracy: {text['score']:.3f}  ({text['matched']}/{text['total']} {unit}; "
            f"OCR as read, before word recovery: {text['raw_score']:.3f})"
        )
        lines.append(f"  {text['proxy']}; engine {text['engine']}, {text['seconds']:.2f} s")
        lines.append(f"  expected ({scores['expected_source']}): {' | '.join(scores['expected_text'])}")
        if text["missing"]:
            lines.append(f"  missing: {' '.join(text['missing'])}")
    else:
        lines.append(f"text accuracy: unavailable ({text['reason']})")
    if "score" in clip:
        lines.append(f"CLIP score: {clip['score']:.4f} (cosine; CLIPScore {max(clip['score'], 0) * 100:.1f})")
        lines.append(f"  model {clip['model']}, {clip['seconds']:.2f} s")
    else:
        lines.append(f"CLIP score: unavailable ({clip['reason']})")
    return "\n".join(lines)
