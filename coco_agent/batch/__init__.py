"""`coco batch`: many prompts, one run directory each, N at once, exactly once across crashes and reruns.

The engine-free parts live here: the prompts file, OUT/batch.json, the per-prompt work (``batch.work``), the
summary, the display. What schedules the prompts is an engine (``coco_agent.engines``); ``run_batch`` here is
``coco_agent.engines.run_batch`` (the engine ``options.engine`` names), looked up when first used so that
importing this package (a worker on another machine, say) never imports an engine.
"""

from typing import Any

from coco_agent.batch.manifest import BatchRefused
from coco_agent.batch.prompts_file import PromptItem, PromptsFileError, count_prompts, iter_prompts
from coco_agent.batch.work import BatchAborted, BatchOptions

__all__ = [
    "BatchAborted",
    "BatchOptions",
    "BatchRefused",
    "PromptItem",
    "PromptsFileError",
    "arun_batch",
    "count_prompts",
    "iter_prompts",
    "run_batch",
]


def __getattr__(name: str) -> Any:
    if name == "run_batch":
        from coco_agent.engines import run_batch

        return run_batch
    if name == "arun_batch":  # the local engine in a running event loop
        from coco_agent.engines.local import arun_batch

        return arun_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
