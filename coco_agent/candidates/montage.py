"""The shortlisted candidates side by side in one image, each under a large label (A, B, C), so any vision
model, one that takes a single image included, can compare them. Every draft is read back through the host's
checked PNG decoder first (sandbox/png.py)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import read_png

CELL = 640  # longest side of each draft in the montage
BAND = 64  # height of the label band above each draft
GAP = 16


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def side_by_side(paths: list[Path], labels: list[str], limits: SandboxLimits) -> bytes:
    """One PNG: each draft scaled to fit CELL x CELL, left to right, its label above it. Raises ImageRejected."""
    cells = []
    for path in paths:
        image = Image.open(io.BytesIO(read_png(path, limits.max_pixels, limits.max_png_bytes).png))
        image = image.convert("RGB")
        image.thumbnail((CELL, CELL))
        cells.append(image)
    width = sum(c.width for c in cells) + GAP * (len(cells) + 1)
    height = BAND + max(c.height for c in cells) + GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(44)
    x = GAP
    for cell, label in zip(cells, labels, strict=True):
        draw.rectangle(
            [x - 2, BAND - 2, x + cell.width + 1, BAND + cell.height + 1], outline="black", width=2
        )
        canvas.paste(cell, (x, BAND))
        box = draw.textbbox((0, 0), label, font=font)
        draw.text((x + (cell.width - (box[2] - box[0])) // 2, 6), label, fill="black", font=font)
        x += cell.width + GAP
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
