"""Layered text: the draft's text as a layer of its own, composited over the refined picture.

The sandbox draws the accepted program twice: as it is (the draft) and with every text drawing nothing, the
layout unchanged (the *bare* draft). The refiner only ever sees the bare draft; the text goes back on top at
the same pixels, so no glyph passes through diffusion.

The layer is solved per pixel from the two renders: where they differ, the draft pixel is a blend
``A = a*T + (1 - a)*B`` of a text colour T over the bare pixel B. With the local maximum difference D (the
fully covered pixels nearby), ``a = |A - B| / D`` and ``T = B + (A - B) / a``: composited over B it gives A back
exactly, and over a refined background it gives the same glyph edges, blended with the new background. Alpha is
never below the least value that explains the pixel with a colour in range (a dark shadow beside bright glyphs).

The split is refused (and the run falls back to protecting the text) when the two renders disagree outside the
draft's text boxes (a little is allowed within two box heights of one: list markers, shadows; almost nothing
farther), when the boxes cover most of the canvas (nothing left to check), when hiding the text changed
nothing, or when the sizes differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageFilter

from coco_agent.models.content import flatten_rgb
from coco_agent.refiners.text_regions import Box, padded_and_merged

CHANGED = 3  # a channel differing by more than this counts as a change (0-255)
OUTSIDE_SHARE = 0.005  # changes outside the text boxes tolerated (list markers, shadows), share of the canvas
FAR_SHARE = 0.0005  # changes two box heights or more from any text box tolerated, share of the canvas
BOXES_SHARE = 0.6  # text boxes covering more of the canvas than this: refused (nothing is left to check)
CORE = 12.0  # a local maximum difference (0-255, Euclidean over RGB / sqrt 3) below this is noise, not text
WINDOW = 5  # the neighbourhood (px) in which a pixel's fully covered text pixel is looked for


class LayerRefused(ValueError):
    """Why the draft's text cannot be separated from what lies beneath it."""


@dataclass
class TextLayer:
    """The draft's text as RGBA (transparent where there is none), the draft it came from (what the refined
    picture is judged against), the draft without its text (what the refiner gets), and how it was solved."""

    layer: Image.Image
    draft: Image.Image
    bare: Image.Image
    pixels: int = 0  # pixels with any text (alpha > 0)
    outside: int = 0  # changed pixels outside the text boxes (ignored)

    def record(self) -> dict[str, int]:
        return {"text_pixels": self.pixels, "changed_outside_text": self.outside}


def split_text(draft: Image.Image, bare: Image.Image, boxes: list[Box]) -> TextLayer:
    """The text layer of ``draft`` given its render without text and its text boxes; LayerRefused says why not."""
    if draft.size != bare.size:
        raise LayerRefused(
            f"the render without text is {bare.size[0]}x{bare.size[1]} px, the draft "
            f"{draft.size[0]}x{draft.size[1]} px"
        )
    if not boxes:
        raise LayerRefused("the sandbox did not report where the draft's text lies")
    import numpy as np

    draft, bare = (
        flatten_rgb(draft),
        flatten_rgb(bare),
    )  # transparency onto white, as the critic and refiner see it
    a = np.asarray(draft, dtype=np.float32)
    b = np.asarray(bare, dtype=np.float32)
    changed = (np.abs(a - b) > CHANGED).any(axis=2)
    zone = np.zeros(changed.shape, dtype=bool)
    for x0, y0, x1, y1 in padded_and_merged(boxes, draft.size):
        zone[y0:y1, x0:x1] = True
    if zone.sum() > BOXES_SHARE * zone.size:
        raise LayerRefused(
            f"the reported text boxes cover {zone.sum() / zone.size:.0%} of the canvas: too much to check "
            "that only the text differs"
        )
    near = np.zeros(changed.shape, dtype=bool)  # a box height around each box: list markers, shadows, glows
    width, height = draft.size
    for x0, y0, x1, y1 in boxes:
        grow = max(8, 2 * (y1 - y0))  # two line heights: a list marker sits about 1.5 em left of its text
        near[max(0, y0 - grow) : min(height, y1 + grow), max(0, x0 - grow) : min(width, x1 + grow)] = True
    outside, far = int((changed & ~zone).sum()), int((changed & ~zone & ~near).sum())
    if outside > OUTSIDE_SHARE * changed.size or far > FAR_SHARE * changed.size:
        raise LayerRefused(
            f"the render without text differs from the draft in {outside} px outside its text boxes ({far} far "
            "from any) (a program that draws differently each run, or text drawn by other means than the "
            "renderer's text calls)"
        )
    if not (changed & zone).any():
        raise LayerRefused("hiding the text changed nothing: the draft's text is not drawn by text calls")
    diff = np.sqrt(((a - b) ** 2).sum(axis=2)) / np.sqrt(3.0)  # 0-255
    diff[~(zone | near)] = (
        0.0  # far from the text: not the text's (and never stamped over the refined picture)
    )
    level = np.clip(np.rint(diff), 0, 255).astype(np.uint8)
    local = np.asarray(Image.fromarray(level, "L").filter(ImageFilter.MaxFilter(WINDOW)), dtype=np.float32)
    alpha = np.where(local >= CORE, np.minimum(diff / np.maximum(local, 1.0), 1.0), 0.0)
    # never less than the least alpha that explains the pixel with a colour in range (a dark shadow beside
    # bright glyphs: the local maximum belongs to another colour)
    room = np.where(a < b, b, 255.0 - b)
    least = np.where(room > 0, np.abs(a - b) / np.maximum(room, 1e-6), 0.0).max(axis=2)  # room 0: no change
    alpha = np.maximum(alpha, np.minimum(least, 1.0))
    alpha[np.abs(a - b).max(axis=2) <= 1] = 0.0  # equal but for rounding: no text
    alpha[~(zone | near)] = 0.0
    safe = np.maximum(alpha, 1e-6)[..., None]
    colour = np.clip(b + (a - b) / safe, 0, 255)
    rgba = np.dstack([np.rint(colour), np.rint(alpha * 255)]).astype(np.uint8)
    rgba[alpha <= 0] = 0
    return TextLayer(
        layer=Image.fromarray(rgba, "RGBA"),
        draft=draft,
        bare=bare,
        pixels=int((rgba[..., 3] > 0).sum()),
        outside=outside,
    )


def composite(background: Image.Image, layer: Image.Image) -> Image.Image:
    """The text layer over ``background`` (resized to the layer's size first when it differs)."""
    base = flatten_rgb(background)
    if base.size != layer.size:
        base = base.resize(layer.size, Image.LANCZOS)
    out = base.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")
