"""Vega-Lite: a JSON chart spec rendered by vl-convert (no browser): bar, line, scatter, area and layered charts."""

from __future__ import annotations

import json

from coco_agent.formats.record import DraftFormat

_MARKERS = ('"mark"', '"$schema"', '"layer"', '"vconcat"', '"hconcat"', '"facet"', '"repeat"')


def is_vega_lite(code: str, filename: str = "") -> bool:
    """A .vl.json file name, or a JSON object naming the Vega-Lite schema."""
    head = code.lstrip("\ufeff \t\r\n")[:400]
    return filename.lower().endswith((".vl.json", ".vl")) or (head.startswith("{") and "vega-lite" in head)


def unfenced_spec(text: str) -> tuple[str, str]:
    """The answer's outermost {...} when it parses as a JSON object that looks like a chart spec."""
    first, last = text.find("{"), text.rfind("}")
    if first < 0 or last < first:
        return "", "the model's answer contained no Vega-Lite JSON spec ({ ... })"
    candidate = text[first : last + 1]
    try:
        value = json.loads(candidate)
    except (ValueError, RecursionError):
        return "", "the model's answer holds no valid JSON object (a Vega-Lite spec)"
    if not isinstance(value, dict) or not any(marker in candidate for marker in _MARKERS):
        return "", 'the model\'s answer holds JSON, but not a Vega-Lite spec (no "mark" or "layer")'
    return candidate.strip(), ""


FORMAT = DraftFormat(
    name="vega-lite",
    summary="a Vega-Lite JSON spec rendered by vl-convert (charts, no browser)",
    code_file="code.vl.json",
    suffix=".vl.json",
    fence="json",
    fences=("json", "vega-lite", "vegalite", "vl"),
    lexer="json",
    python=False,
    sniff=is_vega_lite,
    unfenced=unfenced_spec,
    service="vega-lite",
    pids=128,
)
