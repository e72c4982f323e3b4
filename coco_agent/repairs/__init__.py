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
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from coco_agent.repairs.source import parse, parses


@dataclass(frozen=True)
class Repair:
    """One change: what kind, on which line, the text before and after, and why."""

    kind: str  # indentation | colour | legend_loc | keyword
    line: int
    before: str
    after: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"line {self.line}: {self.kind} {self.before!r} -> {self.after!r}"


@dataclass
class RepairResult:
    """The repaired program (``code`` equals the input when ``repairs`` is empty)."""

    code: str
    repairs: list[Repair] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.repairs)


Pass = Callable[[str, ast.Module], tuple[str, list[Repair]]]


def repair_code(code: str, fmt: str = "matplotlib") -> RepairResult:
    """Run every repair over a program; SVG (and anything that still does not parse) comes back unchanged."""
    if fmt == "svg":
        return RepairResult(code)
    try:
        return _repair_code(code)
    except (RecursionError, MemoryError):  # deeply nested source: ast.parse or a visitor ran out of stack
        return RepairResult(code)


def _repair_code(code: str) -> RepairResult:
    from coco_agent.repairs.calls import repair_keywords, repair_legend_locations
    from coco_agent.repairs.colours import repair_colours
    from coco_agent.repairs.indentation import repair_indentation

    repairs: list[Repair] = []
    code, fixed = repair_indentation(code)
    repairs += fixed
    passes: list[Pass] = [repair_keywords, repair_legend_locations, repair_colours]
    for step in passes:
        try:
            tree = parse(code)
        except (SyntaxError, ValueError):
            break
        new_code, fixed = step(code, tree)
        if fixed and parses(new_code):
            code, repairs = new_code, repairs + fixed
    return RepairResult(code, sorted(repairs, key=lambda r: r.line))


def repair_from_error(code: str, error: str, fmt: str = "matplotlib") -> RepairResult:
    """One targeted repair named by a failed run's traceback; unchanged when the error is not one we know."""
    if fmt == "svg":
        return RepairResult(code)
    from coco_agent.repairs.from_error import repair_error

    try:
        return repair_error(code, error)
    except (RecursionError, MemoryError):  # deeply nested source: ast.parse or a visitor ran out of stack
        return RepairResult(code)


__all__ = ["Repair", "RepairResult", "repair_code", "repair_from_error"]
