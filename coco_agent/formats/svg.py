"""SVG: a vector document rendered by cairosvg (icons, diagrams, flat illustrations)."""

from __future__ import annotations

import re

from coco_agent.formats.record import DraftFormat

_XML_DECL = re.compile(r"<\?xml", re.IGNORECASE)
_SVG_OPEN = re.compile(r"<svg\b", re.IGNORECASE)
_SVG_CLOSE = re.compile(r"</svg>", re.IGNORECASE)
_SPACE = re.compile(r"\s*")


def is_svg(code: str, filename: str = "") -> bool:
    """An .svg file name, or text that starts as SVG or XML."""
    head = code.lstrip("\ufeff \t\r\n")[:200].lower()
    return filename.lower().endswith(".svg") or head.startswith(("<svg", "<?xml"))


def bare_svg(text: str) -> str:
    """The first ``(<?xml ...>\\s*)?<svg ...>...</svg>`` in ``text`` (case-insensitive), or ``""``, in linear time.

    Same match as that regex's ``search``, without its retry from every ``<svg`` and every ``<?xml`` up to the
    end of the text when nothing closes.
    """
    first = _SVG_OPEN.search(text)
    if not first:
        return ""
    last_close = -1
    for close in _SVG_CLOSE.finditer(text, first.end()):
        last_close = close.start()
    if last_close < 0:
        return ""  # no </svg> after the first <svg, so none after any later one either
    start, svg_at = first.start(), first.start()
    gt, tried = -2, -2  # the first '>' after the current "<?xml" (-1: none), the last '>' already tried
    for decl in _XML_DECL.finditer(text, 0, first.start()):  # a declaration before it may start the match
        if gt != -1 and gt < decl.end():
            gt = text.find(">", decl.end())  # searched from beyond the last '>' found: linear in all
        if gt == -1:
            break  # no '>' after this declaration, so none after any later one
        if gt == tried:
            continue  # same '>' as the last declaration: same (failed) outcome
        tried = gt
        opening = _SVG_OPEN.match(text, _SPACE.match(text, gt + 1).end())
        if opening and opening.end() <= last_close:
            start, svg_at = decl.start(), opening.start()
            break
    close = _SVG_CLOSE.search(text, svg_at + 4)
    return text[start : close.end()] if close else ""


def unfenced_svg(text: str) -> tuple[str, str]:
    svg = bare_svg(text).strip()
    return svg, "" if svg else "the model's answer contained no SVG (no <svg ...> ... </svg>)"


FORMAT = DraftFormat(
    name="svg",
    summary="an SVG document (icons, diagrams, flat illustrations)",
    code_file="code.svg",
    suffix=".svg",
    fence="svg",
    fences=("svg", "xml"),
    lexer="xml",
    python=False,
    sniff=is_svg,
    unfenced=unfenced_svg,
    text_layers=True,
)
