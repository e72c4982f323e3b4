"""final.html (HTML drafts): the final picture with the page's text as live, selectable, editable HTML text.

The same two layers as final.svg (``editable_svg``), as a page a browser opens and a designer edits in place:

1. ``<img id="background">``: final.png (the refined raster) with the pixels of every string set as live text
   painted over with the colour around it, so changing a word leaves no ghost of the old one;
2. ``<div id="text">``: one absolutely placed block per string the sandbox measured in the
   draft's DOM, at its box, font size, angle and colour.

The page runs nothing: no script, and a Content-Security-Policy that allows only its own inline styles and the
``data:`` background. Strings are escaped text, never markup. Nothing here can fail a run.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from coco_agent.deliverables.editable_svg import FONT, data_url, erased, placed_strings

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def write_editable_html(
    path: Path,
    final_png: Path,
    *,
    texts: list[dict] | None,
    size: tuple[int, int] | None,
    title: str = "",
    bare: Path | None = None,
) -> dict[str, Any]:
    """Write ``path`` (final.html) from final.png and the strings the sandbox measured in the draft (boxes in
    pixels of a draft of ``size``); ``bare``: the final picture without its text (layered text), used as the
    background as it is. Returns ``{"path", "strings", "source"}``, or ``{"path": None, "why"}``."""
    from coco_agent.runs import write_bytes
    from coco_agent.sandbox.base import SandboxLimits
    from coco_agent.sandbox.png import decode_png, read_bounded

    if texts is None:
        return {"path": None, "why": "the sandbox did not report the page's strings"}
    limits = SandboxLimits()
    picture = bare or final_png
    image = decode_png(read_bounded(picture, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes)
    image = image.convert("RGB")
    width, height = image.size
    scale = (width / size[0], height / size[1]) if size and size[0] and size[1] else (1.0, 1.0)
    blocks, strings, erase = [], [], []
    for string, box, font, rotation, color in placed_strings(texts, scale):
        blocks.append(_block(string, box, font, rotation, color))
        strings.append(string)
        erase.append(box)
    if not strings:
        return {"path": None, "why": "the page's strings are all blank"}
    url = data_url(image if bare else erased(image, erase))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width={width}, height={height}">
<title>{html.escape(title[:2000])}</title>
<style>
html, body {{ margin: 0; padding: 0; }}
#page {{ position: relative; width: {width}px; height: {height}px; overflow: hidden; }}
#background {{ position: absolute; left: 0; top: 0; width: {width}px; height: {height}px; }}
#text > div {{ position: absolute; margin: 0; padding: 0; white-space: pre; line-height: 1.15;
  font-family: {FONT}; transform-origin: center; }}
</style></head>
<body><div id="page"><img id="background" alt="" src="{url}">
<div id="text">
{chr(10).join(blocks)}
</div></div></body></html>
"""
    write_bytes(path, page.encode("utf-8"))
    return {"path": path.name, "strings": len(strings), "texts": strings, "source": "sandbox"}


def _block(string: str, box: list[int], font: float, rotation: float, color: str | None) -> str:
    """One editable block over ``box`` (a turned string rotated about the box's centre, like the draft's)."""
    x0, y0, x1, y1 = box
    angle = rotation % 360
    style = [f"font-size: {font:.2f}px", f"color: {color or '#000000'}"]
    if 0.5 < angle < 359.5:  # centred on the box's centre, then turned
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        style += [f"left: {cx:.2f}px", f"top: {cy:.2f}px"]
        style.append(f"transform: translate(-50%, -50%) rotate({-angle:.2f}deg)")
    else:
        style += [f"left: {x0}px", f"top: {y0}px", f"min-width: {max(1, x1 - x0)}px"]
    return f'<div style="{"; ".join(style)}">{html.escape(string)}</div>'
