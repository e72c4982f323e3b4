"""The exceptions a user of coco-agent catches, in one place: ``from coco_agent.errors import ModelChoiceError``.

Each carries a message meant for people (what went wrong and how to fix it); the CLI prints it as is (through
``safe_text``) and exits 2 (see ``coco_agent/cli/exit_codes.py``).

Every class is defined here and imported from here by the modules that raise it (which re-export it, so the
older import paths still work). This module imports nothing: it is light, and no import circle can pass through
it.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------- defined here


class ModelChoiceError(ValueError):
    """No usable model for a role: none chosen, or the chosen one cannot be built. The message says why."""


class WeightsNotFoundError(FileNotFoundError):
    """The named weights are neither a local directory nor in the Hugging Face cache."""


class OcrUnavailable(RuntimeError):
    """No OCR engine can run here; the message says what to install."""


class ClipUnavailable(RuntimeError):
    """No usable CLIP model here; the message says why and how to get one."""


class RunDirError(Exception):
    """The run directory cannot be used as asked (exists already, or is not a run)."""


class RunBusy(RunDirError):
    """Someone else (another process, the studio) is continuing the run right now; the message says who."""


class EditRefused(ValueError):
    """`coco edit` cannot make this edit (empty or binary program, another format, no such round)."""


class ReviewRefused(ValueError):
    """`coco review` cannot answer: nothing waits for review, or the answer is malformed."""


class StudioRefused(PermissionError):
    """The studio refuses a request: a path outside its runs folder, a missing or wrong token."""


class SandboxUnavailable(RuntimeError):
    """The requested sandbox cannot run here; the message names the cause and the fix."""


class ImageRejected(ValueError):
    """The bytes are not an acceptable PNG (wrong format, too large, corrupt)."""


class BatchAborted(Exception):
    """Nothing can run (no sandbox, no model, no refiner): the whole batch stops with this message."""


class ClusterUnavailable(BatchAborted):
    """`--engine ray`: the Ray cluster, Postgres or the nodes cannot run the batch; the message says what to
    start or fix (nothing ran)."""


class PostgresUnavailable(ClusterUnavailable):
    """Postgres (the cluster's checkpoint store) cannot be reached or used; the message says what to start."""


class CheckpointStoreLost(RuntimeError):
    """The checkpoint store went away during a run: the run wrote no result.json and stays resumable."""


class PromptBusy(RuntimeError):
    """Another worker holds a prompt's lock (it is running it) for longer than we waited; rerun later."""


class BatchRefused(Exception):
    """OUT cannot be used for this batch; the message says why and what to do."""


class PromptsFileError(ValueError):
    """The prompts file cannot be used; the message names the line."""


class RunConflict(Exception):
    """OUT/<id> holds a run of another prompt or other settings (only --force may redo it)."""


class BenchDataMissing(FileNotFoundError):
    """The LongText-Bench files are not where they should be; the message names the expected path."""


class ReportError(Exception):
    """The target is not a batch folder or a run directory."""


class PriceFileError(ValueError):
    """A price file (--prices, COCO_PRICES) cannot be read or has a malformed entry; the message says which."""


class ReplayError(Exception):
    """A run cannot be replayed (not a run, no recorded answers, or the replay needs an answer never recorded)."""


__all__ = sorted(
    [
        "BatchAborted",
        "BatchRefused",
        "BenchDataMissing",
        "CheckpointStoreLost",
        "ClipUnavailable",
        "ClusterUnavailable",
        "EditRefused",
        "ImageRejected",
        "ModelChoiceError",
        "OcrUnavailable",
        "PostgresUnavailable",
        "PriceFileError",
        "PromptBusy",
        "PromptsFileError",
        "ReplayError",
        "ReportError",
        "ReviewRefused",
        "RunBusy",
        "RunConflict",
        "RunDirError",
        "SandboxUnavailable",
        "StudioRefused",
        "WeightsNotFoundError",
    ]
)


def __dir__() -> list[str]:
    return __all__
