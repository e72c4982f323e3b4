"""The pixel cap, checked by value before anything allocates a raster; PIL images encoded as PNG within it."""

from __future__ import annotations

import io


class Rejected(Exception):
    """The picture breaks a limit (too many pixels, unsafe SVG)."""


def number(value) -> float:
    """A size or dpi by value, whatever its type (numpy scalars included); NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def check_pixels(width, height, cap: int, what: str) -> None:
    """Refuse a raster of width x height before it is allocated: by value (numpy scalars too), NaN and
    infinity included."""
    w, h = number(width), number(height)
    if not (w >= 0 and h >= 0 and w * h <= cap):
        shown = f"{w:.0f}x{h:.0f}" if w == w and h == h else f"{width!r}x{height!r}"[:80]
        raise Rejected(f"{what} of {shown} px exceeds the {cap} pixel cap; use a smaller size or dpi")


def pil_to_png(im, max_pixels: int) -> bytes:
    """Encode a PIL image as PNG (converting exotic modes), refusing oversized ones."""
    if im.width * im.height > max_pixels:
        raise Rejected(f"image of {im.width}x{im.height} px exceeds the {max_pixels} pixel cap")
    if im.mode not in {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}:
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
