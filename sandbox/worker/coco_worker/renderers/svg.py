"""SVG: a document rendered by cairosvg (or a Python program that writes one), captured as PNG.

XML entities are off, nothing is fetched but data: URLs (a raster's size checked from its header first), and
every surface cairosvg allocates (canvas, pattern tiles, masks) is checked against the pixel cap. Text boxes
come from a second render with text elements drawing nothing: the pixels that differ are the text's. The drawn
strings ("texts": what the geometry checks read) are measured during the render itself: after each text,
tspan or textPath element has laid out its glyphs, the extents of their outlines in device pixels, the font
size in pixels and the angle, unclipped (so a string running off the canvas is seen).
"""

from __future__ import annotations

import io
import os
import struct

from coco_worker import facts, hidden_text
from coco_worker.capture import Capture, Found, newest_file
from coco_worker.pixels import Rejected, check_pixels
from coco_worker.protocol import MAX_TEXT_CHARS, MAX_TEXTS
from coco_worker.textboxes import _pixel_box, mask_boxes, png_dimensions

NAME = "svg"
FALLBACKS = ("matplotlib", "pil", "file")
HIDES_TEXT = True  # with hide_text, the second render (text elements drawing nothing) is the picture


class Hooks:
    """What an SVG job leaves: a variable named svg, or an .svg file."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def install(self) -> None:
        """Nothing to hook: cairosvg is only called by the worker."""

    def found(self, namespace: dict, job_dir: str) -> Found | None:
        """An SVG the program left in a variable named svg, else the newest .svg file it wrote."""
        text = namespace.get("svg")
        if isinstance(text, str | bytes) and looks_like_svg(text):
            png, boxes, more = render_svg_with_text_boxes(text, self.capture.max_pixels)
            facts.note_svg(text, png)
            return png, "variable:svg", boxes, more
        path = newest_file(job_dir, (".svg",))
        if path:
            with open(path, "rb") as f:
                data = f.read()
            png, boxes, more = render_svg_with_text_boxes(data, self.capture.max_pixels)
            facts.note_svg(data, png)
            return png, f"file:{os.path.basename(path)}", boxes, more
        return None


def document(source: str, limits: dict) -> Found | None:
    """The job's text rendered as an SVG document, or None when it is not one (then it runs as Python)."""
    if not looks_like_svg(source):
        return None
    png, boxes, more = render_svg_with_text_boxes(source.encode("utf-8"), limits["max_pixels"])
    facts.note_svg(source, png)
    return png, "svg text", boxes, more


def preload(full_warm_up: bool = True) -> None:
    """Import cairosvg in the zygote."""
    import cairosvg  # noqa: F401


SVG_BOX_PIXELS = 8_000_000  # SVG text boxes (two renders compared) only for pictures up to this size


def render_svg_with_text_boxes(text: str | bytes, max_pixels: int) -> tuple[bytes, list | None, dict]:
    """Render SVG, and find its text by rendering it again without text (text, tspan and textPath draw
    nothing): the pixels that differ are the ones the text elements made, grouped into boxes (XY cut).
    Boxes are None (unknown) when the picture is too large to compare or the second render fails. With
    hide_text, the picture returned is the render without text. The third item: {"texts": the drawn strings
    measured during the render (None when unknown)}."""
    measured: list = []
    with _measuring_text(measured):
        png = render_svg(text, max_pixels)
    more = {"texts": _grouped(measured) if None not in measured and len(measured) <= MAX_TEXTS else None}
    size = png_dimensions(png)
    if hidden_text.hiding():
        bare = render_svg_without_text(text, max_pixels)
        boxes = _difference_boxes(png, bare) if size and size[0] * size[1] <= SVG_BOX_PIXELS else None
        return bare, boxes, more
    if size is None or size[0] * size[1] > SVG_BOX_PIXELS:
        return png, None, more
    try:
        return png, _difference_boxes(png, render_svg_without_text(text, max_pixels)), more
    except Exception:
        return png, None, more


TEXT_TAGS = ("text", "tspan", "textPath")


class _measuring_text:
    """While rendering: after each text element lays out its glyphs (cairosvg fills them right after), note
    its string and the device-pixel extents of the glyph outlines. A measurement that fails adds None (the
    texts are then unknown, never a wrong list)."""

    def __init__(self, found: list) -> None:
        self.found, self.saved = found, {}

    def __enter__(self) -> None:
        import cairosvg.surface

        tags = cairosvg.surface.TAGS
        self.saved = {name: tags[name] for name in TEXT_TAGS if name in tags}
        found, roots = self.found, [0]
        for name, original in self.saved.items():

            def measured(surface, node, *args, _original=original, _root=name == "text", **kwargs):
                roots[0] += _root  # tspans and textPaths belong to the last <text> begun
                result = _original(surface, node, *args, **kwargs)
                if len(found) <= MAX_TEXTS:
                    try:
                        record = _drawn_text(surface, node)
                    except Exception:
                        record = None
                        found.append(None)
                    if record:
                        found.append(record | {"_root": roots[0]})
                return result

            tags[name] = measured

    def __exit__(self, *exc) -> None:
        import cairosvg.surface

        cairosvg.surface.TAGS.update(self.saved)


def _grouped(found: list[dict]) -> list[dict]:
    """The runs of one <text> element (its own text and its tspans) share a container: the box around them
    all, so the geometry checks read them as one flow (neither overlapping each other nor overflowing)."""
    boxes: dict[int, list[int]] = {}
    counts: dict[int, int] = {}
    for record in found:
        root, box = record["_root"], record["box"]
        counts[root] = counts.get(root, 0) + 1
        old = boxes.get(root)
        boxes[root] = box if old is None else [min(old[0], box[0]), min(old[1], box[1]), max(old[2], box[2]),
                                               max(old[3], box[3])]  # fmt: skip
    out = []
    for record in found:
        root = record.pop("_root")
        if counts[root] > 1:
            record["container"] = list(boxes[root])
        out.append(record)
    return out


def _drawn_text(surface, node) -> dict | False:
    """The string one text element just laid out, with its box, font size and angle; False when it draws
    nothing visible."""
    import math

    string = node.text if isinstance(getattr(node, "text", None), str) else ""
    if not string.strip():
        return False
    if node.get("display") == "none" or node.get("visibility") in ("hidden", "collapse"):
        return False
    if node.get("fill") == "none" and node.get("stroke") in (None, "none"):
        return False
    context = surface.context
    x0, y0, x1, y1 = context.path_extents()
    if x1 <= x0 or y1 <= y0:
        return False
    corners = [context.user_to_device(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    xx, yx, xy, yy, _, _ = context.get_matrix()
    scale = math.sqrt(abs(xx * yy - xy * yx))
    font = float(getattr(surface, "font_size", 0) or 0) * scale
    angle = -math.degrees(
        math.atan2(yx, xx)
    )  # cairo turns clockwise on screen; "rotation" is counter-clockwise
    return {
        "text": string[:MAX_TEXT_CHARS],
        "box": _pixel_box(min(xs), min(ys), max(xs), max(ys)),
        "container": None,
        "font_px": round(font, 2) if 0 < font < 10_000 else None,
        "rotation": round(angle, 2) if abs(angle) >= 0.5 else 0.0,
        "color": None,
    }


def render_svg_without_text(text: str | bytes, max_pixels: int) -> bytes:
    """The same SVG rendered with its text, tspan and textPath elements drawing nothing."""
    import cairosvg.surface

    tags = cairosvg.surface.TAGS
    saved = {name: tags[name] for name in ("text", "tspan", "textPath") if name in tags}
    if "text" not in saved:
        raise RuntimeError("this cairosvg draws text some other way: its text cannot be hidden")
    tags.update(dict.fromkeys(saved, _draw_nothing))
    try:
        return render_svg(text, max_pixels)
    finally:
        tags.update(saved)


def _difference_boxes(png: bytes, bare: bytes) -> list | None:
    """Boxes around the pixels where two renders of the same size differ (None when they cannot be compared)."""
    try:
        import numpy as np
        from PIL import Image

        with Image.open(io.BytesIO(png)) as a, Image.open(io.BytesIO(bare)) as b:
            if a.size != b.size:
                return None
            drawn = np.asarray(a.convert("RGBA")) != np.asarray(b.convert("RGBA"))
        return mask_boxes(drawn.any(axis=2))
    except Exception:
        return None


def _draw_nothing(surface, node, *args, **kwargs) -> None:
    return None


EMPTY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


SVG_CAP = [40_000_000]  # the pixel cap of the job being rendered (the checks below read it)


def _inline_only(read_url):
    """Wrap cairosvg's URL reader: data: URLs are read (a raster's size checked from its header before
    anything decodes it), anything else (file:, http:, ...) is an empty SVG."""

    def read(url, url_fetcher, resource_type):
        text = url.geturl() if hasattr(url, "geturl") else str(url)
        if not text.startswith("data:"):
            return EMPTY_SVG
        data = read_url(url, url_fetcher, resource_type)
        _check_raster_header(data)
        return data

    return read


def _check_raster_header(data) -> None:
    """Refuse an inlined raster image larger than the cap, from its header (PIL opens lazily)."""
    if not isinstance(data, bytes | bytearray) or looks_like_svg(bytes(data[:512])):
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        size = (float("inf"), 1)  # PIL itself found it too large
    except (UnidentifiedImageError, OSError, ValueError):
        size = None
    if size is not None:
        check_pixels(size[0], size[1], SVG_CAP[0], "inlined image")


def _checked_surfaces(cairosvg) -> None:
    """Every surface cairosvg makes (the canvas; pattern tiles and masks, which cairo rasterises when it paints
    them) is checked against the pixel cap before cairo allocates anything."""
    for cls in (cairosvg.surface.PNGSurface, cairosvg.surface.SVGSurface):
        if getattr(cls._create_surface, "coco_checked", False):
            continue
        original = cls._create_surface

        def create(surface, width, height, original=original):
            check_pixels(width, height, SVG_CAP[0], "SVG canvas")
            return original(surface, width, height)

        create.coco_checked = True
        cls._create_surface = create


def render_svg(text: str | bytes, max_pixels: int) -> bytes:
    """Render SVG with cairosvg: XML entities off (unsafe=False), no file or network fetching at all, every
    raster it allocates checked against the pixel cap first."""
    import cairosvg
    import cairosvg.parser
    import cairosvg.surface

    if not getattr(cairosvg.parser.read_url, "coco_inline_only", False):
        cairosvg.parser.read_url = _inline_only(cairosvg.parser.read_url)
        cairosvg.parser.read_url.coco_inline_only = True
    _checked_surfaces(cairosvg)
    SVG_CAP[0] = max_pixels
    data = text.encode() if isinstance(text, str) else text
    png = cairosvg.svg2png(bytestring=data, unsafe=False)
    width, height = struct.unpack(">II", png[16:24])
    if width * height > max_pixels:
        raise Rejected(f"SVG of {width}x{height} px exceeds the {max_pixels} pixel cap")
    return png


def looks_like_svg(text: str | bytes) -> bool:
    head = (text[:512].decode("utf-8", "replace") if isinstance(text, bytes) else text[:512]).lstrip(
        "\ufeff \t\r\n"
    )
    return head.startswith(("<svg", "<?xml", "<!DOCTYPE svg", "<!--"))
