"""Tokens and the served model id of one model answer, read from what LangChain returns.

A provider's count (``AIMessage.usage_metadata``: OpenAI, Anthropic, Ollama, and the in-process ``hf:`` models,
which count their own) is taken as it is; an answer without one has unknown usage (None), never an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Input and output tokens of one call; None when the provider did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        return self.input_tokens + self.output_tokens if self.known else None  # type: ignore[operator]


def _count(value: Any) -> int | None:
    """A token count as an int >= 0, or None (bools, floats that are not whole, negatives are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0 or value != int(value):
        return None
    return int(value)


def usage_of(message: Any) -> Usage:
    """The usage an answer reports (``usage_metadata``), else unknown."""
    meta = getattr(message, "usage_metadata", None)
    if not isinstance(meta, dict):
        return Usage()
    return Usage(_count(meta.get("input_tokens")), _count(meta.get("output_tokens")))


def served_model(message: Any) -> str | None:
    """The model id the server says answered (``response_metadata``: ``model_name`` or ``model``)."""
    meta = getattr(message, "response_metadata", None)
    if not isinstance(meta, dict):
        return None
    for key in ("model_name", "model"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None
