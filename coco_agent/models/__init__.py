"""Chat models per role: `resolve_model("openai:gpt-4.1-mini", "coder")`, `hf:` local models, auto-detection.

Names load lazily: importing a light submodule (content, weights) pulls in neither LangChain nor torch, so the
refiners run where only diffusers is installed (the GPU benchmark). torch and transformers load only when an
`hf:` model is resolved.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelChoiceError": "resolve",
    "Role": "resolve",
    "clear_model_cache": "resolve",
    "describe_model": "resolve",
    "detect_model": "resolve",
    "model_for": "resolve",
    "resolve_model": "resolve",
    "WeightsNotFoundError": "weights",
    "locate_weights": "weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
