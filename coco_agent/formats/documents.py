"""What the document formats share (html, graphviz, vega-lite): finding one in an answer without fences."""

from __future__ import annotations

import re
from collections.abc import Callable


def unfenced_between(start: re.Pattern, end: str, what: str) -> Callable[[str], tuple[str, str]]:
    """An unfenced finder: from the first match of `start` to the last `end` after it (linear: one search each)."""

    def find(text: str) -> tuple[str, str]:
        first = start.search(text)
        last = text.rfind(end) if first else -1
        if not first or last < first.start():
            return "", f"the model's answer contained no {what}"
        return text[first.start() : last + len(end)].strip(), ""

    return find
