"""coco-agent: Code as Chain-of-Thought for text-to-image.

The library surface, what every front end (the `coco` CLI, `langgraph dev`, your program) calls:

- ``generate(prompt, ctx=None, out=..., **settings)``: one prompt -> one run directory; returns result.json's
  content. Settings not given come from the environment (COCO_LLM, COCO_VLM, OPENAI_BASE_URL, ...), then
  ``RunContext``'s defaults (``context_from_env``).
- ``resume(run_dir)``: continue an interrupted run from its last checkpoint.
- ``generate_batch(prompts, out, ...)``: every prompt of a file, N at once, exactly once across crashes and
  reruns (not ``batch``: that name is the batch engine's subpackage, ``coco_agent.batch``).
- ``render(code, format)``: run one drawing program in the sandbox; a ``RenderResult`` (PNG bytes or the error).
- ``score(image, prompt)``: text accuracy (local-OCR proxy) and CLIP score of any image.
- ``RunContext``, ``context_from_env``, and the exceptions users catch (``coco_agent.errors``).

Everything loads when first used: ``import coco_agent`` pulls in neither LangChain nor torch nor Docker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from coco_agent.context import RunContext
    from coco_agent.sandbox.base import RenderResult

from coco_agent.version import __version__

_LAZY = {
    "RunContext": "coco_agent.context",
    "context_from_env": "coco_agent.environment",
    "settle_models": "coco_agent.environment",
    "errors": "coco_agent.errors",
}
_ERRORS = (
    "ModelChoiceError",
    "RunDirError",
    "SandboxUnavailable",
    "ImageRejected",
    "BatchAborted",
    "BatchRefused",
    "PromptsFileError",
    "BenchDataMissing",
    "ReportError",
)
__all__ = [
    "__version__",
    "generate",
    "generate_batch",
    "render",
    "replay",
    "resume",
    "score",
    *sorted(_LAZY),
    *_ERRORS,
]


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        return getattr(importlib.import_module("coco_agent.errors"), name)
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if name == "errors" else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _context(ctx: RunContext | None, settings: dict[str, Any]) -> RunContext:
    """``ctx`` with ``settings`` applied, or (no ``ctx``) the environment's context with them."""
    import dataclasses

    from coco_agent.environment import context_from_env

    if ctx is None:
        return context_from_env(settings)
    return dataclasses.replace(ctx, **settings) if settings else ctx


def generate(
    prompt: str,
    ctx: RunContext | None = None,
    *,
    out: str | Path | None = None,
    force: bool = False,
    texts: list[str] | None = None,
    on_update: Callable[[str, dict[str, Any]], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Turn ``prompt`` into an image by way of drawing code, in the run directory ``out``.

    ``ctx`` is a ``RunContext`` taken as it is; without one, ``settings`` (RunContext field names: ``llm``,
    ``vlm``, ``base_url``, ``max_rounds``, ``format``, ``sandbox``, ``refiner``, ...) over the environment over
    the defaults, with the default critic rule of ``coco_agent.environment`` (the critic is the code writer
    unless one is named). Open model roles are auto-detected before the run starts (ModelChoiceError when
    none can be). ``out`` defaults to ``<ctx.runs_dir>/<time>``; an existing run there is a RunDirError
    unless ``force``. ``texts``: strings the image must show (scores). ``on_update(node, update)`` is called
    after every node. Returns result.json's content (``status``: accepted, max_rounds or failed).
    """
    from coco_agent.environment import settle_models
    from coco_agent.runner import start_run

    ctx = settle_models(_context(ctx, settings))
    run_dir = Path(out) if out else Path(ctx.runs_dir) / datetime.now().strftime("%Y%m%d-%H%M%S")
    return start_run(prompt, ctx, run_dir, force=force, texts=texts, on_update=on_update)


def resume(
    run_dir: str | Path,
    *,
    on_update: Callable[[str, dict[str, Any]], None] | None = None,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its last checkpoint, with its own settings (run.json); finished
    nodes are not run again. A finished run is returned as it is, except one stopped by its budget (status
    ``budget``) given a larger one here: it continues where it stopped. RunDirError when it is not a run."""
    from coco_agent.runner import resume_run

    budget = {"budget_usd": budget_usd, "budget_tokens": budget_tokens, "deadline_s": deadline_s}
    return resume_run(run_dir, on_update=on_update, budget={k: v for k, v in budget.items() if v is not None})


def replay(run_dir: str | Path, out: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Re-run the run in ``run_dir`` into ``out`` from its recorded model answers (calls.jsonl), calling no
    model, and compare: returns the replay report (also ``out``/replay.json): ``identical``, ``differences``.
    ReplayError when it cannot be replayed."""
    from coco_agent.replays import replay_run

    return replay_run(run_dir, out, force=force)


def generate_batch(
    prompts: str | Path,
    out: str | Path,
    ctx: RunContext | None = None,
    *,
    workers: int = 4,
    limit: int | None = None,
    force: bool = False,
    deadline_s: float | None = 1800.0,
    model_concurrency: int | None = None,
    retries: int = 3,
    retry_failed: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Generate every prompt of ``prompts`` (.txt, .jsonl or .csv), ``workers`` at once, one run directory each
    under ``out``; rerun the same call to continue after a crash. ``ctx`` / ``settings`` as for ``generate``
    (one context for every prompt). Returns the summary (summary.json); a prompt without an outcome is
    ``pending`` in its ``statuses``. BatchRefused, BatchAborted or PromptsFileError when nothing can run."""
    from coco_agent.batch import BatchOptions, run_batch
    from coco_agent.environment import settle_models

    ctx = settle_models(_context(ctx, settings))
    ctx.validate()
    options = BatchOptions(
        prompts=Path(prompts),
        out=Path(out),
        ctx=ctx,
        workers=workers,
        limit=limit,
        force=force,
        deadline_s=deadline_s or None,
        model_concurrency=model_concurrency,
        retries=retries,
        retry_failed=retry_failed,
    )
    return run_batch(options, on_event=on_event)


def render(
    code: str,
    format: str = "auto",
    *,
    sandbox: str = "auto",
    timeout_s: float | None = None,
    memory_mb: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> RenderResult:
    """Run one drawing program (any format of the registry, coco_agent/formats; ``auto`` guesses) in the sandbox ``sandbox``
    (auto, docker, bubblewrap, process) and return its ``RenderResult``: ``ok``, ``png`` (bytes, checked on
    the host), ``status`` (ok, error, timeout, oom, no_image, rejected), ``error``, ``seconds``, ``sandbox``.
    Limits default to ``RunContext``'s. SandboxUnavailable when the sandbox asked for cannot run here;
    ``progress`` gets its start-up messages (plain text; default: shown on stderr)."""
    from coco_agent import formats
    from coco_agent.context import RunContext
    from coco_agent.sandbox import get_sandbox

    defaults = RunContext()
    limits = RunContext(
        timeout_s=defaults.timeout_s if timeout_s is None else timeout_s,
        memory_mb=defaults.memory_mb if memory_mb is None else memory_mb,
    ).limits()
    fmt = formats.guess(code) if format == "auto" else formats.get(format).name
    return get_sandbox(sandbox, progress=progress).render(code, fmt, limits)


def score(
    image: str | Path | Image.Image,
    prompt: str = "",
    texts: list[str] | None = None,
    *,
    ocr_engine: str | None = None,
    clip_model: str | None = None,
) -> dict[str, Any]:
    """Score an image (a path or a PIL image) against ``prompt``: ``text`` (accuracy over ``texts``, default the
    strings quoted in the prompt; LongText-Bench formula, local-OCR proxy) and ``clip`` (cosine); a part that
    cannot be computed here says why instead. ``ocr_engine`` / ``clip_model`` default to COCO_OCR / COCO_CLIP,
    then ``auto``."""
    from coco_agent.environment import context_from_env
    from coco_agent.scoring import score_image

    ctx = context_from_env({"ocr_engine": ocr_engine, "clip_model": clip_model})
    return score_image(image, prompt, texts, ocr_engine=ctx.ocr_engine, clip_model=ctx.clip_model)
