"""Call repairs: legend locations, and keyword arguments a matplotlib function or method does not take."""

from __future__ import annotations

import ast
import difflib
import functools
import re

from coco_agent.repairs.knowledge import Target, known_anywhere, lookup
from coco_agent.repairs.record import MAX_LOOKUPS, Repair
from coco_agent.repairs.source import Edit, Source, apply_edits, call_name, nodes, string_literal

LEGEND_LOCS = [
    "best",
    "upper right",
    "upper left",
    "lower left",
    "lower right",
    "right",
    "center left",
    "center right",
    "lower center",
    "upper center",
    "center",
]
_LOC_WORDS = {"top": "upper", "bottom": "lower", "middle": "center", "centre": "center", "centered": "center"}
_LOC_SETS = {frozenset(loc.split()): loc for loc in LEGEND_LOCS}
_LOC_SETS |= {
    frozenset({"left"}): "center left",
    frozenset({"upper"}): "upper center",
    frozenset({"lower"}): "lower center",
    frozenset({"right", "center"}): "center right",
    frozenset({"left", "center"}): "center left",
}
# renames that difflib would not find (or would find wrongly)
KEYWORD_ALIASES = {"b": "visible", "colour": "color", "colours": "colors", "font_size": "fontsize"}


def nearest_legend_loc(value: str) -> str:
    """The nearest legend location: "upper middle" -> "upper center"; "best" when nothing is close."""
    words = re.sub(r"[_\-]+", " ", value.strip().lower()).split()
    words = [_LOC_WORDS.get(w, w) for w in words]
    key = frozenset(words)
    if key in _LOC_SETS:
        return _LOC_SETS[key]
    close = difflib.get_close_matches(" ".join(words), LEGEND_LOCS, n=1, cutoff=0.75)
    return close[0] if close else "best"


def _is_legend(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute | ast.Name) and call_name(call.func).split(".")[-1] == "legend"


def repair_legend_locations(code: str, tree: ast.Module) -> tuple[str, list[Repair]]:
    """``legend(loc=...)`` with a location matplotlib does not know; "outside ..." (matplotlib >= 3.7) is kept."""
    source = Source(code)
    edits: list[Edit] = []
    repairs: list[Repair] = []
    for call in (n for n in nodes(tree) if isinstance(n, ast.Call) and _is_legend(n)):
        for kw in call.keywords:
            if kw.arg != "loc" or not isinstance(kw.value, ast.Constant):
                continue
            value = kw.value.value
            if isinstance(value, str):
                if value.strip().lower() in LEGEND_LOCS or value.strip().lower().startswith("outside"):
                    continue
                new = nearest_legend_loc(value)
                edit = string_literal(source, kw.value, new)
                before = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                if isinstance(value, int) and 0 <= value <= 10:
                    continue
                new, before = "best", source.text(kw.value)
                edit = Edit(*source.span(kw.value), repr(new))
            else:
                continue
            if edit is None:
                continue
            edits.append(edit)
            why = f"{before!r} is not a legend location; nearest valid location: {new!r}"
            repairs.append(Repair("legend_loc", kw.value.lineno, str(before), new, why))
    return apply_edits(code, edits), repairs


class _Receivers(ast.NodeVisitor):
    """Which names hold pyplot, a Figure or an Axes (from the imports and assignments the program makes)."""

    FIG_CALLS = frozenset({"figure", "gcf"})
    AX_CALLS = frozenset(
        {"subplot", "gca", "axes", "add_subplot", "add_axes", "twinx", "twiny", "inset_axes"}
    )

    def __init__(self, tree: ast.Module) -> None:
        self.pyplot: set[str] = set()
        self.figures: set[str] = set()
        self.axes: set[str] = set()
        self.axes_arrays: set[str] = set()
        for node in nodes(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "matplotlib.pyplot" and alias.asname:
                        self.pyplot.add(alias.asname)
            elif isinstance(node, ast.ImportFrom) and node.module == "matplotlib":
                for alias in node.names:
                    if alias.name == "pyplot":
                        self.pyplot.add(alias.asname or "pyplot")
        for _ in range(2):  # twice: an assignment may use a name bound further down the file (in a loop)
            for node in nodes(tree):
                if isinstance(node, ast.Assign):
                    self.assign(node.targets, node.value)
                elif isinstance(node, ast.For):
                    self.loop(node)

    def made_by(self, value: ast.expr) -> str | None:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            attr = value.func.attr
            if attr == "subplots":
                return "subplots"
            if attr in self.FIG_CALLS:
                return "figure"
            if attr in self.AX_CALLS:
                return "axes"
        if isinstance(value, ast.Subscript) and self.kind(value.value) == "axes":
            return "axes"
        return None

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        made = self.made_by(value)
        for target in targets:
            if made == "subplots" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                fig, ax = target.elts
                if isinstance(fig, ast.Name):
                    self.figures.add(fig.id)
                if isinstance(ax, ast.Name):
                    self.axes_arrays.add(ax.id)
                    self.axes.add(ax.id)
            elif isinstance(target, ast.Name) and made in ("figure", "axes"):
                (self.figures if made == "figure" else self.axes).add(target.id)

    def loop(self, node: ast.For) -> None:
        names = {n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)}
        if not names & (self.axes_arrays | self.axes):
            return
        for target in ast.walk(node.target):
            if isinstance(target, ast.Name) and target.id.startswith("ax"):
                self.axes.add(target.id)

    def kind(self, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            if expr.id in self.pyplot:
                return "pyplot"
            if expr.id in self.figures:
                return "figure"
            if expr.id in self.axes or expr.id in self.axes_arrays or re.fullmatch(r"ax\d*|ax_\w+", expr.id):
                return "axes"
        if isinstance(expr, ast.Subscript) and self.kind(expr.value) == "axes":
            return "axes"
        return None


def _drop_edit(source: Source, call: ast.Call, kw: ast.keyword) -> Edit:
    """Remove ``kw`` with the comma that separates it from its neighbour (comments on other lines survive)."""
    items = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    index = items.index(kw)
    start, end = source.span(kw)
    if index > 0:
        start = source.span(items[index - 1])[1]
    elif index + 1 < len(items):
        end = source.span(items[index + 1])[0]
    else:
        rest = source.code[end:]
        stripped = rest.lstrip()
        if stripped.startswith(","):
            end += len(rest) - len(stripped) + 1
    return Edit(start, end, "")


@functools.lru_cache(maxsize=4096)
def _rename(kwarg: str, target: Target) -> str | None:
    alias = KEYWORD_ALIASES.get(kwarg) or kwarg.replace("colour", "color")
    if alias != kwarg and target.accepts(alias):
        return alias
    close = difflib.get_close_matches(kwarg, sorted(target.candidates()), n=1, cutoff=0.8)
    return close[0] if close else None


def repair_keywords(code: str, tree: ast.Module) -> tuple[str, list[Repair]]:
    """Keywords a known pyplot function / Figure / Axes method would reject: renamed when close, else dropped.

    Conservative: a keyword is touched only when the call's target is certain (``plt.x``, a name bound from
    ``plt.subplots``/``plt.figure``/``fig.add_subplot``..., or named ``ax...``) and when matplotlib knows no
    parameter or artist property of that name anywhere (a hallucinated or misspelt name). A real name in the
    wrong place (``set_xlim(color=...)``) is left to the sandbox and `repair_from_error`.
    """
    receivers = _Receivers(tree)
    source = Source(code)
    edits: list[Edit] = []
    repairs: list[Repair] = []
    looked_up: set[tuple[str, Target]] = set()  # at most MAX_LOOKUPS: the rest stay as written
    for call in (n for n in nodes(tree) if isinstance(n, ast.Call)):
        if not isinstance(call.func, ast.Attribute):
            continue
        kind = receivers.kind(call.func.value)
        if kind not in ("pyplot", "figure", "axes"):
            continue
        target = lookup(kind, call.func.attr)
        if target is None:
            continue
        for kw in call.keywords:
            if kw.arg is None or target.accepts(kw.arg):
                continue
            if known_anywhere(kw.arg):  # maybe valid in another version, or forwarded: left to the sandbox
                continue
            if (kw.arg, target) not in looked_up:
                if len(looked_up) >= MAX_LOOKUPS:
                    continue
                looked_up.add((kw.arg, target))
            name = f"{call_name(call.func)}()"
            new = _rename(kw.arg, target)
            if new and not any(k.arg == new for k in call.keywords):
                start = source.offset(kw.lineno, kw.col_offset)
                edits.append(Edit(start, start + len(kw.arg), new))
                why = f"{name} takes no keyword {kw.arg!r}; renamed to the close valid {new!r}"
                repairs.append(Repair("keyword", kw.lineno, kw.arg, new, why))
            else:
                edits.append(_drop_edit(source, call, kw))
                why = f"{name} takes no keyword {kw.arg!r}" + (
                    f"; {new!r} is already given, dropped" if new else " and no valid name is close; dropped"
                )
                repairs.append(Repair("keyword", kw.lineno, source.text(kw), "", why))
    return apply_edits(code, edits), repairs
