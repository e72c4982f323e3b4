"""Where the draft shows text, so inpainting can keep those pixels exactly.

Best: the boxes the sandbox reported from the drawing code itself (matplotlib text artists, PIL text calls, SVG
text elements), padded a little and merged (`padded_and_merged`). Otherwise the local OCR engine's line boxes on
the draft, padded a little (`text_regions`): OCR works for any draft, but misses what it cannot read.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
PAD_FRACTION = 0.15  # of the line height, on every side
SANDBOX_PAD = (2, 0.1, 12)  # sandbox boxes: at least 2 px, 10% of the box height, at most 12 px on every side


def text_regions(image: Image.Image, engine: str = "auto") -> list[Box]:
    """Padded boxes (x0, y0, x1, y1) around every text line OCR finds; [] when no OCR engine is available."""
    from coco_agent.scoring.ocr import OcrUnavailable, load_ocr

    try:
        lines = load_ocr(engine).read(image).lines
    except OcrUnavailable:
        return []
    boxes = []
    for line in lines:
        xs = [p[0] for p in line.box]
        ys = [p[1] for p in line.box]
        pad = PAD_FRACTION * (max(ys) - min(ys))
        box = (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)
        boxes.append(_clip(box, image.size))
    return boxes


def padded_and_merged(boxes: list[Box], size: tuple[int, int]) -> list[Box]:
    """Exact text boxes grown by SANDBOX_PAD (antialiasing, glow, a refiner's seams), clipped to the image, and
    merged where they overlap so the mask stays a handful of rectangles."""
    least, fraction, most = SANDBOX_PAD
    grown = []
    for x0, y0, x1, y1 in boxes:
        pad = min(most, max(least, round(fraction * (y1 - y0))))
        grown.append(_clip((x0 - pad, y0 - pad, x1 + pad, y1 + pad), size))
    merged: list[Box] = []
    for box in sorted(b for b in grown if b[0] < b[2] and b[1] < b[3]):
        while True:
            hit = next((m for m in merged if _overlap(m, box)), None)
            if hit is None:
                break
            merged.remove(hit)
            box = (min(box[0], hit[0]), min(box[1], hit[1]), max(box[2], hit[2]), max(box[3], hit[3]))
        merged.append(box)
    return sorted(merged, key=lambda b: (b[1], b[0]))


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def protect_mask(size: tuple[int, int], regions: list[Box]) -> Image.Image:
    """An inpainting mask: white (repaint) everywhere except the regions (black, kept)."""
    mask = Image.new("L", size, 255)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in regions:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=0)
    return mask


def keep_regions(result: Image.Image, draft: Image.Image, regions: list[Box]) -> Image.Image:
    """`result` with the draft's exact pixels pasted back inside each region."""
    out = result.copy()
    for box in regions:
        out.paste(draft.crop(box), box[:2])
    return out


def _clip(box: tuple[float, float, float, float], size: tuple[int, int]) -> Box:
    x0, y0, x1, y1 = box
    width, height = size
    return (max(0, int(x0)), max(0, int(y0)), min(width, int(round(x1))), min(height, int(round(y1))))
