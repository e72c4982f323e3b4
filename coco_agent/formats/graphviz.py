"""Graphviz: a DOT graph laid out by Debian's `dot` (flowcharts, trees, state machines, org charts)."""

from __future__ import annotations

import re

from coco_agent.formats.record import DraftFormat

_GRAPH = re.compile(r"^[^\S\n]*(strict\s+)?(di)?graph\b[^{\n]*\{", re.IGNORECASE | re.MULTILINE)


def is_dot(code: str, filename: str = "") -> bool:
    """A .dot/.gv file name, or text that starts as a DOT graph."""
    head = code.lstrip("\ufeff \t\r\n")[:200]
    return filename.lower().endswith((".dot", ".gv")) or bool(_GRAPH.match(head))


def unfenced_dot(text: str) -> tuple[str, str]:
    """From the first `digraph`/`graph ... {` line to the last closing brace."""
    first = _GRAPH.search(text)
    last = text.rfind("}") if first else -1
    if not first or last < first.end():
        return "", "the model's answer contained no DOT graph (digraph { ... })"
    return text[first.start() : last + 1].strip(), ""


FORMAT = DraftFormat(
    name="graphviz",
    summary="a DOT graph laid out by Graphviz (flowcharts, trees, state machines, org charts)",
    code_file="code.dot",
    suffix=".dot",
    fence="dot",
    fences=("dot", "graphviz", "gv"),
    lexer="dot",
    python=False,
    sniff=is_dot,
    unfenced=unfenced_dot,
)
