"""The environment a run reads, in one place: ``context_from_env`` turns it (and a front end's own settings) into
a ``RunContext``.

Every front end builds its run context here: the CLI (its flags are the overrides), `langgraph dev` (the served
graph's context schema, ``EnvContext``, fills in what a request leaves out), the library (``coco_agent.generate``,
``coco_agent.batch``) and the tests. So one environment gives the same settings, and the same models, everywhere.

| variable          | RunContext field | |
|-------------------|------------------|---|
| ``COCO_LLM``        | ``llm``          | the code writer, ``provider:model`` |
| ``COCO_VLM``        | ``vlm``          | the critic, ``provider:model`` or ``none`` |
| ``OPENAI_BASE_URL`` | ``base_url``     | an OpenAI-compatible server |
| ``COCO_OCR``        | ``ocr_engine``   | auto, rapidocr or tesseract (scores) |
| ``COCO_CLIP``       | ``clip_model``   | the CLIP model of the scores, or none |
| ``COCO_PRICES``     | ``prices``       | a price file over the shipped table (coco_agent/ledger/prices.py) |

A setting given explicitly (a flag, a keyword, a field of the request's context) beats the environment, which
beats ``RunContext``'s default. The one rule for the models:

- the code writer is ``llm``, else ``COCO_LLM``, else auto-detected when the run starts (``settle_models``);
- the critic is ``vlm``, else ``COCO_VLM``, else **the code writer, when one was named** (``llm`` or
  ``COCO_LLM``), else auto-detected for the critic's role (Ollama: a vision model when one is pulled).

Credentials (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) and ``OLLAMA_HOST`` are not settings: the model layer
reads them where it detects or builds a model (``coco_agent/models/resolve.py``); ``COCO_SANDBOX_POOL`` belongs
to the sandbox and ``COCO_LONGTEXT_BENCH`` to the benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from coco_agent.context import RunContext

ENV_VARS: dict[str, str] = {
    "llm": "COCO_LLM",
    "vlm": "COCO_VLM",
    "base_url": "OPENAI_BASE_URL",
    "ocr_engine": "COCO_OCR",
    "clip_model": "COCO_CLIP",
    "prices": "COCO_PRICES",
}


def context_from_env(
    overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> RunContext:
    """A ``RunContext`` from ``overrides`` (field name -> value; None or "" means "not given"), then the
    environment (``ENV_VARS``), then the field defaults, with the critic rule above applied. Nothing is
    detected or loaded here (``settle_models`` does the detecting). An unknown field name is a TypeError."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, variable in ENV_VARS.items():
        value = (environ.get(variable) or "").strip()
        if value:
            values[name] = value
    values.update({name: value for name, value in (overrides or {}).items() if _given(value)})
    if not _given(values.get("vlm")) and _given(values.get("llm")):
        values["vlm"] = values["llm"]  # the critic is the code writer unless one was named for it
    return RunContext(**values)


CLUSTER_ENV_VARS: dict[str, str] = {"ray_address": "COCO_RAY_ADDRESS", "pg_url": "COCO_PG_URL"}


def cluster_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """`--engine ray`'s settings from the environment: the Ray cluster's address and the Postgres URL."""
    environ = os.environ if environ is None else environ
    return {name: (environ.get(variable) or None) for name, variable in CLUSTER_ENV_VARS.items()}


def settle_models(ctx: RunContext) -> RunContext:
    """Name the models the run will use before it starts (run.json, result.json and summaries record them):
    a role still open after ``context_from_env`` gets the auto-detected model now. When none can be detected,
    ModelChoiceError (a usage error) lists every way to choose one. Changes ``ctx`` in place and returns it."""
    from coco_agent.models.resolve import detect_model

    if not _given(ctx.llm):
        ctx.llm = detect_model("coder", base_url=ctx.base_url)
    if not _given(ctx.vlm):
        ctx.vlm = detect_model("critic", base_url=ctx.base_url)
    return ctx


@dataclass
class EnvContext(RunContext):
    """A ``RunContext`` whose fields left at their defaults take the environment's values, by the rule of
    ``context_from_env``: the context schema of the graph `langgraph dev` serves (``graphs/coco.py``), so a
    request's context gets the models `coco generate` chooses in the same environment."""

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(RunContext) if not _is_default(self, f)}
        filled = context_from_env(given)
        for f in fields(RunContext):
            setattr(self, f.name, getattr(filled, f.name))


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _is_default(ctx: RunContext, f: Any) -> bool:
    value = getattr(ctx, f.name)
    default = f.default_factory() if f.default_factory is not MISSING else f.default
    return value is default or (type(value) is type(default) and value == default)
