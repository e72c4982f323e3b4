"""HTML: one self-contained HTML/CSS document (inline JS allowed) drawn by headless Chromium in the sandbox
(posters, slides, menus, signs, cards, infographics, page mock-ups: text wrapping, flow layout, typography)."""

from __future__ import annotations

import re

from coco_agent.formats.documents import unfenced_between
from coco_agent.formats.record import DraftFormat

_START = re.compile(r"<!doctype html|<html\b", re.IGNORECASE)


def is_html(code: str, filename: str = "") -> bool:
    """An .html/.htm file name, or text that starts as an HTML document."""
    head = code.lstrip("\ufeff \t\r\n")[:200].lower()
    return filename.lower().endswith((".html", ".htm")) or head.startswith(("<!doctype html", "<html"))


FORMAT = DraftFormat(
    name="html",
    summary="one self-contained HTML/CSS page in headless Chromium (posters, slides, menus, cards, pages)",
    code_file="code.html",
    suffix=".html",
    fence="html",
    fences=("html", "htm"),
    lexer="html",
    python=False,
    sniff=is_html,
    unfenced=unfenced_between(_START, "</html>", "HTML document (<html> ... </html>)"),
    service="html",
    pids=256,
    cpus=2.0,  # Chromium's browser, renderer and compositor work in parallel: at 1 CPU a page takes 1.7x as long
    text_layers=True,
)
