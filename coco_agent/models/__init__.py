"""Chat models per role: `resolve_model("openai:gpt-4.1-mini", "coder")`, `hf:` local models, auto-detection.

torch and transformers load only when an `hf:` model is resolved.
"""

from coco_agent.models.resolve import (
    ModelChoiceError,
    Role,
    clear_model_cache,
    describe_model,
    detect_model,
    resolve_model,
)
from coco_agent.models.weights import WeightsNotFoundError, locate_weights

__all__ = [
    "ModelChoiceError",
    "Role",
    "WeightsNotFoundError",
    "clear_model_cache",
    "describe_model",
    "detect_model",
    "locate_weights",
    "resolve_model",
]
