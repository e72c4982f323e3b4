"""`coco batch`: many prompts, one run directory each, N at once, exactly once across crashes and reruns."""

from coco_agent.batch.manifest import BatchRefused
from coco_agent.batch.prompts_file import PromptItem, PromptsFileError, count_prompts, iter_prompts
from coco_agent.batch.runner import BatchAborted, BatchOptions, arun_batch, run_batch

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
