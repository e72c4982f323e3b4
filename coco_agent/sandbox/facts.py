"""Facts a worker reports (what the program drew, as data), validated on the host: the job controls the
process that measured them, so anything off the schema makes the whole report unknown (None), as for text
boxes. Strings are cleaned and capped, numbers must be finite (or null), lists are capped by the protocol's
limits, boxes are four ints clipped to the picture."""

from __future__ import annotations

import math
from typing import Any

from coco_agent.sandbox.protocol import (
    FACTS_MAX_AXES,
    FACTS_MAX_SERIES,
    FACTS_MAX_STRING,
    FACTS_MAX_TEXTS,
    FACTS_MAX_VALUES,
    FACTS_VERSION,
)

RENDERERS = frozenset({"matplotlib", "pil", "svg", "html", "graphviz", "vega-lite"})
ROLES = frozenset(
    {
        "title",
        "suptitle",
        "xlabel",
        "ylabel",
        "xtick",
        "ytick",
        "legend",
        "legend_title",
        "annotation",
        "text",
    }
)


class Invalid(ValueError):
    """A field off the schema (the whole report is then unknown)."""


def clean_facts(value: object, width: int, height: int) -> dict[str, Any] | None:
    """The validated facts of a picture of ``width`` x ``height``, or None (not reported, or not trusted)."""
    if not isinstance(value, dict) or width <= 0 or height <= 0:
        return None
    try:
        return _facts(value, width, height)
    except (Invalid, TypeError, ValueError, KeyError, OverflowError):
        return None


def _facts(raw: dict, width: int, height: int) -> dict[str, Any]:
    if raw.get("version") != FACTS_VERSION:
        raise Invalid("version")
    renderer = _string(raw.get("renderer"))
    if renderer not in RENDERERS:
        raise Invalid("renderer")
    out: dict[str, Any] = {
        "version": FACTS_VERSION,
        "renderer": renderer,
        "texts": [_text(t, width, height) for t in _list(raw.get("texts"), FACTS_MAX_TEXTS)],
        "axes": [_axes(a) for a in _list(raw.get("axes"), FACTS_MAX_AXES)],
        "pies": [_pie(p) for p in _list(raw.get("pies"), FACTS_MAX_SERIES)],
        "notes": [_string(n) for n in _list(raw.get("notes"), 50)],
        "truncated": _bool(raw.get("truncated", False)),
    }
    if raw.get("title") is not None:
        out["title"] = _string(raw["title"])
    shapes = raw.get("shapes")
    if shapes is not None:
        if not isinstance(shapes, dict) or len(shapes) > 50:
            raise Invalid("shapes")
        out["shapes"] = {_string(k)[:40]: _int(v) for k, v in shapes.items()}
    return out


def _list(value: object, limit: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise Invalid("list")
    return value


def _string(value: object) -> str:
    """A str, valid UTF-8 (lone surrogates replaced), no NUL, capped (as sandbox/base.py's clean_text)."""
    if not isinstance(value, str):
        raise Invalid("string")
    text = value[:FACTS_MAX_STRING].encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _optional_string(value: object) -> str | None:
    return None if value is None else _string(value)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid("number")
    return float(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise Invalid("int")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("bool")
    return value


def _numbers(value: object) -> list[float | None]:
    return [_number(v) for v in _list(value, FACTS_MAX_VALUES)]


def _strings(value: object) -> list[str | None]:
    return [_optional_string(v) for v in _list(value, FACTS_MAX_VALUES)]


def _text(raw: object, width: int, height: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid("text")
    role = _string(raw.get("role", "text"))
    if role not in ROLES:
        raise Invalid("role")
    axes = raw.get("axes")
    if axes is not None:
        axes = _int(axes)
    box = raw.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)):
            raise Invalid("box")
        x0, y0, x1, y1 = (max(0, min(v, limit)) for v, limit in zip(box, (width, height) * 2, strict=True))
        box = [x0, y0, x1, y1] if x0 < x1 and y0 < y1 else None
    return {
        "text": _string(raw.get("text")),
        "role": role,
        "axes": axes,
        "box": box,
        "size": _number(raw.get("size")),
    }


def _axes(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid("axes")
    return {
        "index": _int(raw.get("index", 0)),
        "title": _string(raw.get("title", "")),
        "xlabel": _string(raw.get("xlabel", "")),
        "ylabel": _string(raw.get("ylabel", "")),
        "xticks": [_string(t) for t in _list(raw.get("xticks"), FACTS_MAX_VALUES)],
        "yticks": [_string(t) for t in _list(raw.get("yticks"), FACTS_MAX_VALUES)],
        "legend": [_string(t) for t in _list(raw.get("legend"), FACTS_MAX_VALUES)],
        "bars": [_bars(b) for b in _list(raw.get("bars"), FACTS_MAX_SERIES)],
        "lines": [_points(p, "line") for p in _list(raw.get("lines"), FACTS_MAX_SERIES)],
        "scatters": [_points(p, "scatter") for p in _list(raw.get("scatters"), FACTS_MAX_SERIES)],
        "pies": [_pie(p) for p in _list(raw.get("pies"), FACTS_MAX_SERIES)],
    }


def _bars(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("orientation") not in ("v", "h"):
        raise Invalid("bars")
    values = _numbers(raw.get("values"))
    categories = _strings(raw.get("categories"))
    if categories and len(categories) != len(values):
        raise Invalid("bar categories")
    return {
        "label": _optional_string(raw.get("label")),
        "orientation": raw["orientation"],
        "values": values,
        "positions": _numbers(raw.get("positions")),
        "categories": categories or [None] * len(values),
    }


def _points(raw: object, kind: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid(kind)
    x, y = _numbers(raw.get("x")), _numbers(raw.get("y"))
    if len(x) != len(y):
        raise Invalid(f"{kind} points")
    categories = _strings(raw.get("categories"))
    if categories and len(categories) != len(x):
        raise Invalid(f"{kind} categories")
    return {
        "label": _optional_string(raw.get("label")),
        "x": x,
        "y": y,
        "categories": categories or [None] * len(x),
    }


def _pie(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid("pie")
    fractions = _numbers(raw.get("fractions"))
    labels = _strings(raw.get("labels"))
    if labels and len(labels) != len(fractions):
        raise Invalid("pie labels")
    return {"fractions": fractions, "labels": labels or [None] * len(fractions)}
