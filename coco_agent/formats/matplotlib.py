"""matplotlib: a Python program that draws with matplotlib (the default; charts and plots)."""

from __future__ import annotations

from coco_agent.formats.python_code import PYTHON_FENCES, unfenced_python
from coco_agent.formats.record import DraftFormat

FORMAT = DraftFormat(
    name="matplotlib",
    summary="a Python program drawing with matplotlib (charts, plots)",
    code_file="code.py",
    suffix=".py",
    fence="python",
    fences=PYTHON_FENCES,
    lexer="python",
    python=True,
    sniff=lambda code, filename: False,  # the default: whatever no other format claims
    unfenced=unfenced_python,
)
