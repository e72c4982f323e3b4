"""Source positions and text edits: repairs change only the characters they mean to (comments survive)."""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import warnings
from dataclasses import dataclass

_LINE = re.compile(r"[^\n\r]*(?:\r\n|\n|\r)|[^\n\r]+\Z")
_STRING = re.compile(r"(?s)\A([rRuU]?)('''|\"\"\"|'|\")(.*)\2\Z")


@dataclass(frozen=True)
class Edit:
    """Replace ``code[start:end]`` with ``text`` (character offsets)."""

    start: int
    end: int
    text: str


class Source:
    """A program's text with ast positions (1-based lines, UTF-8 byte columns) mapped to character offsets."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.lines = _LINE.findall(code)
        self.starts: list[int] = []
        self._byte_ends: dict[int, list[int]] = {}
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        if line.isascii():  # one byte per character
            return self.starts[lineno - 1] + min(col, len(line))
        ends = self._byte_ends.get(lineno)
        if ends is None:  # once per line: a long line with many edits stays linear
            ends = self._byte_ends[lineno] = list(itertools.accumulate(map(_utf8_len, line)))
        return self.starts[lineno - 1] + bisect.bisect_right(ends, col)  # characters wholly before byte col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.code[start:end]


def _utf8_len(char: str) -> int:
    return 1 if char < "\x80" else 2 if char < "\u0800" else 3 if char < "\U00010000" else 4


def string_literal(source: Source, node: ast.Constant, value: str) -> Edit | None:
    """An edit that puts ``value`` into the string literal ``node``, keeping its quotes; None if not simple."""
    start, end = source.span(node)
    match = _STRING.match(source.code[start:end])
    if not match:  # implicit concatenation, bytes, or something unexpected
        return None
    prefix, quote, body = match.groups()
    if "\\" in body or "\\" in value or quote[0] in value or "\n" in value:
        return None
    return Edit(start, end, f"{prefix}{quote}{value}{quote}")


def apply_edits(code: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (overlapping ones after the first are skipped)."""
    out: list[str] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            continue
        out.append(code[pos : edit.start])
        out.append(edit.text)
        pos = edit.end
    out.append(code[pos:])
    return "".join(out)


def parse(code: str) -> ast.Module:
    """``ast.parse`` without the program's warnings (invalid escapes...) reaching the host's stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


def nodes(tree: ast.Module) -> list[ast.AST]:
    """``list(ast.walk(tree))``, walked once per tree: the passes read it several times and never change it."""
    found = tree.__dict__.get("_coco_nodes")
    if found is None:
        found = tree.__dict__["_coco_nodes"] = list(ast.walk(tree))
    return found


def parses(code: str) -> bool:
    try:
        parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def call_name(func: ast.expr) -> str:
    """``plt.legend`` -> "plt.legend", ``axs[0].plot`` -> "axs[].plot", anything else its dotted best effort."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return f"{call_name(func.value)}.{func.attr}"
    if isinstance(func, ast.Subscript):
        return f"{call_name(func.value)}[]"
    if isinstance(func, ast.Call):
        return f"{call_name(func.func)}()"
    return "?"
