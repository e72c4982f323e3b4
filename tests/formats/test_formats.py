"""The format registry is the one place that knows the draft formats: the type, the table, the worker's renderer
table and the prompt files agree, and every consumer asks the registry."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from coco_agent import formats
from coco_agent.context import RunContext
from coco_agent.paths import shipped_dir
from coco_agent.sandbox import base
from coco_agent.sandbox.bundle import worker_bundle


def worker_renderers() -> list[str]:
    """The worker's renderer table, read in a fresh interpreter from the bundle (as the sandbox runs it)."""
    code = "from coco_worker.renderers import RENDERERS; print(' '.join(RENDERERS))"
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-B",
            "-c",
            f"import sys; sys.path.insert(0, {str(worker_bundle())!r}); {code}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_type_registry_and_worker_agree():
    assert get_args(formats.FormatName) == formats.names() == tuple(worker_renderers())
    assert base.Format is formats.FormatName
    assert formats.DEFAULT in formats.FORMATS and set(formats.GUESS_ORDER) <= set(formats.FORMATS)


@pytest.mark.parametrize("name", formats.names())
def test_every_format_has_its_record_and_prompt(name: str):
    record = formats.get(name)
    assert record.name == name and record.summary and record.code_file.endswith(record.suffix)
    assert record.fence in record.fences
    assert (shipped_dir("prompts") / f"{record.prompt}.md").is_file()
    assert formats.by_code_file(record.code_file) is not None


def test_unknown_formats_name_the_choices():
    with pytest.raises(ValueError, match="choose one of matplotlib, pil, svg"):
        formats.get("html5")
    with pytest.raises(ValueError, match="choose one of matplotlib, pil, svg"):
        RunContext(format="vega").validate()


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        ("<svg xmlns='http://www.w3.org/2000/svg'/>", "a.txt", "svg"),
        ("<?xml version='1.0'?><svg/>", "", "svg"),
        ("from PIL import Image\nimg = Image.new('RGB', (4, 4))", "", "pil"),
        ("import numpy as np", "x.py", "matplotlib"),
    ],
)
def test_guess(code: str, name: str, expected: str):
    assert formats.guess(code, name) == expected


@pytest.mark.parametrize(
    ("fmt", "answer", "program"),
    [
        ("svg", "Here:\n<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg> done", "<svg"),
        ("svg", "```xml\n<svg/>\n```", "<svg/>"),
        ("matplotlib", "import matplotlib.pyplot as plt\nplt.plot([1])\n", "import matplotlib"),
        ("pil", "```py\nfrom PIL import Image\n```", "from PIL"),
    ],
)
def test_extraction_asks_the_registry(fmt: str, answer: str, program: str):
    from coco_agent.codeblocks import extract_code

    assert extract_code(answer, fmt).startswith(program)
