"""Where a picture shows drawn text: pixel boxes, cleaned and capped (the host validates them again)."""

from __future__ import annotations

import math
import struct

from coco_worker.protocol import FACTS_BYTES, MAX_TEXT_BOXES, MAX_TEXT_CHARS, MAX_TEXTS


def png_dimensions(png: bytes) -> tuple[int, int] | None:
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", png[16:24])


def _same_canvas(canvas, png_size) -> bool:
    """Whether a renderer's canvas (float width and height: a tight crop is fractional) made a PNG this size
    (Agg allocates the whole pixels, truncating)."""
    try:
        return png_size is not None and all(0 <= c - p < 1 for c, p in zip(canvas, png_size, strict=True))
    except (TypeError, ValueError):
        return False


def _pixel_box(x0: float, y0: float, x1: float, y1: float) -> list[int]:
    """Whole pixels covering a box (rounded outwards); ValueError for NaN or infinite corners."""

    return [math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)]


def finish_boxes(boxes, png: bytes) -> list[list[int]] | None:
    """Boxes clipped to the PNG, empty ones dropped, at most MAX_TEXT_BOXES (else None: unknown)."""
    size = png_dimensions(png)
    if boxes is None or size is None:
        return None
    width, height = size
    out = []
    for x0, y0, x1, y1 in boxes:
        box = [max(0, x0), max(0, y0), min(width, x1), min(height, y1)]
        if box[0] < box[2] and box[1] < box[3] and box not in out[-8:]:
            out.append(box)
    return out if len(out) <= MAX_TEXT_BOXES else None


def sane_boxes(value) -> list[list[int]] | None:
    """What the worker forwards of the job's box list: a list of at most MAX_TEXT_BOXES [int x4], else None."""
    if not isinstance(value, list) or len(value) > MAX_TEXT_BOXES:
        return None
    for box in value:
        if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)):
            return None
    return value


def sane_facts(value) -> dict | None:
    """What the worker forwards of the job's facts: a JSON object of at most FACTS_BYTES, else None (the host
    validates every field: coco_agent/sandbox/facts.py)."""
    if not isinstance(value, dict):
        return None
    try:
        import json

        return value if len(json.dumps(value)) <= FACTS_BYTES else None
    except (TypeError, ValueError, RecursionError, OverflowError):
        return None


def mask_boxes(mask) -> list[list[int]] | None:
    """Boxes covering every True pixel of a 2-D mask, by recursive XY cuts: split at empty rows, then at
    column gaps wider than a third of the piece's height, until no piece splits. None past MAX_TEXT_BOXES."""
    import numpy as np

    def runs(line, gap: int) -> list[tuple[int, int]]:
        idx = np.flatnonzero(line)
        if idx.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(idx) > gap + 1)
        starts = idx[np.concatenate(([0], cuts + 1))]
        ends = idx[np.concatenate((cuts, [idx.size - 1]))] + 1
        return list(zip(starts.tolist(), ends.tolist(), strict=True))

    boxes, todo = [], [(0, 0, mask.shape[1], mask.shape[0])]
    while todo:
        x0, y0, x1, y1 = todo.pop()
        piece = mask[y0:y1, x0:x1]
        rows = runs(piece.any(axis=1), 1)
        if len(rows) > 1:
            todo.extend((x0, y0 + a, x1, y0 + b) for a, b in rows)
            continue
        if not rows:
            continue
        y0, y1 = y0 + rows[0][0], y0 + rows[0][1]
        cols = runs(mask[y0:y1, x0:x1].any(axis=0), max(2, (y1 - y0) // 3))
        if len(cols) > 1:
            todo.extend((x0 + a, y0, x0 + b, y1) for a, b in cols)
            continue
        boxes.append([x0 + cols[0][0], y0, x0 + cols[0][1], y1])
        if len(boxes) > MAX_TEXT_BOXES:
            return None
    return sorted(boxes, key=lambda b: (b[1], b[0]))


TOTAL_TEXT_CHARS = 32_000  # characters over all reported strings (the frame header stays far below its limit)


def _int_box(value) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(type(v) is int for v in value)


def sane_texts(value) -> list[dict] | None:
    """What the worker forwards of a renderer's drawn strings: at most MAX_TEXTS records {text, box, container,
    font_px, rotation?, color?} of the right types (strings capped), else None (unknown). The host validates
    them again."""
    if not isinstance(value, list) or len(value) > MAX_TEXTS:
        return None
    out, total = [], 0
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not _int_box(item.get("box"))
        ):
            return None
        container, font = item.get("container"), item.get("font_px")
        rotation, color = item.get("rotation", 0), item.get("color")
        if container is not None and not _int_box(container):
            return None
        if font is not None and (type(font) not in (int, float) or not 0 < font < 10_000):
            return None
        if type(rotation) not in (int, float) or not -1e4 < rotation < 1e4:
            return None
        if color is not None and not (isinstance(color, str) and len(color) == 7 and color.startswith("#")):
            return None
        record = {"text": item["text"][:MAX_TEXT_CHARS], "box": item["box"], "container": container}
        total += len(record["text"])
        if total > TOTAL_TEXT_CHARS:
            return None
        out.append(record | {"font_px": font, "rotation": rotation, "color": color})
    return out
