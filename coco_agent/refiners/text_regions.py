"""Where the draft shows text, so inpainting can keep those pixels exactly.

The boxes come from the local OCR engine's line boxes on the draft, padded a little. (Boxes reported by the
sandbox from the drawing code's text artists would be exact; OCR works for any draft.)
"""

from __future__ import annotations

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
PAD_FRACTION = 0.15  # of the line height, on every side


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
