"""The exceptions a user of coco-agent catches, in one place: ``from coco_agent.errors import ModelChoiceError``.

Each carries a message meant for people (what went wrong and how to fix it); the CLI prints it as is (through
``safe_text``) and exits 2 (see ``coco_agent/cli/exit_codes.py``).

The classes of the model and scoring layers are defined here (their modules import them from here). The
sandbox's, the batch engine's, the run directory's and the report's are defined where they are raised and
re-exported here lazily, so ``import coco_agent.errors`` stays as light as it is (no PIL, no LangChain) and
the import graph has no circle: this module imports nothing of coco_agent when it loads.
"""

from __future__ import annotations

import importlib
from typing import Any

# --------------------------------------------------------------------------------------- defined here


class ModelChoiceError(ValueError):
    """No usable model for a role: none chosen, or the chosen one cannot be built. The message says why."""


class WeightsNotFoundError(FileNotFoundError):
    """The named weights are neither a local directory nor in the Hugging Face cache."""


class OcrUnavailable(RuntimeError):
    """No OCR engine can run here; the message says what to install."""


class ClipUnavailable(RuntimeError):
    """No usable CLIP model here; the message says why and how to get one."""


# ------------------------------------------------------------------------- re-exported (name -> module)

_ELSEWHERE = {
    "RunDirError": "coco_agent.runner",  # the run directory exists already, or is not a run
    "SandboxUnavailable": "coco_agent.sandbox",  # the sandbox asked for cannot run here
    "ImageRejected": "coco_agent.sandbox",  # bytes that are not an acceptable PNG
    "BatchAborted": "coco_agent.batch",  # nothing can run: the whole batch stops
    "BatchRefused": "coco_agent.batch",  # OUT belongs to another batch or other settings
    "PromptsFileError": "coco_agent.batch",  # the prompts file cannot be used (names the line)
    "RunConflict": "coco_agent.batch.runner",  # OUT/<id> holds a run of another prompt or settings
    "BenchDataMissing": "coco_agent.batch.longtext",  # LongText-Bench files are not where expected
    "ReportError": "coco_agent.report",  # not a batch folder or a run directory
}

__all__ = sorted(
    ["ClipUnavailable", "ModelChoiceError", "OcrUnavailable", "WeightsNotFoundError", *_ELSEWHERE]
)


def __getattr__(name: str) -> Any:
    if name not in _ELSEWHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_ELSEWHERE[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
