"""Run settings as plain JSON: saved in run.json so `coco resume` rebuilds the same context."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from coco_agent.context import RunContext


def model_label(spec: Any) -> str | None:
    """A readable name for a model spec: the string itself, or the class/model name of an instance."""
    if spec is None or isinstance(spec, str):
        return spec or None
    recorded = getattr(spec, "coco_spec", None)  # a replay's stand-in keeps the recorded run's setting
    if isinstance(recorded, str) and recorded:
        return recorded
    from coco_agent.models import describe_model

    return describe_model(spec)


def settings_of(ctx: RunContext) -> dict[str, Any]:
    """The JSON-safe view of a context (model instances become labels)."""
    data: dict[str, Any] = {}
    for f in fields(ctx):
        value = getattr(ctx, f.name)
        data[f.name] = model_label(value) if f.name in ("llm", "vlm") else value
    data["coder"] = data["llm"]
    data["critic"] = data["vlm"]
    return data


def context_from_settings(data: dict[str, Any]) -> RunContext:
    names = {f.name for f in fields(RunContext)}
    return RunContext(**{k: v for k, v in data.items() if k in names})
