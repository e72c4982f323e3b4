"""matplotlib: the program runs as Python; every figure it saves or shows (or leaves open) is captured as PNG.

In the zygote: a writable copy of the baked font cache, CJK glyph fallback, and a warm-up draw so forked jobs
find the caches filled. In each job: savefig/show/backend hooks, the pixel cap on every Agg canvas, and the
pixel boxes of every Text artist drawn in the save that made the PNG, with its string, size, angle and colour.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import sys
import tempfile

from coco_worker import facts, hidden_text
from coco_worker.capture import Capture, Found, name_of
from coco_worker.pixels import Rejected, check_pixels, number
from coco_worker.protocol import MAX_TEXTS
from coco_worker.textboxes import _pixel_box, _same_canvas, png_dimensions

NAME = "matplotlib"
FALLBACKS = ("pil", "svg", "file")  # what else to look for when the program drew no figure
HIDES_TEXT = True  # with hide_text, Text artists draw nothing (and still take their place in the layout)

CJK_FONTS = ["WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP"]


CJK_ALIASES = [
    "SimHei",
    "Microsoft YaHei",
    "SimSun",
    "KaiTi",
    "FangSong",
    "Heiti TC",
    "STHeiti",
    "PingFang SC",
]

MPL_SEED = ""  # the font cache /tmp/mplconfig was copied from (restored after each job)


class Hooks:
    """One job's matplotlib hooks and what they caught."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.figures: list[Found] = []  # (PNG, how, text boxes) at savefig/show
        self._savefig = None
        self._grabbing = None  # the figure the worker itself is saving (text boxes are measured then)
        self._mpl_pass: dict | None = None  # that save's current draw: renderer, canvas size, boxes

    def install(self) -> None:
        """Hook savefig/show/backends, check every Agg canvas against the pixel cap, measure text."""
        try:
            import matplotlib.figure
            import matplotlib.pyplot as plt
        except ImportError:
            return
        cap, job = self.capture, self
        original_savefig = self._savefig = matplotlib.figure.Figure.savefig
        original_use, original_switch = matplotlib.use, plt.switch_backend

        def use(backend, *args, **kwargs):  # headless: any backend request becomes Agg
            return original_use("Agg", *args, **kwargs)

        def switch_backend(newbackend):
            return original_switch("agg")

        def savefig(fig, fname, *args, **kwargs):
            job.grab_figure(fig, f"savefig:{name_of(fname)}", original_savefig, kwargs)
            return original_savefig(fig, fname, *args, **kwargs)

        def show(*args, **kwargs):
            for num in plt.get_fignums():
                job.grab_figure(plt.figure(num), "show", original_savefig, {})

        def figure_show(fig, *args, **kwargs):
            job.grab_figure(fig, "show", original_savefig, {})

        from matplotlib.backends import backend_agg

        original_renderer = backend_agg.RendererAgg.__init__

        @functools.wraps(original_renderer)
        def renderer_init(renderer, width, height, dpi):  # every Agg canvas, whatever asked for it
            check_pixels(width, height, cap.max_pixels, "figure canvas")
            original_renderer(renderer, width, height, dpi)

        backend_agg.RendererAgg.__init__ = renderer_init
        matplotlib.figure.Figure.savefig = savefig
        matplotlib.figure.Figure.show = figure_show
        plt.show = show
        matplotlib.use = use
        plt.switch_backend = switch_backend
        self.install_text_measuring()
        facts.install_matplotlib(self)  # pairs the measured boxes with their texts (coco_worker/facts.py)

    def install_text_measuring(self) -> None:
        """Measure every Text artist drawn while the worker saves a figure, on the renderer of that save.

        A save may draw the figure more than once (bbox_inches="tight" first draws to measure); each draw of
        the grabbed figure starts the list afresh, so the boxes are those of the draw that made the PNG, in its
        pixels (savefig dpi, tight crop and all). Measured inside Text.draw, while subclasses (3-D text,
        wrapped text) still hold the position and string they draw.
        """
        import matplotlib.figure
        import matplotlib.text

        job = self
        original_figure_draw, original_text_draw = matplotlib.figure.Figure.draw, matplotlib.text.Text.draw

        @functools.wraps(original_figure_draw)  # keeps _supports_rasterization and the like
        def figure_draw(fig, renderer, *args, **kwargs):
            if fig is job._grabbing:
                size = getattr(renderer, "get_canvas_width_height", lambda: None)()
                job._mpl_pass = {"renderer": renderer, "size": size, "boxes": [], "texts": [], "bad": False}
            return original_figure_draw(fig, renderer, *args, **kwargs)

        @functools.wraps(original_text_draw)
        def text_draw(text, renderer, *args, **kwargs):
            hide = hidden_text.hiding()  # measured as usual, drawn not at all: the layout stays the same
            result = None if hide else original_text_draw(text, renderer, *args, **kwargs)
            run = job._mpl_pass
            if run is not None and renderer is run["renderer"] and not run["bad"]:
                try:
                    box = _mpl_text_box(text, renderer, run["size"])
                except Exception:
                    box, run["bad"] = None, True
                if box is not None:
                    run["boxes"].append(box)
                    try:
                        run["texts"].append(_mpl_text_record(text, renderer, box))
                    except Exception:
                        run["texts"] = None
                    if run["texts"] is not None and len(run["texts"]) > MAX_TEXTS:
                        run["texts"] = None
            return result

        matplotlib.figure.Figure.draw = figure_draw
        matplotlib.text.Text.draw = text_draw

    def grab_figure(self, fig, how: str, savefig, kwargs: dict) -> None:
        """Save `fig` as PNG the way the program asked (dpi, tight crop), measuring its text on that draw."""
        w, h = fig.get_size_inches()
        dpi = kwargs.get("dpi")
        dpi = fig.dpi if dpi is None or isinstance(dpi, str) else dpi  # "figure": the figure's own
        check_pixels(number(w) * number(dpi), number(h) * number(dpi), self.capture.max_pixels, "figure")
        keep = {k: v for k, v in kwargs.items() if k not in {"format", "metadata", "pil_kwargs", "backend"}}
        buf = io.BytesIO()
        self._grabbing, self._mpl_pass = fig, None
        try:
            try:
                savefig(fig, buf, format="png", **keep)
            except Rejected:
                raise
            except Exception:
                buf, self._mpl_pass = io.BytesIO(), None
                savefig(fig, buf, format="png")
            png, run = buf.getvalue(), self._mpl_pass
        finally:
            self._grabbing, self._mpl_pass = None, None
        boxes, texts, size = None, None, png_dimensions(png)
        if run is not None and not run["bad"] and _same_canvas(run["size"], size):
            boxes = run["boxes"]  # the draw that made this PNG, on a canvas of the PNG's size
            texts = run["texts"]
        facts.note_figure(fig, png, run, boxes is not None)
        self.figures.append((png, how, boxes, {"texts": texts}))

    def open_figures(self) -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None and self._savefig is not None and plt.get_fignums():
            self.grab_figure(plt.gcf(), "open figure", self._savefig, {})

    def found(self, namespace: dict, job_dir: str) -> Found | None:
        """The last figure saved or shown, else the current open figure."""
        if not self.figures:
            self.open_figures()
        return self.figures[-1] if self.figures else None


def preload(full_warm_up: bool = True) -> None:
    """Import and warm up matplotlib in the zygote (before any fork)."""
    setup_matplotlib(full_warm_up)


def restore_scratch() -> None:
    """After the scratch space was wiped: the writable font cache copy again."""
    mpl = os.environ.get("MPLCONFIGDIR", "")
    if MPL_SEED and mpl:
        shutil.copytree(MPL_SEED, mpl)


def setup_matplotlib(full_warm_up: bool = True) -> None:
    """Writable copy of the baked font cache; CJK glyph fallback; warm font and text caches before any fork."""
    baked = os.environ.get("MPLCONFIGDIR")
    seed = os.environ.pop("COCO_MPL_SEED", "")  # a font cache to start from (process sandbox)
    if not seed and baked and os.path.isdir(baked) and not os.access(baked, os.W_OK):
        seed = baked  # the image's cache sits on the read-only root: matplotlib needs a writable copy
    if seed and os.path.isdir(seed):
        copy = os.path.join(tempfile.gettempdir(), "mplconfig")
        shutil.copytree(seed, copy, dirs_exist_ok=True)
        os.environ["MPLCONFIGDIR"] = copy
        global MPL_SEED
        MPL_SEED = seed
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.font_manager as fm
    import matplotlib.pyplot as plt

    plt.switch_backend("agg")  # resolve the backend now, not in every child
    entries = {f.name: f for f in fm.fontManager.ttflist}
    cjk = next((entries[name] for name in CJK_FONTS if name in entries), None)
    if cjk is not None:
        # Programs written for Windows/macOS ask for these by name: serve them the CJK font we have.
        for alias in CJK_ALIASES:
            if alias not in entries:
                fm.fontManager.ttflist.append(dataclasses.replace(cjk, name=alias))
        # Glyph fallback (matplotlib >= 3.6): Latin from the default font, CJK from the CJK font.
        for rc in (matplotlib.rcParams, matplotlib.rcParamsDefault):
            rc["font.family"] = list(rc["font.family"]) + [cjk.name]
        _cjk_last_resort(fm, cjk.fname)
    if full_warm_up:
        _warm_up(plt)
    else:  # one job only: warm what every job needs, nothing it might not
        fig = plt.figure(figsize=(1, 1), dpi=10)
        fig.text(0.1, 0.5, "Ag 1.0 中文")
        fig.canvas.draw()
        plt.close(fig)
        _drop_open_fonts()


def _cjk_last_resort(fm, path: str) -> None:
    """Put the CJK font at the end of every font list matplotlib resolves, so CJK text keeps its glyphs even in
    programs that set their own family ("serif", "monospace", ``font.family = "sans-serif"``): a generic family
    resolves to one font, and without this those programs draw tofu boxes."""
    manager = fm.fontManager
    find = getattr(manager, "_find_fonts_by_props", None)  # matplotlib >= 3.6 (the image has 3.6.3)
    if find is None:
        return

    def find_with_cjk(prop, *args, **kwargs):
        paths = find(prop, *args, **kwargs)
        return paths if path in paths else [*paths, path]

    manager._find_fonts_by_props = find_with_cjk


def _warm_up(plt) -> None:
    """Draw once what most charts use (fonts, mathtext, legends, colour maps, 3-D axes, PNG and PDF), so each
    forked job finds these caches filled instead of filling them again and losing them when it exits."""
    fig = plt.figure(figsize=(4, 3), dpi=40)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot([0, 1], [0, 1], "o-", label="line")
    ax.bar([0, 1], [1, 2], label="bar", hatch="//")
    ax.scatter([0, 1], [1, 0], c=[0, 1], cmap="viridis")
    ax.set_title("Ag 1.0 中文", fontweight="bold", fontsize=14)
    ax.set_xlabel(r"$\alpha^2_i$ (%)", fontstyle="italic")
    ax.legend(title="Legend")
    ax.grid(True)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    ax3.plot([0, 1], [0, 1], [0, 1])
    fig.tight_layout()
    for fmt in ("png", "pdf"):  # most programs also save a PDF (ChartMimic: all): load that backend too
        fig.savefig(io.BytesIO(), format=fmt)
    plt.close(fig)
    _drop_open_fonts()


def _drop_open_fonts() -> None:
    """Free every FT2Font the warm-up left cached: each holds an open font file, and a forked job closes all
    inherited fds, so a cached font would read from a closed (or the job's own) fd and crash the job."""
    import gc

    import matplotlib.font_manager as fm
    import matplotlib.mathtext as mathtext

    fm._get_font.cache_clear()
    parse = getattr(mathtext.MathTextParser, "_parse_cached", None)
    if parse is not None and hasattr(parse, "cache_clear"):
        parse.cache_clear()
    gc.collect()


def _mpl_text_record(text, renderer, box: list[int]) -> dict:
    """The string a Text artist drew in `box`, its size in pixels, angle and colour (the editable deliverable)."""
    from matplotlib.colors import to_hex

    string = (
        text._get_wrapped_text()
        if text.get_wrap() and hasattr(text, "_get_wrapped_text")
        else text.get_text()
    )
    return {
        "text": str(string),
        "box": list(box),
        "container": None,
        "font_px": round(float(renderer.points_to_pixels(text.get_fontsize())), 2),
        "rotation": round(float(text.get_rotation()), 2),
        "color": to_hex(text.get_color()),
    }


def _mpl_text_box(text, renderer, size) -> list[int] | None:
    """Pixel box (top-left origin) of a Text artist just drawn on `renderer`; None when it draws nothing."""
    if not text.get_visible() or not str(text.get_text()).strip() or size is None:
        return None
    if text.get_wrap() and hasattr(text, "_cm_set") and hasattr(text, "_get_wrapped_text"):
        with text._cm_set(text=text._get_wrapped_text()):
            bbox = text.get_window_extent(renderer)
    else:
        bbox = text.get_window_extent(renderer)
    clip = text.get_clip_box() if text.get_clip_on() else None
    if clip is not None:
        from matplotlib.transforms import Bbox

        bbox = Bbox.intersection(bbox, clip)
        if bbox is None:  # clipped away entirely
            return None
    height = size[1]
    x0, y0, x1, y1 = bbox.extents  # display coordinates: origin bottom-left
    return _pixel_box(x0, height - y1, x1, height - y0)
