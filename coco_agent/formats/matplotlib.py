"""matplotlib: a Python program that draws with matplotlib (the default; charts and plots)."""

from __future__ import annotations

from coco_agent.formats.python_code import python_format

# the default: whatever no other format claims
FORMAT = python_format(
    "matplotlib", "a Python program drawing with matplotlib (charts, plots)", lambda code, name: False
)
