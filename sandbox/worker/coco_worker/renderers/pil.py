"""PIL: the program runs as Python; the image it saves or shows (or leaves in a variable) is captured as PNG.

Every image a program allocates (new, resize, crop, transform) is checked against the pixel cap first; the
text drawn with ImageDraw.text is followed as pixel boxes through the operations that keep pixels in place.
"""

from __future__ import annotations

import contextlib
import functools
import sys

from coco_worker import facts, hidden_text
from coco_worker.capture import PROGRAM_NAME, Capture, Found, name_of
from coco_worker.pixels import check_pixels, pil_to_png
from coco_worker.protocol import MAX_TEXTS
from coco_worker.textboxes import _pixel_box

NAME = "pil"
FALLBACKS = ("matplotlib", "file", "svg")
HIDES_TEXT = True  # with hide_text, ImageDraw.text and multiline_text measure their text but draw nothing

PIL_TEXT = "_coco_text_boxes"  # attribute on a PIL image: its drawn strings ({text, box, ...}), None: unknown


class Hooks:
    """One job's PIL hooks and what they caught."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.saved: tuple | None = None  # (copy of the last saved/shown image, how)
        self.created = None  # the last image made by Image.new
        self._depth = 0  # nested ImageDraw.text/multiline_text calls (only the outer one is measured)

    def install(self) -> None:
        """Hook save/show/new, check every image a program allocates against the pixel cap, track text."""
        try:
            from PIL import Image
        except ImportError:
            return
        cap, job = self.capture, self
        original_save, original_new = Image.Image.save, Image.new

        def save(im, fp, *args, **kwargs):
            job.saved = (im.copy(), f"save:{name_of(fp)}")
            return original_save(im, fp, *args, **kwargs)

        def show(im, *args, **kwargs):
            job.saved = (im.copy(), "show")

        def new(*args, **kwargs):
            size = kwargs.get("size", args[1] if len(args) > 1 else None)
            with contextlib.suppress(TypeError, ValueError):  # a malformed size: PIL's own error
                width, height = size
                check_pixels(width, height, cap.max_pixels, "image")
            im = job.created = original_new(*args, **kwargs)
            if sys._getframe(1).f_code.co_filename == PROGRAM_NAME:
                setattr(im, PIL_TEXT, [])  # the program's own blank canvas: no text on it yet
            return im

        def sized(original, size_of):  # methods that allocate a new image of a size the caller chooses
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                try:
                    width, height = size_of(*args, **kwargs)
                except (TypeError, ValueError, IndexError):
                    width = height = None
                if width is not None:
                    check_pixels(width, height, cap.max_pixels, "image")
                return original(im, *args, **kwargs)

            return method

        Image.MAX_IMAGE_PIXELS = max(1, cap.max_pixels // 2)  # opening more than the cap is an error
        Image.Image.save, Image.Image.show, Image.new = save, show, new
        Image.Image.resize = sized(Image.Image.resize, lambda size, *a, **k: size)
        Image.Image.transform = sized(Image.Image.transform, lambda size, *a, **k: size)
        Image.Image.crop = sized(Image.Image.crop, lambda box=None, **k: (box[2] - box[0], box[3] - box[1]))
        self.install_text_tracking()
        facts.install_pil(PIL_TEXT)  # records text, pie slice and rectangle calls (coco_worker/facts.py)

    def install_text_tracking(self) -> None:
        """Follow the text drawn on each PIL image, as boxes stored on the image (attribute PIL_TEXT).

        Known only for images the program made with Image.new, then kept through what leaves every pixel in
        place (copy, convert, paste/alpha_composite/composite/blend of images that are known themselves).
        Anything else (an opened file, a resize, crop, rotate, thumbnail, numpy round trip, a failed
        measurement) leaves an image without boxes: unknown, never a wrong list.
        """
        import inspect

        from PIL import Image, ImageDraw

        job = self
        draw_cls = ImageDraw.ImageDraw
        original_text, original_multiline = draw_cls.text, draw_cls.multiline_text
        measure = set(inspect.signature(draw_cls.textbbox).parameters) - {"self"}

        def wrap_text(original):
            signature = inspect.signature(original)

            @functools.wraps(original)
            def text(draw, *args, **kwargs):
                if job._depth == 0 and hidden_text.hiding():
                    _note_pil_text(draw, signature, measure, args, kwargs)
                    return None
                job._depth += 1
                try:
                    result = original(draw, *args, **kwargs)
                finally:
                    job._depth -= 1
                if job._depth == 0:
                    _note_pil_text(draw, signature, measure, args, kwargs)
                return result

            return text

        def keep(original):  # same pixels in the same places: the boxes carry over
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                out = original(im, *args, **kwargs)
                boxes = getattr(im, PIL_TEXT, None)
                if isinstance(out, Image.Image) and out.size == im.size and boxes is not None:
                    setattr(out, PIL_TEXT, list(boxes))
                return out

            return method

        def forget(original):  # pixels replaced or moved in place
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                setattr(im, PIL_TEXT, None)
                return original(im, *args, **kwargs)

            return method

        original_paste, original_alpha = Image.Image.paste, Image.Image.alpha_composite

        def paste(target, im, box=None, mask=None):  # Pillow's parameter names: callers use them
            result = original_paste(target, im, box, mask)
            if isinstance(box, Image.Image):  # paste(image, mask)
                box = None
            if isinstance(im, Image.Image):
                _add_pil_boxes(target, im, box)
            return result

        def alpha_composite(target, im, dest=(0, 0), source=(0, 0)):
            result = original_alpha(target, im, dest, source)
            if tuple(source) == (0, 0):
                _add_pil_boxes(target, im, dest)
            else:
                setattr(target, PIL_TEXT, None)
            return result

        def combine(original):  # Image.alpha_composite / composite / blend: two same-size images
            @functools.wraps(original)
            def function(first, second, *args, **kwargs):
                out = original(first, second, *args, **kwargs)
                a, b = getattr(first, PIL_TEXT, None), getattr(second, PIL_TEXT, None)
                if a is not None and b is not None and first.size == second.size == out.size:
                    setattr(out, PIL_TEXT, [*a, *b])
                return out

            return function

        draw_cls.text, draw_cls.multiline_text = wrap_text(original_text), wrap_text(original_multiline)
        Image.Image.copy = keep(Image.Image.copy)
        Image.Image.convert = keep(Image.Image.convert)
        for name in ("thumbnail", "putdata", "frombytes"):
            setattr(Image.Image, name, forget(getattr(Image.Image, name)))
        Image.Image.paste, Image.Image.alpha_composite = paste, alpha_composite
        for name in ("alpha_composite", "composite", "blend"):
            setattr(Image, name, combine(getattr(Image, name)))

    def from_globals(self, namespace: dict):
        """The program's image by its variable name (image, img), else its last image variable or Image.new."""
        try:
            from PIL import Image
        except ImportError:
            return None
        for name in ("image", "img"):
            if isinstance(namespace.get(name), Image.Image):
                return namespace[name], f"variable:{name}"
        images = [(k, v) for k, v in namespace.items() if isinstance(v, Image.Image)]
        if images:
            return images[-1][1], f"variable:{images[-1][0]}"
        if self.created is not None:
            return self.created, "Image.new"
        return None

    def found(self, namespace: dict, job_dir: str) -> Found | None:
        """The image last saved or shown, else the program's image variable or its last Image.new."""
        found = self.saved or self.from_globals(namespace)
        if not found:
            return None
        records = getattr(found[0], PIL_TEXT, None)
        boxes = None if records is None else [list(r["box"]) for r in records]
        texts = None if records is None or len(records) > MAX_TEXTS else [dict(r) for r in records]
        png = pil_to_png(found[0], self.capture.max_pixels)
        facts.note_pil(found[0], png)
        return png, found[1], boxes, {"texts": texts}


def preload(full_warm_up: bool = True) -> None:
    """Import PIL in the zygote."""
    import PIL.Image  # noqa: F401
    import PIL.ImageDraw  # noqa: F401


def _note_pil_text(draw, signature, measure: set, args: tuple, kwargs: dict) -> None:
    """Add the box of one ImageDraw.text/multiline_text call to its image (unknown if it cannot be measured)."""
    image = getattr(draw, "_image", None)
    boxes = getattr(image, PIL_TEXT, None)
    if boxes is None:
        return
    try:
        bound = signature.bind(draw, *args, **kwargs)
        bound.apply_defaults()
        call = {k: v for k, v in bound.arguments.items() if k in measure}
        text = call.get("text")
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        if not str(text).strip():
            return
        box = _pixel_box(*draw.textbbox(**call))
        boxes.append({"text": str(text), "box": box, "container": None, **_pil_style(draw, bound.arguments)})
    except Exception:
        setattr(image, PIL_TEXT, None)


def _pil_style(draw, arguments: dict) -> dict:
    """The font size (pixels) and fill colour of an ImageDraw.text call, where they can be known."""
    style: dict = {"font_px": None, "rotation": 0, "color": None}
    font = arguments.get("font") or getattr(draw, "font", None)
    size = arguments.get("font_size") or getattr(font, "size", None)
    if type(size) in (int, float) and 0 < size < 10_000:
        style["font_px"] = float(size)
    fill = arguments.get("fill")
    try:
        if isinstance(fill, str):
            from PIL import ImageColor

            fill = ImageColor.getrgb(fill)
        if isinstance(fill, int):
            fill = (fill, fill, fill) if 0 <= fill < 256 else None
        if (
            isinstance(fill, tuple)
            and len(fill) >= 3
            and all(type(c) is int and 0 <= c < 256 for c in fill[:3])
        ):
            style["color"] = "#{:02x}{:02x}{:02x}".format(*fill[:3])
    except (ValueError, TypeError):
        pass
    return style


def _add_pil_boxes(target, source, offset) -> None:
    """After pasting `source` onto `target` at `offset` (None, (x, y) or a 4-box): carry its text boxes over."""
    mine, theirs = getattr(target, PIL_TEXT, None), getattr(source, PIL_TEXT, None)
    if mine is None:
        return
    try:
        dx, dy = (0, 0) if offset is None else (int(offset[0]), int(offset[1]))
    except (TypeError, ValueError, IndexError):
        theirs = None
    if theirs is None:
        setattr(target, PIL_TEXT, None)
        return
    for record in theirs:
        x0, y0, x1, y1 = record["box"]
        mine.append({**record, "box": [x0 + dx, y0 + dy, x1 + dx, y1 + dy]})
