"""Colour names: a string in a colour position that matplotlib (or PIL) would reject becomes the closest name."""

from __future__ import annotations

import ast
import difflib
import functools
import re
import threading

from coco_agent.repairs.record import MAX_LOOKUPS, Repair
from coco_agent.repairs.source import Edit, Source, apply_edits, call_name, nodes, string_literal

FALLBACK = "gray"
# keyword arguments (and dict keys, e.g. bbox=dict(facecolor=...)) whose strings are matplotlib colours
_MPL_KEYS = (
    "color c colors facecolor facecolors edgecolor edgecolors fc ec ecolor markerfacecolor mfc markeredgecolor "
    "mec markerfacecoloralt mfcalt labelcolor backgroundcolor grid_color node_color edge_color font_color"
)
MPL_KEYS = frozenset(_MPL_KEYS.split())
PIL_KEYS = frozenset({"fill", "outline"})
# strings some colour arguments accept besides colours
SPECIAL = frozenset({"none", "face", "auto", "inherit", "linecolor", "markerfacecolor", "markeredgecolor"})
SPECIAL |= {"mfc", "mec"}
_NAME_WORDS = frozenset({"color", "colors", "colour", "colours", "clr", "clrs"})
_NOT_COLOUR_WORDS = (
    "map maps cmap cmaps palette scheme mode name names label labels key keys by column col cols bar"
)
_NOT_COLOURS = frozenset(_NOT_COLOUR_WORDS.split())
_GREY_LEVEL = re.compile(r"^gr[ae]y(\d{1,3})$")


@functools.cache
def _mpl_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(compact CSS4 + base names -> name, xkcd name with spaces -> 'xkcd:name')."""
    from matplotlib import colors as mcolors

    css = {n.replace(" ", ""): n for n in mcolors.CSS4_COLORS}
    for full in ("blue", "green", "red", "cyan", "magenta", "yellow", "black", "white"):  # the base colours
        css.setdefault(full, full)
    xkcd = {n[len("xkcd:") :]: n for n in mcolors.XKCD_COLORS}
    return css, xkcd


def mpl_valid(value: str) -> bool:
    from matplotlib import colors as mcolors

    return value.strip().lower() in SPECIAL or mcolors.is_color_like(value)


def pil_valid(value: str) -> bool:
    from PIL import ImageColor

    try:
        ImageColor.getrgb(value)
    except (ValueError, AttributeError):
        return False
    return True


def _normal(value: str) -> str:
    value = value.strip().lower().removeprefix("xkcd:")
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", value)).strip()


# matchers hold the word being compared: one set per thread (a batch runs nodes in threads)
_LOCAL = threading.local()


def _matchers(names: tuple[str, ...]) -> list[difflib.SequenceMatcher]:
    """One matcher per colour name with the name as its second sequence (its index built once, not per word)."""
    cache = getattr(_LOCAL, "matchers", None)
    if cache is None:
        cache = _LOCAL.matchers = {}
    if names not in cache:
        cache[names] = [difflib.SequenceMatcher(None, "", name) for name in names]
    return cache[names]


def _fuzzy(word: str, names: tuple[str, ...], cutoff: float) -> str | None:
    """The name most similar to ``word`` (difflib ratio >= cutoff, then the closest length), else None.

    Exactly ``max`` of ``SequenceMatcher(None, word, name).ratio()`` over the names, but a name is compared in
    full only when difflib's cheap upper bounds (lengths, then letter counts) could still beat the best so far,
    and a word too long to reach the cutoff against the longest name is not compared at all.
    """
    # ratio <= 2 len(name) / (len(word) + len(name)): a word this long is below the cutoff against every name
    if not word or len(word) > _longest(names) * (2 / cutoff - 1):
        return None
    best, best_key = None, (cutoff, 0)
    for matcher in _matchers(names):
        matcher.set_seq1(word)
        if matcher.real_quick_ratio() < best_key[0] or matcher.quick_ratio() < best_key[0]:
            continue
        name = matcher.b
        ratio = matcher.ratio()
        # prefer the higher ratio, then the name whose length is closest
        key = (ratio, -abs(len(name) - len(word)))
        if ratio >= cutoff and key > best_key:
            best, best_key = name, key
    return best


@functools.cache
def _longest(names: tuple[str, ...]) -> int:
    return max(map(len, names))


def _strip_number(word: str) -> str:
    """``re.sub(r"\\s*\\d+$", "", word)`` for a word without newlines, in linear time (that regex retried from
    every digit of a long run of digits)."""
    end = len(word)
    while end and word[end - 1].isdecimal():
        end -= 1
    return word if end == len(word) else word[:end].rstrip()


def nearest_mpl_colour(value: str, *, fallback: str | None = FALLBACK) -> str | None:
    """The closest matplotlib colour for an invalid one ("lightgreen2" -> "lightgreen"), else ``fallback``."""
    css, xkcd = _mpl_tables()
    norm = _normal(value)
    if value.strip().startswith("#"):
        digits = re.sub(r"[^0-9a-fA-F]", "", value)
        return "#" + digits[:6].lower() if len(digits) >= 6 else fallback
    level = _GREY_LEVEL.match(norm.replace(" ", ""))
    if level and int(level.group(1)) <= 100:
        return str(int(level.group(1)) / 100)
    for word in dict.fromkeys([norm, _strip_number(norm)]):
        if not word:
            continue
        compact = word.replace(" ", "")
        if compact in css:
            return css[compact]
        for spelling in dict.fromkeys([word, word.replace("gray", "grey")]):
            if spelling in xkcd:
                return xkcd[spelling]
    compact = norm.replace(" ", "")
    name = _fuzzy(compact, tuple(css), 0.8)
    if name:
        return css[name]
    name = _fuzzy(norm, tuple(xkcd), 0.8)
    if name:
        return xkcd[name]
    name = _fuzzy(compact, tuple(css), 0.7)
    return css[name] if name else fallback


def nearest_pil_colour(value: str, *, fallback: str | None = FALLBACK) -> str | None:
    """The closest PIL ``ImageColor`` name for an invalid one, else ``fallback``."""
    from PIL import ImageColor

    if value.strip().startswith("#"):
        digits = re.sub(r"[^0-9a-fA-F]", "", value)
        return "#" + digits[:6].lower() if len(digits) >= 6 else fallback
    compact = re.sub(r"[\s_\-]+", "", value.strip().lower())
    for word in dict.fromkeys([compact, _strip_number(compact)]):
        if word in ImageColor.colormap:
            return word
    return _fuzzy(compact, tuple(ImageColor.colormap), 0.7) or fallback


def _is_colour_name(name: str) -> bool:
    """A variable whose name says it holds colours (``colors``, ``bar_colors``), not a colormap or labels."""
    words = set(re.split(r"_+", name.lower()))
    if words & _NOT_COLOURS:
        return False
    return bool(words & _NAME_WORDS) or name.lower().endswith(("colors", "colours"))


def _pyplot_like(call: ast.Call) -> bool:
    """pandas-style calls (``df.plot.scatter(c="col")``, ``data=``) use strings as column names."""
    if any(k.arg == "data" for k in call.keywords):
        return False
    return "plot" not in call_name(call.func).split(".")[:-1]


class _Finder(ast.NodeVisitor):
    """Collect (string node, domain) for every string literal in a colour position."""

    def __init__(self, tree: ast.Module) -> None:
        self.found: dict[int, tuple[ast.Constant, str]] = {}
        self.assigned: dict[str, list[ast.expr]] = {}
        for node in nodes(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.assigned.setdefault(node.target.id, []).append(node.value)
        self.names_seen: set[str] = set()

    def strings(self, value: ast.expr, domain: str, depth: int = 0) -> None:
        if depth > 4:
            return
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            self.found.setdefault(id(value), (value, domain))
        elif isinstance(value, ast.List | ast.Tuple | ast.Set):
            for elt in value.elts:
                self.strings(elt, domain, depth + 1)
        elif isinstance(value, ast.Dict):
            for item in value.values:
                self.strings(item, domain, depth + 1)
        elif isinstance(value, ast.IfExp):
            self.strings(value.body, domain, depth + 1)
            self.strings(value.orelse, domain, depth + 1)
        elif isinstance(value, ast.ListComp):
            self.strings(value.elt, domain, depth + 1)
        elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mult | ast.Add):
            self.strings(value.left, domain, depth + 1)
            self.strings(value.right, domain, depth + 1)
        elif isinstance(value, ast.Subscript):
            self.strings(value.value, domain, depth + 1)
        elif isinstance(value, ast.Name):
            self.variable(value.id, domain, depth)

    def variable(self, name: str, domain: str, depth: int = 0) -> None:
        if (name, domain) in self.names_seen:
            return
        self.names_seen.add((name, domain))  # type: ignore[arg-type]
        for value in self.assigned.get(name, []):
            self.strings(value, domain, depth + 1)

    def visit_Call(self, node: ast.Call) -> None:
        name = call_name(node.func)
        image_new = name.endswith("Image.new") or name == "new"
        for kw in node.keywords:
            if kw.arg in MPL_KEYS and not image_new:
                if kw.arg == "c" and not _pyplot_like(node):
                    continue
                self.strings(kw.value, "mpl")
            elif kw.arg in PIL_KEYS or (image_new and kw.arg == "color"):
                self.strings(kw.value, "pil")
        if image_new and len(node.args) >= 3:
            self.strings(node.args[2], "pil")
        if name.split(".")[-1] == "plot" and _pyplot_like(node) and not name.startswith(("df", "pd")):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    self.found.setdefault(id(arg), (arg, "fmt"))
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in MPL_KEYS and key.value != "c":
                self.strings(value, "mpl")
        self.generic_visit(node)


def _valid_fmt(value: str) -> bool:
    try:
        from matplotlib.axes._base import _process_plot_format

        _process_plot_format(value)
    except ValueError:
        return False
    except Exception:  # a private helper: if it moved, say valid (never repair on doubt)
        return True
    return True


def repair_colours(code: str, tree: ast.Module) -> tuple[str, list[Repair]]:
    """Replace invalid colour strings in colour arguments (and in variables named for colours) in place."""
    finder = _Finder(tree)
    finder.visit(tree)
    for name in finder.assigned:
        if _is_colour_name(name):
            finder.variable(name, "mpl")
    source = Source(code)
    edits: list[Edit] = []
    repairs: list[Repair] = []
    looked_up: dict[tuple[str, str], str | None] = {}  # at most MAX_LOOKUPS: the rest stay as written
    for node, domain in sorted(finder.found.values(), key=lambda f: (f[0].lineno, f[0].col_offset)):
        value = node.value
        if domain == "mpl" and not mpl_valid(value):
            nearest, why = nearest_mpl_colour, f"{value!r} is not a matplotlib colour"
        elif domain == "pil" and not (pil_valid(value) or mpl_valid(value) and pil_valid(value.lower())):
            nearest, why = nearest_pil_colour, f"{value!r} is not a PIL colour name"
        elif domain == "fmt" and not _valid_fmt(value) and re.fullmatch(r"[A-Za-z][\w \-]{2,}", value):
            nearest = functools.partial(nearest_mpl_colour, fallback=None)
            why = f"{value!r} is neither a plot format string nor a colour"
        else:
            continue
        if (domain, value) not in looked_up:
            if len(looked_up) >= MAX_LOOKUPS:
                continue
            looked_up[domain, value] = nearest(value)
        new = looked_up[domain, value]
        if not new or new == value:
            continue
        edit = string_literal(source, node, new)
        if edit is None:
            continue
        edits.append(edit)
        why += f"; closest valid colour: {new!r}" if new != FALLBACK else f"; no close name, using {new!r}"
        repairs.append(Repair("colour", node.lineno, value, new, why))
    return apply_edits(code, edits), repairs
