"""The pixel cap, checked by value before anything allocates a raster."""

from __future__ import annotations


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
