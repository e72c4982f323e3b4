"""Re-refine only what changed: after `coco edit`, the new draft is compared with the draft the old final was
refined from, pixel by pixel; the changed pixels, grown by ``DILATE`` pixels, are the only ones refined again.

``changed_mask`` finds them; ``region_crop`` cuts the smallest window around them that the refiner takes (a
margin of context, sides a multiple of the family's); ``composite`` writes the refined window's pixels into the
old final under the mask only, so every pixel outside it keeps the old final's value exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from coco_agent.models.content import flatten_rgb

DILATE = 12  # pixels the changed region grows by on every side (antialiasing, a refiner's seams)
CONTEXT = 32  # pixels of unchanged picture around the region that the refiner sees (not written back)


@dataclass
class Change:
    """What differs between two drafts: the grown mask (True: refine again) and the numbers for result.json."""

    mask: np.ndarray  # bool, height x width
    changed_pixels: int
    region_pixels: int

    @property
    def empty(self) -> bool:
        return self.changed_pixels == 0

    def as_dict(self, crop: tuple[int, int, int, int] | None) -> dict:
        total = int(self.mask.size)
        return {
            "changed_pixels": self.changed_pixels,
            "region_pixels": self.region_pixels,
            "region_fraction": round(self.region_pixels / total, 4) if total else 0.0,
            "dilate": DILATE,
            "crop": list(crop) if crop else None,
        }


def changed_mask(old: Image.Image, new: Image.Image, dilate: int = DILATE) -> Change:
    """The pixels where ``new`` differs from ``old`` (any channel), grown by ``dilate`` pixels (a square)."""
    a = np.asarray(flatten_rgb(old), dtype=np.int16)  # transparency onto white, as the refiner sees it
    b = np.asarray(flatten_rgb(new), dtype=np.int16)
    if a.shape != b.shape:
        raise ValueError(f"the drafts differ in size ({old.size} vs {new.size})")
    diff = np.any(a != b, axis=2)
    grown = grow(diff, dilate)
    return Change(mask=grown, changed_pixels=int(diff.sum()), region_pixels=int(grown.sum()))


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1)-square, separably: a running max along rows, then along columns."""
    out = mask.copy()
    for axis in (0, 1):
        acc = out.copy()
        for shift in range(1, radius + 1):
            ahead = np.roll(out, shift, axis=axis)
            behind = np.roll(out, -shift, axis=axis)
            if axis == 0:
                ahead[:shift, :] = False
                behind[-shift:, :] = False
            else:
                ahead[:, :shift] = False
                behind[:, -shift:] = False
            acc |= ahead | behind
        out = acc
    return out


def region_crop(mask: np.ndarray, multiple: int = 8, context: int = CONTEXT) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) around the mask plus ``context``, its sides rounded up to ``multiple``
    (kept inside the picture; the whole picture when it is smaller)."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    x0, x1 = max(0, int(xs.min()) - context), min(width, int(xs.max()) + 1 + context)
    y0, y1 = max(0, int(ys.min()) - context), min(height, int(ys.max()) + 1 + context)
    x0, x1 = _fit(x0, x1, width, multiple)
    y0, y1 = _fit(y0, y1, height, multiple)
    return x0, y0, x1, y1


def _fit(lo: int, hi: int, size: int, multiple: int) -> tuple[int, int]:
    """[lo, hi) grown to a multiple of ``multiple`` (at most the whole side), kept inside [0, size)."""
    target = min(size, -(-(hi - lo) // multiple) * multiple)
    lo = max(0, min(lo, size - target))
    return lo, lo + target


def composite(
    old_final: Image.Image, refined: Image.Image, crop: tuple[int, int, int, int], mask: np.ndarray
) -> Image.Image:
    """``old_final`` with the pixels of ``refined`` (the refined window ``crop``) written in where ``mask`` is
    True; every other pixel is the old final's, exactly."""
    out = np.array(old_final.convert("RGB"))
    x0, y0, x1, y1 = crop
    refined = refined.convert("RGB")
    if refined.size != (x1 - x0, y1 - y0):
        refined = refined.resize((x1 - x0, y1 - y0), Image.LANCZOS)
    window = np.asarray(refined)
    inside = mask[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = window[inside]
    return Image.fromarray(out)


def mask_image(mask: np.ndarray) -> Image.Image:
    """The mask as a picture (white: refined again), for the run directory."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
