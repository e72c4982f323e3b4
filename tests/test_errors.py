"""coco_agent.errors: every exception a user catches, importable from one light module, the very classes raised."""

from __future__ import annotations

import subprocess
import sys

import pytest

import coco_agent.errors as errors


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_an_exception_class(name: str) -> None:
    value = getattr(errors, name)
    assert isinstance(value, type) and issubclass(value, Exception)


def test_they_are_the_classes_that_are_raised() -> None:
    from coco_agent.batch import BatchAborted, BatchRefused, PromptsFileError
    from coco_agent.batch.longtext import BenchDataMissing
    from coco_agent.models import ModelChoiceError, WeightsNotFoundError
    from coco_agent.report import ReportError
    from coco_agent.runner import RunDirError
    from coco_agent.sandbox import ImageRejected, SandboxUnavailable
    from coco_agent.scoring.clip_score import ClipUnavailable
    from coco_agent.scoring.ocr import OcrUnavailable

    found = {
        c.__name__: c
        for c in (
            BatchAborted,
            BatchRefused,
            PromptsFileError,
            BenchDataMissing,
            ModelChoiceError,
            WeightsNotFoundError,
            ReportError,
            RunDirError,
            ImageRejected,
            SandboxUnavailable,
            ClipUnavailable,
            OcrUnavailable,
        )
    }
    for name, cls in found.items():
        assert getattr(errors, name) is cls, name


def test_importing_errors_is_light() -> None:
    code = (
        "import sys, coco_agent.errors as e; "
        "heavy = [m for m in ('PIL', 'langchain_core', 'langgraph', 'torch', 'rich') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
