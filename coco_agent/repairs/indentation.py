"""Indentation: a program pasted with a uniform indent, or with tabs mixed into spaces, still parses."""

from __future__ import annotations

import re
import textwrap

from coco_agent.repairs.record import Repair
from coco_agent.repairs.source import parses

_LEADING_TABS = re.compile(r"(?m)^[ \t]+")


def _expand_leading(code: str, width: int) -> str:
    return _LEADING_TABS.sub(lambda m: m.group(0).expandtabs(width), code)


def _dedent_after_first(code: str) -> str:
    first, _, rest = code.partition("\n")
    return first.strip() + "\n" + textwrap.dedent(rest) if rest else code


CANDIDATES = (
    ("dedent", "the program was uniformly indented (pasted from a list or a quote)", textwrap.dedent),
    ("tabs", "tabs were mixed with spaces; leading tabs became 4 spaces", lambda c: _expand_leading(c, 4)),
    ("tabs", "tabs were mixed with spaces; leading tabs became 8 spaces", lambda c: _expand_leading(c, 8)),
    (
        "dedent",
        "every line but the first was indented",
        lambda c: _dedent_after_first(c),
    ),
    (
        "tabs+dedent",
        "tabs mixed with spaces and a uniform indent",
        lambda c: textwrap.dedent(_expand_leading(c, 4)),
    ),
)


def repair_indentation(code: str) -> tuple[str, list[Repair]]:
    """Only when the program does not parse and one of the candidate fixes makes it parse."""
    if parses(code):
        return code, []
    for label, why, fix in CANDIDATES:
        fixed = fix(code)
        if fixed != code and parses(fixed):
            line = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(code.splitlines(), fixed.splitlines(), strict=False), 1)
                    if a != b
                ),
                1,
            )
            before = code.splitlines()[line - 1] if code.splitlines() else ""
            after = fixed.splitlines()[line - 1] if fixed.splitlines() else ""
            return fixed, [Repair("indentation", line, before.strip("\n"), after, f"{label}: {why}")]
    return code, []
