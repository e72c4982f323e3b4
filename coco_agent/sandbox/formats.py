"""Guess a program's drawing format from its file name and text."""

from __future__ import annotations

import re

from coco_agent.sandbox.base import Format

# Leading blanks but not newlines: "^\s*" matched from every line start across a run of blank lines (quadratic)
_PIL_IMPORT = re.compile(r"^[^\S\n]*(from\s+PIL\b|import\s+PIL\b)", re.M)
_MPL_IMPORT = re.compile(r"^[^\S\n]*(from\s+matplotlib\b|import\s+matplotlib\b)", re.M)


def guess_format(code: str, filename: str = "") -> Format:
    """svg for .svg files or SVG/XML text; pil for code importing PIL but not matplotlib; else matplotlib."""
    head = code.lstrip("\ufeff \t\r\n")[:200].lower()
    if filename.lower().endswith(".svg") or head.startswith(("<svg", "<?xml")):
        return "svg"
    if _PIL_IMPORT.search(code) and not _MPL_IMPORT.search(code):
        return "pil"
    return "matplotlib"
