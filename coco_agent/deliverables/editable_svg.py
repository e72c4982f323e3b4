"""final.svg: the final picture with the program's text as live, selectable, editable vector text.

Two layers, at the final image's pixel size:

1. ``<image id="background">``: final.png (the refined raster) with the pixels of every string that is set as
   live text painted over with the colour around it, so changing a word leaves no ghost of the old one;
2. ``<g id="text">``: one ``<text>`` per string, where the draft drew it.

Where the strings and their places come from:

- **SVG drafts**: the program's own ``<text>`` elements (parsed on the host with defusedxml: data, never run),
  copied with their presentation attributes, inherited styles and transforms into an ``<svg>`` with the
  program's own viewBox, so they sit exactly where the draft drew them; the pixels cleared are the sandbox's
  text boxes;
- **matplotlib and PIL drafts**: the strings the sandbox reports with their pixel boxes, sizes, angles and
  colours (``texts`` in attempts/NN/text_boxes.json): each set at its box, ``textLength`` fitting it to the
  box's width, rotated about its centre when the draft's text was.

Nothing here can fail a run: ``write_editable_svg`` returns a record saying what it did or why not.
"""

from __future__ import annotations

import base64
import io
import math
import re
import statistics
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from PIL import Image, ImageDraw

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"  # matplotlib's and the sandbox's default face
ERASE_PAD = 1  # pixels around a text box cleared with it (antialiasing)
RING = 3  # width of the ring around a box whose colours give the fill
# what a copied SVG <text>/<tspan> keeps (no scripts, links, CSS classes, url() references)
SVG_TEXT_ATTRIBUTES = frozenset(
    {
        "x", "y", "dx", "dy", "rotate", "transform", "textLength", "lengthAdjust", "font-family", "font-size",
        "font-weight", "font-style", "font-variant", "font-stretch", "fill", "fill-opacity", "stroke",
        "stroke-width", "stroke-opacity", "opacity", "text-anchor", "dominant-baseline", "alignment-baseline",
        "baseline-shift", "letter-spacing", "word-spacing", "text-decoration", "writing-mode", "direction",
        "unicode-bidi", "xml:space", "style",
    }
)  # fmt: skip
INHERITED = ("fill", "fill-opacity", "stroke", "stroke-width", "font-family", "font-size", "font-weight",
             "font-style", "text-anchor", "dominant-baseline", "letter-spacing", "opacity")  # fmt: skip
STYLE_OK = re.compile(r"^[\w\s#%.,:;()\-'\"]*$")  # a style attribute without url(), expressions or escapes


def write_editable_svg(
    path: Path, final_png: Path, *, texts: list[dict] | None, boxes: list[list[int]] | None,
    size: tuple[int, int] | None, svg_source: str | None = None, title: str = "", bare: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Write ``path`` (final.svg) from final.png and the draft's text; the record of what was done.

    ``texts``/``boxes``/``size``: what the sandbox reported for the draft (boxes in pixels of a draft of
    ``size``); ``svg_source``: the program, for an SVG draft; ``bare``: the final picture without its text
    (layered text), the background as it is, nothing erased. Returns ``{"path", "strings", "source",
    "background"}``, or ``{"path": None, "why": ...}`` when there is no text to set live.
    """
    from coco_agent.sandbox.base import SandboxLimits
    from coco_agent.sandbox.png import decode_png, read_bounded

    limits = SandboxLimits()
    picture = bare or final_png
    image = decode_png(read_bounded(picture, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes)
    image = image.convert("RGB")
    width, height = image.size
    scale = (width / size[0], height / size[1]) if size and size[0] and size[1] else (1.0, 1.0)
    root = ET.Element(
        f"{{{SVG_NS}}}svg",
        {"width": str(width), "height": str(height), "viewBox": f"0 0 {width} {height}", "version": "1.1"},
    )
    if title:
        ET.SubElement(root, f"{{{SVG_NS}}}title").text = title[:2000]
    layer = ET.Element(f"{{{SVG_NS}}}g", {"id": "text"})
    if svg_source is not None:
        strings, erase, why = _svg_program_text(svg_source, layer, width, height)
        erase = [scaled(b, scale) for b in boxes or []] if strings else []
        source = "program"
    else:
        strings, erase, why = _reported_text(texts, layer, scale)
        source = "sandbox"
    if not strings:
        return {"path": None, "why": why or "the draft shows no text the sandbox could name"}
    background = image if bare else erased(image, erase)
    url = data_url(background)
    ET.SubElement(
        root,
        f"{{{SVG_NS}}}image",
        {"id": "background", "x": "0", "y": "0", "width": str(width), "height": str(height),
         "preserveAspectRatio": "none", "href": url, f"{{{XLINK_NS}}}href": url},
    )  # fmt: skip
    root.append(layer)
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    data = ET.tostring(root, encoding="unicode", xml_declaration=False)
    from coco_agent.runs import write_bytes

    write_bytes(path, ('<?xml version="1.0" encoding="UTF-8"?>\n' + data + "\n").encode("utf-8"))
    kind = "without text (layered)" if bare else "the final picture, its text erased"
    return {
        "path": path.name,
        "strings": len(strings),
        "texts": strings,
        "source": source,
        "background": kind,
    }


# ------------------------------------------------------------------------------- strings the sandbox reported


def _reported_text(
    texts: list[dict] | None, layer: ET.Element, scale: tuple[float, float]
) -> tuple[list[str], list[list[int]], str]:
    if texts is None:
        return [], [], "the sandbox did not report the draft's strings (only where text is)"
    strings, erase = [], []
    for string, box, font, rotation, color in placed_strings(texts, scale):
        layer.append(_text_element(string, box, font, rotation, color))
        strings.append(string)
        erase.append(box)
    return strings, erase, "" if strings else "the draft's strings are all blank"


def placed_strings(
    texts: list[dict], scale: tuple[float, float]
) -> list[tuple[str, list[int], float, float, str | None]]:
    """The reported strings that are not blank, each (string, box in the final's pixels, font px, angle,
    colour); a string without a font size gets one from its box's height."""
    placed = []
    for item in texts:
        string = str(item.get("text") or "")
        if not string.strip():
            continue
        box = scaled(item["box"], scale)
        font = item.get("font_px")
        font = font * scale[1] if font else max(4.0, 0.8 * (box[3] - box[1]))
        placed.append((string, box, font, float(item.get("rotation") or 0), item.get("color")))
    return placed


def _text_element(string: str, box: list[int], font: float, rotation: float, color: str | None) -> ET.Element:
    """A <text> that covers ``box`` the way the draft's string did: one line per line of the string, each
    fitted to the box's width (``textLength``); a turned string rotated about the box's centre."""
    x0, y0, x1, y1 = box
    lines = string.split("\n")
    attrs = {"font-family": FONT, "font-size": f"{font:.2f}", "fill": color or "#000000"}
    angle = rotation % 360
    theta = math.radians(angle)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    line_h = 1.2 * font
    if angle < 0.5 or angle > 359.5:  # upright: lines from the box's top, baselines at 80% of each line
        step = (y1 - y0) / len(lines)
        text = ET.Element(f"{{{SVG_NS}}}text", {**attrs, "x": str(x0), "y": f"{y0 + 0.8 * step:.2f}"})
        for i, line in enumerate(lines):
            span = ET.SubElement(
                text, f"{{{SVG_NS}}}tspan", {"x": str(x0), "y": f"{y0 + (i + 0.8) * step:.2f}"}
            )
            span.text = line
            if len(lines) == 1 or line.strip():
                span.set("textLength", str(max(1, x1 - x0)))
                span.set("lengthAdjust", "spacingAndGlyphs")
        if len(lines) > 1:
            del text.attrib["x"], text.attrib["y"]
            for span in text:
                span.attrib.pop("textLength", None)
                span.attrib.pop("lengthAdjust", None)
        return text
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    block = len(lines) * line_h
    length = (x1 - x0 - block * sin) / cos if cos > 0.2 else (y1 - y0 - block * cos) / max(sin, 1e-6)
    text = ET.Element(
        f"{{{SVG_NS}}}text",
        {**attrs, "text-anchor": "middle", "dominant-baseline": "central",
         "transform": f"rotate({-angle:.2f} {cx:.2f} {cy:.2f})"},
    )  # fmt: skip
    for i, line in enumerate(lines):
        span = ET.SubElement(
            text,
            f"{{{SVG_NS}}}tspan",
            {"x": f"{cx:.2f}", "y": f"{cy + (i - (len(lines) - 1) / 2) * line_h:.2f}"},
        )
        span.text = line
        if len(lines) == 1 and length > 1:
            span.set("textLength", f"{length:.2f}")
            span.set("lengthAdjust", "spacingAndGlyphs")
    return text


# ------------------------------------------------------------------------------------- an SVG draft's text


def _svg_program_text(source: str, layer: ET.Element, width: int, height: int) -> tuple[list[str], list, str]:
    """Copy the program's <text> elements (with what they inherit) into an <svg> laid over the picture exactly
    as the program's root was: same viewBox, same aspect-ratio rule."""
    import defusedxml.ElementTree as safe_xml
    from defusedxml import DefusedXmlException

    try:
        program = safe_xml.fromstring(source.encode("utf-8"))
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        return [], [], f"the program is not SVG the host can read ({type(exc).__name__})"
    if _local(program.tag) != "svg":
        return [], [], "the program's root element is not <svg>"
    frame = {"x": "0", "y": "0", "width": str(width), "height": str(height)}
    view_box = program.get("viewBox") or _view_box(program)
    if view_box:
        frame["viewBox"] = view_box
    if program.get("preserveAspectRatio"):
        frame["preserveAspectRatio"] = program.get("preserveAspectRatio")
    nested = ET.SubElement(layer, f"{{{SVG_NS}}}svg", frame)
    strings: list[str] = []
    for element, ancestors in _texts(program):
        group = nested
        inherited: dict[str, str] = {}
        transforms = []
        for ancestor in ancestors:
            inherited |= {k: v for k, v in _presentation(ancestor).items() if k in INHERITED}
            if ancestor.get("transform") and _safe_value(ancestor.get("transform")):
                transforms.append(ancestor.get("transform"))
        if transforms or inherited:
            group = ET.SubElement(
                nested,
                f"{{{SVG_NS}}}g",
                {**inherited, **({"transform": " ".join(transforms)} if transforms else {})},
            )
        copy = _copy_text(element)
        string = "".join(copy.itertext())
        if string.strip():
            group.append(copy)
            strings.append(string)
    return strings, [], "" if strings else "the SVG program has no <text> elements"


def _texts(root: ET.Element) -> list[tuple[ET.Element, list[ET.Element]]]:
    """Every <text> outside <defs>, <clipPath>, <mask>, <symbol>, <pattern> and <marker>, in document order,
    with its ancestors below the root (outermost first)."""
    skip = {
        "defs",
        "clipPath",
        "mask",
        "symbol",
        "pattern",
        "marker",
        "style",
        "script",
        "foreignObject",
        "text",
    }
    parent = {child: element for element in root.iter() for child in element}
    found = []
    for element in root.iter():
        if _local(element.tag) != "text":
            continue
        ancestors, node = [], parent.get(element)
        while node is not None and node is not root:
            ancestors.append(node)
            node = parent.get(node)
        if not any(_local(a.tag) in skip for a in ancestors):
            found.append((element, list(reversed(ancestors))))
    return found


def _copy_text(element: ET.Element) -> ET.Element:
    """``element`` (a <text> or <tspan>) with only the attributes in SVG_TEXT_ATTRIBUTES, tspans kept, any other
    child (a <textPath>, an <a>, ...) reduced to its text."""
    copy = ET.Element(f"{{{SVG_NS}}}{_local(element.tag)}", _presentation(element, SVG_TEXT_ATTRIBUTES))
    copy.text = element.text
    for child in element:
        if _local(child.tag) == "tspan":
            copy.append(_copy_text(child))
        else:
            _add_text(copy, "".join(child.itertext()))
        _add_text(copy, child.tail or "")
    return copy


def _add_text(element: ET.Element, text: str) -> None:
    """Append ``text`` after what ``element`` holds so far (its last child's tail, or its own text)."""
    if not text:
        return
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


def _presentation(element: ET.Element, allowed: frozenset[str] | None = None) -> dict[str, str]:
    allowed = allowed or frozenset(INHERITED)
    out = {}
    for key, value in element.attrib.items():
        name = _local(key)
        if key == "{http://www.w3.org/XML/1998/namespace}space":
            name = "xml:space"
        if name in allowed and _safe_value(value):
            out["{http://www.w3.org/XML/1998/namespace}space" if name == "xml:space" else name] = value
    return out


def _safe_value(value: str) -> bool:
    return len(value) <= 2000 and "url(" not in value.lower() and bool(STYLE_OK.match(value))


def _view_box(program: ET.Element) -> str | None:
    """The program's own coordinate frame when it names no viewBox: its width and height in user units."""
    try:
        w, h = (float(re.sub(r"px$", "", program.get(k, ""))) for k in ("width", "height"))
    except ValueError:
        return None
    return f"0 0 {w:g} {h:g}" if w > 0 and h > 0 else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# ------------------------------------------------------------------------------------------ the background


def erased(image: Image.Image, boxes: list[list[int]]) -> Image.Image:
    """``image`` with each box (padded) painted in the median colour of the ring of pixels around it."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = image.size
    pixels = image.load()
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(0, x0 - ERASE_PAD), max(0, y0 - ERASE_PAD)
        x1, y1 = min(width, x1 + ERASE_PAD), min(height, y1 + ERASE_PAD)
        if x0 >= x1 or y0 >= y1:
            continue
        ring = []
        for y in range(max(0, y0 - RING), min(height, y1 + RING)):
            for x in range(max(0, x0 - RING), min(width, x1 + RING)):
                if not (x0 <= x < x1 and y0 <= y < y1):
                    ring.append(pixels[x, y])
        if not ring:
            continue
        colour = tuple(int(statistics.median(channel)) for channel in zip(*ring, strict=True))
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
    return out


def scaled(box: list[int], scale: tuple[float, float]) -> list[int]:
    sx, sy = scale
    return [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]


def data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
