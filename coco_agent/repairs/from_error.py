"""Error-driven repair: one targeted fix named by the sandbox's traceback, so it costs a rerun, not a round.

The static repairs know only the host's matplotlib and stay conservative; the sandbox's own error is exact
(``legend(reverse=True)`` on matplotlib 3.6, ``set_xlim(color=...)``, a colour computed at run time).
"""

from __future__ import annotations

import ast
import re

from coco_agent.repairs.calls import _drop_edit, _Receivers, _rename, nearest_legend_loc
from coco_agent.repairs.colours import nearest_mpl_colour, nearest_pil_colour
from coco_agent.repairs.knowledge import lookup
from coco_agent.repairs.record import Repair, RepairResult
from coco_agent.repairs.source import (
    Edit,
    Source,
    apply_edits,
    call_name,
    nodes,
    parse,
    parses,
    string_literal,
)

# "<string>", "<frozen runpy>"...: a name of bounded length, so a line of 'File "<' repeated scans in linear time
PROGRAM_FILE = re.compile(r'File "(?:program\.py|<[^>\n]{0,200}>)", line (\d+)')
BAD_KEYWORD = re.compile(
    r"(?:got an unexpected keyword argument|has no property|unexpected keyword argument) '(\w+)'"
)
BAD_LOC = re.compile(r"'([^'\n]*)' is not a valid value for loc")
BAD_COLOUR = re.compile(
    r"(?:Invalid RGBA argument: |unknown color specifier: |)'([^'\n]{1,60})' is not a valid color value"
    r"|Invalid RGBA argument: '([^'\n]{1,60})'|unknown color specifier: '([^'\n]{1,60})'"
)


def _error_line(error: str) -> int | None:
    lines = PROGRAM_FILE.findall(error)
    return int(lines[-1]) if lines else None


def _calls_on(tree: ast.Module, line: int) -> list[ast.Call]:
    """Calls whose source spans ``line``, innermost first."""
    calls = [
        n for n in nodes(tree) if isinstance(n, ast.Call) and n.lineno <= line <= (n.end_lineno or n.lineno)
    ]
    return sorted(calls, key=lambda c: (c.end_lineno or c.lineno) - c.lineno)


def repair_error(code: str, error: str) -> RepairResult:
    """Fix what the error names, on the line it names; unchanged when unsure."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return RepairResult(code)
    line = _error_line(error)
    source = Source(code)
    for fix in (_keyword, _legend_loc, _colour):
        found = fix(source, tree, error, line)
        if found:
            edits, repairs = found
            new_code = apply_edits(code, edits)
            if new_code != code and parses(new_code):
                return RepairResult(new_code, repairs)
    return RepairResult(code)


def _keyword(source: Source, tree: ast.Module, error: str, line: int | None):
    match = BAD_KEYWORD.search(error)
    if not match or line is None:
        return None
    name = match.group(1)
    receivers = _Receivers(tree)
    for call in _calls_on(tree, line):
        kw = next((k for k in call.keywords if k.arg == name), None)
        if kw is None:
            continue
        target = None
        if isinstance(call.func, ast.Attribute):
            kind = receivers.kind(call.func.value)
            target = lookup(kind, call.func.attr) if kind in ("pyplot", "figure", "axes") else None
        label = f"{call_name(call.func)}()"
        new = _rename(name, target) if target else None
        if new and new != name and not any(k.arg == new for k in call.keywords):
            start = source.offset(kw.lineno, kw.col_offset)
            why = f"the sandbox rejected keyword {name!r} of {label}; renamed to the close valid {new!r}"
            return [Edit(start, start + len(name), new)], [Repair("keyword", kw.lineno, name, new, why)]
        why = f"the sandbox rejected keyword {name!r} of {label} ({match.group(0)}); dropped"
        return [_drop_edit(source, call, kw)], [Repair("keyword", kw.lineno, source.text(kw), "", why)]
    return None


def _legend_loc(source: Source, tree: ast.Module, error: str, line: int | None):
    match = BAD_LOC.search(error)
    if not match or line is None:
        return None
    for call in _calls_on(tree, line):
        for kw in call.keywords:
            if kw.arg == "loc" and isinstance(kw.value, ast.Constant) and kw.value.value == match.group(1):
                value = kw.value.value
                new = nearest_legend_loc(re.sub(r"^\s*outside\s+", "", value))
                edit = string_literal(source, kw.value, new)
                if edit:
                    why = f"the sandbox rejected legend location {value!r}; nearest valid location: {new!r}"
                    return [edit], [Repair("legend_loc", kw.value.lineno, value, new, why)]
    return None


def _colour(source: Source, tree: ast.Module, error: str, line: int | None):
    match = BAD_COLOUR.search(error)
    if not match:
        return None
    value = next(g for g in match.groups() if g is not None)
    pil = "unknown color specifier" in match.group(0)
    new = nearest_pil_colour(value) if pil else nearest_mpl_colour(value)
    literals = [n for n in nodes(tree) if isinstance(n, ast.Constant) and n.value == value]
    literals.sort(key=lambda n: (n.lineno != line, n.lineno))  # the failing line first
    edits, repairs = [], []
    for node in literals:
        edit = string_literal(source, node, new) if new else None
        if edit:
            edits.append(edit)
            why = f"the sandbox rejected colour {value!r}; closest valid colour: {new!r}"
            repairs.append(Repair("colour", node.lineno, value, new, why))
    return (edits, repairs) if edits else None
