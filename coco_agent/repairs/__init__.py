"""CoCo-style repairs of a drawing program before it runs: small, certain fixes that need no model round.

Pure functions over the source text. The untrusted program is parsed with ``ast`` and never executed here;
edits are made by source position, so formatting and comments survive. Each change is a `Repair` record.
Repairs (matplotlib / PIL programs; SVG is left as it is):

- indentation: a uniformly indented program is dedented, tabs mixed with spaces made consistent (only when
  the original does not parse and the repaired one does);
- colours: a colour string that neither matplotlib nor PIL would accept becomes the closest valid name;
- legend locations: ``legend(loc="upper middle")`` becomes "upper center", a bad numeric code "best";
- keyword arguments a matplotlib function or method does not take are renamed to a close valid name or dropped.

`repair_from_error` does one targeted fix from a sandbox traceback (a keyword, a colour, a legend location
named in the error), for what the static pass could not know (the sandbox's matplotlib may be older).

Bounded work on hostile programs: a program over `MAX_REPAIR_CHARS` runs as written (parsing and walking it
on the host would cost more than a second), a pass looks up at most `MAX_LOOKUPS` distinct misspellings
(each a difflib search over hundreds of names), and the error text's regexes are linear.
"""

from __future__ import annotations

import ast
import functools

from coco_agent import formats
from coco_agent.repairs.record import MAX_LOOKUPS, MAX_REPAIR_CHARS, Pass, Repair, RepairResult
from coco_agent.repairs.source import parse

__all__ = [
    "MAX_LOOKUPS",
    "MAX_REPAIR_CHARS",
    "Pass",
    "Repair",
    "RepairResult",
    "repair_code",
    "repair_from_error",
]


def repair_code(code: str, fmt: str = "matplotlib") -> RepairResult:
    """Run every repair over a program; a format the Python repairs do not apply to (SVG), and anything that
    still does not parse, comes back unchanged."""
    if not formats.get(fmt).python:
        return RepairResult(code)
    if len(code) > MAX_REPAIR_CHARS:
        return RepairResult(code, note=_too_long(code))
    try:
        return _repair_code(code)
    except (RecursionError, MemoryError):  # deeply nested source: ast.parse or a visitor ran out of stack
        return RepairResult(code)


def _too_long(code: str) -> str:
    return f"the program has {len(code):,} characters, over the {MAX_REPAIR_CHARS:,} that repairs parse on the host"


def _repair_code(code: str) -> RepairResult:
    from coco_agent.repairs.calls import repair_keywords, repair_legend_locations
    from coco_agent.repairs.colours import repair_colours
    from coco_agent.repairs.indentation import repair_indentation

    repairs: list[Repair] = []
    tree: ast.Module | None = None
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        code, repairs = repair_indentation(code)
    passes: list[Pass] = [repair_keywords, repair_legend_locations, repair_colours]
    for step in passes:
        if tree is None:  # parsed once, and again only after a pass changed the program
            try:
                tree = parse(code)
            except (SyntaxError, ValueError):
                break
        new_code, fixed = step(code, tree)
        if not fixed:
            continue
        try:
            new_tree = parse(new_code)
        except (SyntaxError, ValueError):
            continue
        code, tree, repairs = new_code, new_tree, repairs + fixed
    return RepairResult(code, sorted(repairs, key=lambda r: r.line))


def repair_from_error(code: str, error: str, fmt: str = "matplotlib") -> RepairResult:
    """One targeted repair named by a failed run's traceback; unchanged when the error is not one we know (or
    the format is not Python)."""
    if not formats.get(fmt).python:
        return RepairResult(code)
    if len(code) > MAX_REPAIR_CHARS:
        return RepairResult(code, note=_too_long(code))
    return _repair_from_error(code, error)


@functools.lru_cache(maxsize=4)  # execute asks whether a repair applies, then the repair node makes it
def _repair_from_error(code: str, error: str) -> RepairResult:
    from coco_agent.repairs.from_error import repair_error

    try:
        return repair_error(code, error)
    except (RecursionError, MemoryError):  # deeply nested source: ast.parse or a visitor ran out of stack
        return RepairResult(code)


__all__ = ["MAX_LOOKUPS", "MAX_REPAIR_CHARS", "Repair", "RepairResult", "repair_code", "repair_from_error"]
