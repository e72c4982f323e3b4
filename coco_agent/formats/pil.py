"""PIL: a Python program that draws with Pillow (posters, cards, pixel-exact layouts)."""

from __future__ import annotations

import re

from coco_agent.formats.python_code import python_format

# Leading blanks but not newlines: "^\s*" matched from every line start across a run of blank lines (quadratic)
_PIL_IMPORT = re.compile(r"^[^\S\n]*(from\s+PIL\b|import\s+PIL\b)", re.M)
_MPL_IMPORT = re.compile(r"^[^\S\n]*(from\s+matplotlib\b|import\s+matplotlib\b)", re.M)


def imports_pil_only(code: str, filename: str = "") -> bool:
    """Code that imports PIL but not matplotlib."""
    return bool(_PIL_IMPORT.search(code)) and not _MPL_IMPORT.search(code)


FORMAT = python_format(
    "pil", "a Python program drawing with Pillow (posters, cards, pixel layouts)", imports_pil_only
)
