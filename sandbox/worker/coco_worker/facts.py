"""Facts: what the program drew, as data, reported beside the picture (the host checks the prompt's numbers,
labels and strings against them, with no judge model: coco_agent/facts/).

- matplotlib: per axes the title, axis labels, tick labels, legend entries, bar series (values, categories,
  orientation, series label), line and scatter points, pie wedges (fractions, labels); every text drawn
  (titles, ticks, legends, annotations, figure texts) with its role and its pixel box in the PNG.
- PIL: every ImageDraw text call (string, font size, box on the image when known), pie slices and rectangles.
- SVG: every <text> (tspans joined), the <title>, and how many shapes of each kind.

Read-only and last: facts are taken after the save that made the PNG, from the objects as they were drawn,
and any failure leaves them unknown (null), never a failed job or a changed picture. Capped (FACTS_BYTES);
the host validates them again (the job controls this process: coco_agent/sandbox/facts.py).
"""

from __future__ import annotations

import functools
import json
import math

from coco_worker.protocol import (
    FACTS_BYTES,
    FACTS_MAX_AXES,
    FACTS_MAX_SERIES,
    FACTS_MAX_STRING,
    FACTS_MAX_TEXTS,
    FACTS_MAX_VALUES,
    FACTS_VERSION,
)

ENABLED = [True]  # the job's "facts" limit (child.py sets it before the program runs)
_BY_PNG: dict[
    int, tuple[bytes, dict]
] = {}  # facts of each captured PNG (kept with the bytes: ids stay valid)


def keep(png: bytes, facts: dict | None) -> None:
    """Remember the facts of a PNG the capture may return."""
    if facts is not None and png:
        _BY_PNG[id(png)] = (png, facts)


def for_png(png: bytes) -> dict | None:
    """The facts of the PNG being returned, capped to FACTS_BYTES (None: unknown)."""
    held = _BY_PNG.get(id(png))
    if held is None or held[0] is not png:
        return None
    return capped(held[1])


def _s(value) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:FACTS_MAX_STRING]


def _num(value):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _nums(values) -> list:
    out = []
    for value in list(values)[:FACTS_MAX_VALUES]:
        out.append(_num(value))
    return out


def capped(facts: dict) -> dict | None:
    """The facts, trimmed until their JSON fits FACTS_BYTES (series and texts shortened, then dropped)."""
    try:
        size = len(json.dumps(facts))
        for keep_values, keep_texts in ((200, 300), (50, 100), (10, 30), (0, 0)):
            if size <= FACTS_BYTES:
                return facts
            facts = _trimmed(facts, keep_values, keep_texts)
            size = len(json.dumps(facts))
        return facts if size <= FACTS_BYTES else None
    except Exception:
        return None


def _trimmed(facts: dict, values: int, texts: int) -> dict:
    out = dict(facts, truncated=True)
    out["texts"] = list(facts.get("texts") or [])[:texts]
    axes = []
    for ax in facts.get("axes") or []:
        ax = dict(ax)
        for kind in ("bars", "lines", "scatters", "pies"):
            series = []
            for item in ax.get(kind) or []:
                item = dict(item)
                for key in ("values", "categories", "x", "y", "fractions", "labels"):
                    if isinstance(item.get(key), list):
                        item[key] = item[key][:values]
                series.append(item)
            ax[kind] = series
        for key in ("xticks", "yticks", "legend"):
            ax[key] = list(ax.get(key) or [])[:texts]
        axes.append(ax)
    out["axes"] = axes
    return out


# --------------------------------------------------------------------------------------------- matplotlib


def install_matplotlib(job) -> None:
    """Pair each text box the matplotlib hooks measure with its Text artist (``job._mpl_pass["artists"]``):
    Text.draw wrapped outside their measuring wrapper, reading the box it just added."""
    import matplotlib.text

    measured_draw = matplotlib.text.Text.draw

    @functools.wraps(measured_draw)
    def text_draw(text, renderer, *args, **kwargs):
        run = job._mpl_pass
        before = len(run["boxes"]) if run is not None else 0
        result = measured_draw(text, renderer, *args, **kwargs)
        run = job._mpl_pass
        if run is not None and len(run["boxes"]) == before + 1:
            run.setdefault("artists", []).append((text, run["boxes"][-1]))
        return result

    matplotlib.text.Text.draw = text_draw


def note_figure(fig, png: bytes, run: dict | None, boxes_valid: bool) -> None:
    """After the save that made ``png``: the figure's facts (text boxes only when they are the PNG's)."""
    if not ENABLED[0]:
        return
    try:
        pairs = ((run or {}).get("artists") or []) if boxes_valid else []
        boxes = {id(artist): (artist, box) for artist, box in pairs}
        keep(png, figure_facts(fig, boxes))
    except Exception:
        return


def figure_facts(fig, boxes: dict) -> dict:
    """The facts of one matplotlib figure (see the module docstring)."""
    facts: dict = {"version": FACTS_VERSION, "renderer": "matplotlib", "texts": [], "axes": [], "notes": []}
    texts = facts["texts"]
    seen: set[int] = set()

    def text(artist, role: str, axes: int | None = None) -> str | None:
        if id(artist) in seen:
            return None
        seen.add(id(artist))
        try:
            if artist is None or not artist.get_visible():
                return None
            value = str(artist.get_text())
        except Exception:
            return None
        if not value.strip():
            return None
        if len(texts) < FACTS_MAX_TEXTS:
            held = boxes.get(id(artist))
            box = held[1] if held is not None and held[0] is artist else None
            texts.append({"text": _s(value), "role": role, "axes": axes, "box": box})
        return _s(value)

    text(getattr(fig, "_suptitle", None), "suptitle")
    for extra in getattr(fig, "texts", []):
        text(extra, "text")
    for legend in getattr(fig, "legends", []):
        for entry in legend.get_texts():
            text(entry, "legend")
    for index, ax in enumerate(fig.axes):
        if index >= FACTS_MAX_AXES:
            facts["notes"].append(f"only the first {FACTS_MAX_AXES} axes are reported")
            break
        try:
            facts["axes"].append(_axes_facts(ax, index, text))
        except Exception as exc:
            facts["notes"].append(f"axes {index}: {type(exc).__name__}")
    return facts


def _tick_table(axis) -> list[tuple[float, str]]:
    """(position, label) of an axis's major ticks that have a label."""
    table = []
    try:
        locs = list(axis.get_majorticklocs())
        labels = [t.get_text() for t in axis.get_majorticklabels()]
    except Exception:
        return table
    for loc, label in zip(locs, labels, strict=False):
        value = _num(loc)
        if value is not None and str(label).strip():
            table.append((value, _s(label)))
    return table


def _category(value, table: list[tuple[float, str]]):
    """The tick label at a data position: the nearest tick within half the tick spacing, else None."""
    if value is None or not table:
        return None
    if len(table) == 1:
        spacing = 1.0
    else:
        positions = sorted(p for p, _ in table)
        spacing = (
            min(b - a for a, b in zip(positions, positions[1:], strict=False) if b > a)
            if len(set(positions)) > 1
            else 1.0
        )
    best = min(table, key=lambda item: abs(item[0] - value))
    return best[1] if abs(best[0] - value) < spacing / 2 else None


def _label(artist) -> str | None:
    label = str(artist.get_label() or "")
    return None if not label or label.startswith("_") else _s(label)


def _axes_facts(ax, index: int, text) -> dict:
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer
    from matplotlib.patches import Wedge

    xticks, yticks = _tick_table(ax.xaxis), _tick_table(ax.yaxis)
    out: dict = {
        "index": index,
        "title": text(ax.title, "title", index) or "",
        "xlabel": text(ax.xaxis.label, "xlabel", index) or "",
        "ylabel": text(ax.yaxis.label, "ylabel", index) or "",
        "xticks": [label for _, label in xticks][:FACTS_MAX_VALUES],
        "yticks": [label for _, label in yticks][:FACTS_MAX_VALUES],
        "bars": [],
        "lines": [],
        "scatters": [],
        "pies": [],
        "legend": [],
    }
    for side in ("_left_title", "_right_title"):
        extra = text(getattr(ax, side, None), "title", index)
        if extra and not out["title"]:
            out["title"] = extra
    for tick in ax.xaxis.get_majorticklabels():
        text(tick, "xtick", index)
    for tick in ax.yaxis.get_majorticklabels():
        text(tick, "ytick", index)
    legend = ax.get_legend()
    if legend is not None:
        text(legend.get_title(), "legend_title", index)
        out["legend"] = [v for v in (text(t, "legend", index) for t in legend.get_texts()) if v]
    for extra in ax.texts:
        text(extra, "annotation", index)
    for container in ax.containers:
        if not isinstance(container, BarContainer) or len(out["bars"]) >= FACTS_MAX_SERIES:
            continue
        out["bars"].append(_bar_series(container, xticks, yticks))
    for line in ax.get_lines()[:FACTS_MAX_SERIES]:
        if not line.get_visible():
            continue
        points = line.get_xydata()[:FACTS_MAX_VALUES]
        xs = [_num(p[0]) for p in points]
        out["lines"].append(
            {
                "label": _label(line),
                "x": xs,
                "y": [_num(p[1]) for p in points],
                "categories": [_category(x, xticks) for x in xs],
            }
        )
    for collection in ax.collections:
        if not isinstance(collection, PathCollection) or len(out["scatters"]) >= FACTS_MAX_SERIES:
            continue
        offsets = collection.get_offsets()[:FACTS_MAX_VALUES]
        out["scatters"].append(
            {
                "label": _label(collection),
                "x": [_num(p[0]) for p in offsets],
                "y": [_num(p[1]) for p in offsets],
            }
        )
    pies: dict = {}
    for patch in ax.patches:
        if isinstance(patch, Wedge) and patch.get_visible():
            key = (round(float(patch.center[0]), 6), round(float(patch.center[1]), 6))
            pies.setdefault(key, []).append(patch)
    for wedges in list(pies.values())[:FACTS_MAX_SERIES]:
        fractions = []
        for wedge in wedges[:FACTS_MAX_VALUES]:
            sweep = (float(wedge.theta2) - float(wedge.theta1)) % 360.0
            fractions.append(_num(sweep / 360.0 if sweep else 1.0))
        out["pies"].append({"fractions": fractions, "labels": [_label(w) for w in wedges[:FACTS_MAX_VALUES]]})
    return out


def _bar_series(container, xticks, yticks) -> dict:
    horizontal = getattr(container, "orientation", "vertical") == "horizontal"
    values = getattr(container, "datavalues", None)
    patches = list(container.patches)[:FACTS_MAX_VALUES]
    positions, sizes = [], []
    for patch in patches:
        if horizontal:
            positions.append(_num(patch.get_y() + patch.get_height() / 2))
            sizes.append(_num(patch.get_width()))
        else:
            positions.append(_num(patch.get_x() + patch.get_width() / 2))
            sizes.append(_num(patch.get_height()))
    table = yticks if horizontal else xticks
    return {
        "label": _label(container),
        "orientation": "h" if horizontal else "v",
        "values": _nums(values) if values is not None else sizes,
        "positions": positions,
        "categories": [_category(p, table) for p in positions],
    }


# --------------------------------------------------------------------------------------------- PIL

_PIL_CALLS: list[dict] = []  # this job's drawing calls: text, pieslice, rectangle


def install_pil(image_text_attr: str) -> None:
    """Record ImageDraw text, pie slice and rectangle calls (outside the text-box wrapper, reading the box it
    just added to the image's list ``image_text_attr``)."""
    from PIL import ImageDraw

    draw_cls = ImageDraw.ImageDraw

    def wrap_text(original):
        @functools.wraps(original)
        def text(draw, *args, **kwargs):
            image = getattr(draw, "_image", None)
            known = getattr(image, image_text_attr, None)
            before = len(known) if isinstance(known, list) else -1
            result = original(draw, *args, **kwargs)
            if ENABLED[0] and len(_PIL_CALLS) < FACTS_MAX_TEXTS:
                try:
                    value = kwargs.get("text", args[1] if len(args) > 1 else None)
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    if value is not None and str(value).strip():
                        after = getattr(image, image_text_attr, None)
                        last = after[-1] if isinstance(after, list) and len(after) == before + 1 else None
                        box = last.get("box") if isinstance(last, dict) else last  # a {text, box} record
                        font = kwargs.get("font", args[3] if len(args) > 3 else None)
                        size = _num(getattr(font, "size", None))
                        _PIL_CALLS.append(
                            {"kind": "text", "text": _s(value), "size": size, "box": box, "image": id(image)}
                        )
                except Exception:
                    pass
            return result

        return text

    def wrap_shape(original, kind: str):
        @functools.wraps(original)
        def shape(draw, *args, **kwargs):
            result = original(draw, *args, **kwargs)
            if ENABLED[0] and len(_PIL_CALLS) < FACTS_MAX_TEXTS:
                try:
                    call = {"kind": kind, "image": id(getattr(draw, "_image", None))}
                    if kind == "pieslice":
                        call["start"] = _num(kwargs.get("start", args[1] if len(args) > 1 else None))
                        call["end"] = _num(kwargs.get("end", args[2] if len(args) > 2 else None))
                    _PIL_CALLS.append(call)
                except Exception:
                    pass
            return result

        return shape

    draw_cls.text = wrap_text(draw_cls.text)
    draw_cls.multiline_text = wrap_text(draw_cls.multiline_text)
    draw_cls.pieslice = wrap_shape(draw_cls.pieslice, "pieslice")
    draw_cls.rectangle = wrap_shape(draw_cls.rectangle, "rectangle")


def note_pil(image, png: bytes) -> None:
    """The facts of the PIL image being returned: every text the job drew (boxes only for those drawn on this
    very image), its pie slices and a count of rectangles."""
    if not ENABLED[0]:
        return
    try:
        mine = id(image)
        texts = [
            {
                "text": c["text"],
                "role": "text",
                "size": c["size"],
                "box": c["box"] if c["image"] == mine else None,
            }
            for c in _PIL_CALLS
            if c["kind"] == "text"
        ]
        slices = [c for c in _PIL_CALLS if c["kind"] == "pieslice" and c["image"] == mine]
        fractions = []
        for c in slices[:FACTS_MAX_VALUES]:
            if c["start"] is None or c["end"] is None:
                fractions.append(None)
            else:
                sweep = (c["end"] - c["start"]) % 360.0
                fractions.append(sweep / 360.0 if sweep else 1.0)
        facts = {
            "version": FACTS_VERSION,
            "renderer": "pil",
            "texts": texts[:FACTS_MAX_TEXTS],
            "axes": [],
            "pies": [{"fractions": fractions, "labels": [None] * len(fractions)}] if fractions else [],
            "shapes": {
                "rectangle": sum(1 for c in _PIL_CALLS if c["kind"] == "rectangle" and c["image"] == mine)
            },
            "notes": [],
        }
        keep(png, facts)
    except Exception:
        return


# --------------------------------------------------------------------------------------------- SVG

SVG_SHAPES = ("rect", "circle", "ellipse", "line", "polyline", "polygon", "path")


def note_svg(source, png: bytes) -> None:
    """The facts of an SVG document: its texts (tspans joined), its title, a count of each shape. A document
    with a DOCTYPE or entities is not parsed here (facts unknown)."""
    if not ENABLED[0]:
        return
    try:
        keep(png, svg_facts(source))
    except Exception:
        return


def svg_facts(source) -> dict | None:
    import xml.etree.ElementTree as ET

    data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        return None
    root = ET.fromstring(data)
    texts, shapes, title = [], dict.fromkeys(SVG_SHAPES, 0), ""
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if tag == "text" and len(texts) < FACTS_MAX_TEXTS:
            value = " ".join("".join(element.itertext()).split())
            if value:
                texts.append(
                    {"text": _s(value), "role": "text", "size": _num(element.get("font-size")), "box": None}
                )
        elif tag == "title" and not title:
            title = _s(" ".join("".join(element.itertext()).split()))
        elif tag in shapes:
            shapes[tag] += 1
    return {
        "version": FACTS_VERSION,
        "renderer": "svg",
        "texts": texts,
        "axes": [],
        "title": title,
        "shapes": shapes,
        "notes": [],
    }
