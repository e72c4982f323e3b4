"""The per-prompt work of a batch, engine-free: plan, run and publish one prompt, warm up, and the event it ends with.

Every engine (``coco_agent.engines``: the local asyncio driver, later Ray) calls these and nothing else, so
exactly-once lives here, in one place:

- ``plan_prompt``: a prompt whose run directory holds result.json (made with the same settings) is ``skipped``
  without a model call; one with run.json but no result.json is ``resumed`` from its last checkpoint, and so is
  a run an earlier invocation's batch budget stopped (it goes on where it stopped); the rest are ``started``; other settings under ``force``, or a failed run under ``retry_failed``, are ``restarted``;
  other settings without ``force`` raise RunConflict.
- ``run_prompt``: start or resume the graph in OUT/<id>/ (exactly as `coco generate` leaves it), under the
  per-run deadline; returns result.json's content (a run that fails still has one).
- ``publish``: the after-hook (a scorer) on a run that ran; its dict replaces result.json.
- ``prompt_event`` / ``failed_event``: the plain record every prompt ends with (the ``prompt`` event).
- ``process_prompt``: the four above in order, with every failure outside the graph recorded, never raised
  (except BatchAborted: nothing can run).
- ``warm_up``: make the shared sandbox, models and refiner ready once per process.
- ``begin_batch`` / ``BatchTally`` / ``finish_batch``: OUT/batch.json before, the counts while, and
  summary.json/csv after.

All of it is plain functions over (PromptItem, run directory, BatchOptions / RunContext): no engine state, no
import of any engine. ``run_prompt`` and ``process_prompt`` are coroutines (LangGraph's async API, as one
process runs many prompts); call them with ``asyncio.run`` where no loop runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coco_agent.batch.manifest import open_batch, same_run_settings
from coco_agent.batch.prompts_file import PromptItem, iter_prompts
from coco_agent.batch.summary import write_summary
from coco_agent.context import RunContext
from coco_agent.errors import BatchAborted, CheckpointStoreLost, RunConflict
from coco_agent.ledger.budget import BatchBudget
from coco_agent.models.calls import CallPolicy
from coco_agent.rundir import result_path, settings_path
from coco_agent.runner import aresume_run, astart_run
from coco_agent.runs import read_json, write_json

How = Literal["started", "resumed", "skipped", "restarted", "error"]
RAN: frozenset[str] = frozenset({"started", "resumed", "restarted"})  # a run went through the graph this time
OnEvent = Callable[[dict[str, Any]], None]
OnResult = Callable[[PromptItem, Path, dict[str, Any]], dict[str, Any] | None]
WarmUp = Callable[[], Awaitable[None]]


@dataclass
class BatchOptions:
    """What `coco batch` was asked to do; ``engine`` names an entry of ``coco_agent.engines.ENGINES``."""

    prompts: Path
    out: Path
    ctx: RunContext
    workers: int = 1
    limit: int | None = None
    force: bool = False
    deadline_s: float | None = None
    model_concurrency: int | None = None
    retries: int = 3
    retry_failed: bool = False
    engine: str = "local"
    batch_budget_usd: float | None = None
    batch_budget_tokens: int | None = None
    batch_deadline_s: float | None = None
    refine_batch: int = 4  # drafts refined in one pipeline call, at most (coco_agent/refiners/batching.py)
    refine_wait_s: float = 0.05  # how long the first draft of a refine batch waits for company
    ray_address: str | None = None  # `--engine ray`: the cluster (None: a local Ray instance)
    pg_url: str | None = None  # `--engine ray`: the Postgres that keeps checkpoints (local: runs to adopt)

    def __post_init__(self) -> None:
        self.prompts, self.out = Path(self.prompts), Path(self.out)

    def recorded(self) -> dict[str, Any]:
        """The options batch.json keeps for information (they may change between reruns)."""
        return {
            "workers": self.workers,
            "limit": self.limit,
            "deadline_s": self.deadline_s,
            "model_concurrency": self.model_concurrency,
            "retries": self.retries,
            "retry_failed": self.retry_failed,
            "engine": self.engine,
            "batch_budget": {
                "usd": self.batch_budget_usd,
                "tokens": self.batch_budget_tokens,
                "deadline_s": self.batch_deadline_s,
            },
            "refine_batch": self.refine_batch,
            "refine_wait_s": self.refine_wait_s,
            **({"ray_address": self.ray_address} if self.engine == "ray" else {}),
        }

    def batch_budget(self) -> BatchBudget | None:
        """The budget of this batch invocation (``ledger.budget.BatchBudget``), None when it has none."""
        limits = (self.batch_budget_usd, self.batch_budget_tokens, self.batch_deadline_s)
        return BatchBudget(*limits) if any(v is not None for v in limits) else None

    def run_dir(self, item: PromptItem) -> Path:
        return self.out / item.id

    def items(self) -> Iterable[PromptItem]:
        """The prompts of the batch, read as a stream (``limit`` applied)."""
        return iter_prompts(self.prompts, self.limit)

    def model_policy(self) -> CallPolicy:
        """The policy for model requests (``coco_agent.models.calls.call_policy``) in a process that runs them."""
        return CallPolicy(max_concurrency=self.model_concurrency, retries=self.retries)


def begin_batch(options: BatchOptions) -> dict[str, Any]:
    """Check the prompts file's start and create or check OUT/batch.json; return it (the manifest).

    Raises PromptsFileError for a bad prompts file, BatchRefused for an OUT made by another batch.
    """
    next(iter_prompts(options.prompts, 1))  # the file exists, has a known type and a first prompt
    return open_batch(options.out, options.prompts, options.ctx, options.recorded(), force=options.force)


def warm_up(ctx: RunContext) -> None:
    """Make the shared sandbox, models and refiner ready (errors here would fail every prompt alike, so they
    raise BatchAborted)."""
    from coco_agent.models import model_for
    from coco_agent.nodes.check import critic_enabled
    from coco_agent.refiners import load_refiner
    from coco_agent.sandbox import get_sandbox

    try:
        ctx.validate()
        get_sandbox(ctx.sandbox)
        model_for(ctx, "coder")
        if critic_enabled(ctx):
            model_for(ctx, "critic")
        if (ctx.refiner or "none").strip().lower() != "none":
            load_refiner(ctx.refiner)
    except Exception as exc:
        raise BatchAborted(f"cannot run the batch: {exc}") from exc


def plan_prompt(
    item: PromptItem, run_dir: Path, ctx: RunContext, *, force: bool = False, retry_failed: bool = False
) -> How:
    """What to do with a prompt: skipped (finished), resumed (interrupted, or stopped by a batch budget),
    started, or restarted (other settings under ``force``, or a failed run under ``retry_failed``). Reads only
    run.json and result.json."""
    saved = _read(settings_path(run_dir))
    if saved is None:
        return "started"
    same = (
        saved.get("prompt") == item.prompt
        and (saved.get("texts") or []) == item.texts
        and same_run_settings(saved.get("context") or {}, ctx)
    )
    if same and result_path(run_dir).exists():
        result = _read(result_path(run_dir)) or {}
        if stopped_by_batch_budget(result):
            return (
                "resumed"  # a batch budget is one invocation's: this one continues the run where it stopped
            )
        failed = result.get("status") == "failed"
        return "restarted" if failed and retry_failed else "skipped"
    if same:
        return "resumed"
    if not force:
        raise RunConflict(f"{run_dir} holds a run of another prompt or other settings; --force redoes it")
    return "restarted"


def stopped_by_batch_budget(result: dict[str, Any]) -> bool:
    """Whether a result.json is that of a run the batch budget (not its own) stopped: a rerun continues it."""
    stop = (result.get("budget") or {}).get("stop") or {}
    return result.get("status") == "budget" and stop.get("by") == "batch"


def run_metadata(item: PromptItem, batch_id: str) -> dict[str, Any]:
    """The LangGraph metadata and tags of a batch run (what LangSmith shows, when the user enabled it)."""
    return {
        "metadata": {"coco_batch_id": batch_id, "coco_prompt_id": item.id, "coco_prompt_line": item.line},
        "tags": ["coco-batch", f"coco-batch:{batch_id}"],
    }


async def run_prompt(
    item: PromptItem,
    run_dir: Path,
    how: How,
    ctx: RunContext,
    *,
    batch_id: str,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Run the graph for a prompt planned ``started``/``restarted`` (a fresh run directory) or ``resumed``
    (from its last checkpoint); past ``deadline_s`` the run ends failed (resumable). Returns result.json."""
    options = {**run_metadata(item, batch_id), "deadline_s": deadline_s}
    if how == "resumed":  # interrupted, or stopped by a batch budget (reopened when the budgets allow)
        return await aresume_run(run_dir, ctx=ctx, reopen=True, **options)
    if how not in ("started", "restarted"):
        raise ValueError(f"run_prompt runs a started, restarted or resumed prompt, not {how!r}")
    return await astart_run(item.prompt, ctx, run_dir, force=True, texts=item.texts, **options)


def publish(
    item: PromptItem, run_dir: Path, result: dict[str, Any], on_result: OnResult | None
) -> dict[str, Any]:
    """Run the after-hook (e.g. a scorer) on a run that ran; a dict it returns replaces result.json. Returns
    what the prompt's event adds: ``scores``, or ``hook_error`` when the hook raised. Blocking (OCR, say):
    engines call it off their event loop."""
    if on_result is None:
        return {}
    try:
        updated = on_result(item, run_dir, result)
    except Exception as exc:
        return {"hook_error": f"{type(exc).__name__}: {exc}"}
    if isinstance(updated, dict):
        write_json(result_path(run_dir), updated)
        return {"scores": updated.get("scores")}
    return {}


def prompt_event(
    item: PromptItem, run_dir: Path, how: How, result: dict[str, Any], wall_seconds: float
) -> dict[str, Any]:
    """The ``prompt`` event: id, line, status, rounds, seconds (node time), wall_seconds, how, error, run_dir.
    (Engines add ``done`` and ``total``; ``publish`` adds ``scores`` or ``hook_error``.)"""
    return {
        "event": "prompt",
        "id": item.id,
        "line": item.line,
        "status": result.get("status", "failed"),
        "rounds": result.get("rounds", 0),
        "seconds": result.get("seconds", 0.0),
        "wall_seconds": round(wall_seconds, 3),
        "how": how,
        "error": result.get("error", ""),
        "run_dir": str(run_dir),
    }


def failed_event(
    item: PromptItem, run_dir: Path, exc: BaseException, wall_seconds: float = 0.0
) -> dict[str, Any]:
    """The event of a prompt whose handling broke (``how`` error); the summary lists it failed with this error."""
    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return prompt_event(item, run_dir, "error", result, wall_seconds)


async def process_prompt(
    item: PromptItem,
    options: BatchOptions,
    batch_id: str,
    *,
    on_result: OnResult | None = None,
    warm: WarmUp | None = None,
) -> dict[str, Any]:
    """Plan, run (after ``warm()``, the engine's once-only warm-up, if given) and publish one prompt; return its
    ``prompt`` event. Any failure is the prompt's (``how`` error), never raised, except BatchAborted."""
    run_dir = options.run_dir(item)
    started = time.monotonic()
    try:
        try:
            how = plan_prompt(
                item, run_dir, options.ctx, force=options.force, retry_failed=options.retry_failed
            )
            if how == "skipped":
                result = read_json(result_path(run_dir))
            else:
                if warm is not None:
                    await warm()
                started = time.monotonic()
                result = await run_prompt(
                    item, run_dir, how, options.ctx, batch_id=batch_id, deadline_s=options.deadline_s
                )
        except (BatchAborted, CheckpointStoreLost):  # nothing can run / the run stays resumable: the engine's
            raise
        except Exception as exc:
            return failed_event(item, run_dir, exc, time.monotonic() - started)
        note = str(result.pop("resume", "")) if how == "resumed" else ""
        if note.startswith("not continued"):
            how = "skipped"  # nothing ran: the run stays as it was published, and no hook rewrites it
        event = prompt_event(item, run_dir, how, result, time.monotonic() - started)
        if note:
            event["resume"] = note
        if how in RAN and on_result is not None:
            event |= await asyncio.to_thread(publish, item, run_dir, result, on_result)
        return event
    except (BatchAborted, CheckpointStoreLost):
        raise
    except Exception as exc:  # outside the guard above (a result.json that is no object, say)
        return failed_event(item, run_dir, exc)


@dataclass
class BatchTally:
    """What the summary needs from the events of this invocation: prompts that ran, errors of those that broke."""

    ran: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    budget: dict[str, Any] | None = None  # the batch budget's figures, and why it stopped the batch

    def add(self, event: dict[str, Any]) -> None:
        if event.get("how") == "error":
            self.errors[event["id"]] = event.get("error", "")
        elif event.get("how") in RAN:
            self.ran += 1


def finish_batch(
    options: BatchOptions, manifest: dict[str, Any], tally: BatchTally, wall_seconds: float | None
) -> dict[str, Any]:
    """Write OUT/summary.json and summary.csv from every prompt's result.json; return the summary (no rows)."""
    return write_summary(
        options.out,
        options.items(),
        manifest,
        errors=tally.errors,
        wall_seconds=wall_seconds,
        ran=tally.ran,
        budget=tally.budget,
    )


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
