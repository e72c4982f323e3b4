"""The draft formats, in one table. Adding a format = one record module here and one line in FORMATS (and the
name in FormatName), one renderer module in the worker (sandbox/worker/coco_worker/renderers/), one prompt
file (prompts/format_<name>.md). tests/formats/test_formats.py keeps the type, this table, the worker's renderer
table and the prompt files equal.

Everything that knows about formats asks here: context validation, CLI choices, extraction (codeblocks),
write_code, the repairs, the report, `coco render --format auto` and the sandbox benchmark.
"""

from __future__ import annotations

from typing import Literal

from coco_agent.formats import graphviz, html, matplotlib, pil, svg, vegalite
from coco_agent.formats.record import DraftFormat

FormatName = Literal["matplotlib", "pil", "svg", "html", "graphviz", "vega-lite"]
FORMATS: dict[str, DraftFormat] = {
    record.name: record
    for record in (matplotlib.FORMAT, pil.FORMAT, svg.FORMAT, html.FORMAT, graphviz.FORMAT, vegalite.FORMAT)
}
DEFAULT = "matplotlib"
GUESS_ORDER = (
    "html",
    "svg",
    "vega-lite",
    "graphviz",
    "pil",
)  # sniffed in this order; nothing claimed: DEFAULT

__all__ = ["DEFAULT", "FORMATS", "DraftFormat", "FormatName", "by_code_file", "get", "guess", "names"]


def names() -> tuple[str, ...]:
    """Every format's name, in table order (CLI choices)."""
    return tuple(FORMATS)


def get(name: str) -> DraftFormat:
    """The record of `name`; ValueError naming the choices for an unknown one."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def guess(code: str, filename: str = "") -> str:
    """The format a program evidently is (its file name or text), else DEFAULT."""
    return next((name for name in GUESS_ORDER if FORMATS[name].sniff(code, filename)), DEFAULT)


def by_code_file(file_name: str) -> DraftFormat | None:
    """The (first) format whose attempts keep their program under this file name."""
    return next((f for f in FORMATS.values() if f.code_file == file_name), None)


def code_files() -> tuple[str, ...]:
    """Every distinct program file name an attempt folder may hold."""
    return tuple(dict.fromkeys(f.code_file for f in FORMATS.values()))


def suffixes() -> tuple[str, ...]:
    """Every distinct program file suffix (benchmark corpora)."""
    return tuple(dict.fromkeys(f.suffix for f in FORMATS.values()))
