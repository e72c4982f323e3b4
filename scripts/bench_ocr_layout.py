"""How much the local-OCR proxy moves with layout alone: the same LongText-Bench prompts' text, drawn verbatim
with PIL (DejaVu Sans Bold, black on white, 1,300 px wide, no sandbox, no model), in a few layouts that differ by
a few pixels of margin, wrap width and line spacing, each read by the same OCR engine and scored with the
benchmark's formula. The spread between layouts is noise of the reader, not of any format or model.

    .venv/bin/python scripts/bench_ocr_layout.py                 # en, first 40 prompts, rapidocr
    .venv/bin/python scripts/bench_ocr_layout.py --limit 160 --size 30

Nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.text_renders import font as dejavu  # noqa: E402

from coco_agent.batch import iter_prompts  # noqa: E402
from coco_agent.batch.longtext import find_prompts  # noqa: E402
from coco_agent.scoring.ocr import load_ocr  # noqa: E402
from coco_agent.scoring.text_score import aggregate, score_text  # noqa: E402

WIDTH = 1300
LAYOUTS = [  # (margin, wrap width, line spacing) in px for a 34 px font; margin and spacing scale with --size
    (40, 1220, 48),
    (30, 1240, 47),
    (50, 1200, 50),
    (40, 1100, 48),
    (40, 1220, 56),
]


def wrapped(texts: list[str], face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Each text's words in lines no wider than `width` px."""
    lines: list[str] = []
    for text in texts:
        line = ""
        for word in text.split():
            longer = f"{line} {word}".strip()
            if line and face.getlength(longer) > width:
                lines.append(line)
                line = word
            else:
                line = longer
        lines.append(line)
    return lines


def draw(lines: list[str], face: ImageFont.FreeTypeFont, margin: int, spacing: int) -> Image.Image:
    image = Image.new("RGB", (WIDTH, 2 * margin + spacing * len(lines)), "white")
    pen = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        pen.text((margin, margin + spacing * i), line, font=face, fill="black")
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--size", type=int, default=34, help="font size in px (layouts scale with it)")
    parser.add_argument("--ocr", default="auto", choices=["auto", "rapidocr", "tesseract"])
    args = parser.parse_args()
    items = list(iter_prompts(find_prompts("en"), args.limit))
    face = dejavu(args.size)
    ocr = load_ocr(args.ocr)
    scale = args.size / 34
    words = sum(len(" ".join(item.texts).split()) for item in items)
    print(f"{len(items)} prompts, {words} words, {args.size} px bold, read by {ocr.name}")
    figures = []
    for margin, width, spacing in LAYOUTS:
        margin, spacing = round(margin * scale), round(spacing * scale)
        width = min(WIDTH - margin, width)
        started = time.perf_counter()
        scores = [
            score_text(
                [
                    line.text
                    for line in ocr.read(draw(wrapped(item.texts, face, width), face, margin, spacing)).lines
                ],
                item.texts,
                "en",
            )
            for item in items
        ]
        figures.append(aggregate(scores))
        print(
            f"margin {margin:3d} px, wrap {width:4d} px, line spacing {spacing:3d} px: text score {figures[-1]:.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    print(
        f"spread: {min(figures):.4f} to {max(figures):.4f} ({(max(figures) - min(figures)) * 100:.2f} points)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
