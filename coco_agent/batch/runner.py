"""The batch driver: N runs at once in one event loop, each in OUT/<id>/ exactly as `coco generate` leaves it.

Exactly once: a prompt whose run directory holds result.json (made with the same settings) is skipped without a
model call; one with run.json but no result.json resumes from its last checkpoint; the rest start. Kill the
batch at any moment (even SIGKILL) and rerun the same command: nothing is redone, nothing is lost.

Runs share the process-wide sandbox (``get_sandbox``), the loaded refiner and the cached models; model requests
go through ``models.calls`` (bounded concurrency, retry with backoff). Each run has a deadline. One bad prompt
never stops the batch: it ends ``failed`` with its reason. Neither does a display that fails: ``on_event`` is
shielded (its errors are reported and swallowed), so every prompt still gets its outcome.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coco_agent.batch.manifest import open_batch, same_run_settings
from coco_agent.batch.prompts_file import PromptItem, count_prompts, iter_prompts
from coco_agent.batch.summary import write_summary
from coco_agent.batch.threads import DaemonThreadPool
from coco_agent.context import RunContext
from coco_agent.models.calls import CallPolicy, call_policy
from coco_agent.progress import shielded
from coco_agent.rundir import RESULT_FILE, SETTINGS_FILE
from coco_agent.runner import aresume_run, astart_run
from coco_agent.runs import read_json, write_json
from coco_agent.safe_text import terminal_text

OnEvent = Callable[[dict[str, Any]], None]
OnResult = Callable[[PromptItem, Path, dict[str, Any]], dict[str, Any] | None]


class BatchAborted(Exception):
    """Nothing can run (no sandbox, no model, no refiner): the whole batch stops with this message."""


class RunConflict(Exception):
    """OUT/<id> holds a run of another prompt or other settings (only --force may redo it)."""


@dataclass
class BatchOptions:
    """What `coco batch` was asked to do."""

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
        }


def run_batch(
    options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
) -> dict[str, Any]:
    """Run a batch to the end (blocking); return the summary (summary.json without its rows)."""
    return asyncio.run(arun_batch(options, on_event=on_event, on_result=on_result))


async def arun_batch(
    options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
) -> dict[str, Any]:
    """Run a batch in the running event loop; events are described on BatchDriver.

    ``on_result(item, run_dir, result)`` runs (in a worker thread) after each prompt that ran this time; a dict
    it returns replaces result.json (a scorer adds ``scores`` this way). Raises PromptsFileError for a bad
    prompts file, BatchRefused for an OUT made by another batch, BatchAborted when nothing can run.
    """
    next(iter_prompts(options.prompts, 1))  # the file exists, has a known type and a first prompt
    manifest = open_batch(options.out, options.prompts, options.ctx, options.recorded(), force=options.force)
    return await BatchDriver(options, manifest, on_event, on_result).run()


class BatchDriver:
    """Feeds prompts to ``workers`` coroutines while a thread checks and counts the whole file.

    Events (dicts, ``event`` key): ``start`` (total still unknown), ``total`` (once the file is checked: the
    first runs do not wait for a long file), then one ``prompt`` per prompt: id, line, status, rounds,
    seconds (node time), wall_seconds, how (started | resumed | skipped | restarted | error), error, run_dir,
    done, total. A bad line found by the check stops the batch (runs in flight stay resumable).
    """

    def __init__(
        self,
        options: BatchOptions,
        manifest: dict[str, Any],
        on_event: OnEvent | None,
        on_result: OnResult | None,
    ) -> None:
        self.options = options
        self.ctx = options.ctx
        self.manifest = manifest
        self.total: int | None = None
        # the display must never cost a prompt: an exception it raises is reported (escaped) and ignored
        self.on_event = shielded(on_event, "the batch") if on_event else (lambda event: None)
        self.on_result = on_result
        self.done = 0
        self.ran = 0
        self.errors: dict[str, str] = {}
        self.aborted: BaseException | None = None
        self._workers: list[asyncio.Future] = []
        self._warm_lock = asyncio.Lock()
        self._warm: bool | BatchAborted = False

    async def run(self) -> dict[str, Any]:
        options = self.options
        loop = asyncio.get_running_loop()
        # sync nodes run in the loop's default executor: a thread per worker plus head-room, never joined
        loop.set_default_executor(DaemonThreadPool(max_workers=2 * options.workers + 4))
        self.on_event(
            {
                "event": "start",
                "batch_id": self.manifest["batch_id"],
                "total": None,
                "workers": options.workers,
                "out": str(options.out),
            }
        )
        started = time.monotonic()
        items = iter_prompts(options.prompts, options.limit)
        policy = CallPolicy(max_concurrency=options.model_concurrency, retries=options.retries)
        with call_policy(policy):
            scan = asyncio.ensure_future(asyncio.to_thread(count_prompts, options.prompts, options.limit))
            self._workers = [asyncio.ensure_future(self._worker(items)) for _ in range(options.workers)]
            scan.add_done_callback(self._scanned)
            ended = await asyncio.gather(*self._workers, return_exceptions=True)
            await asyncio.gather(scan, return_exceptions=True)
        # a worker that stopped early is a bug: say so; the summary counts what it left pending (exit 1)
        for problem in ended:
            if isinstance(problem, Exception):
                print(f"coco: a batch worker stopped: {terminal_text(problem)[:500]}", file=sys.stderr)
        if self.aborted is not None:
            raise self.aborted
        wall = time.monotonic() - started
        return await asyncio.to_thread(
            write_summary,
            options.out,
            iter_prompts(options.prompts, options.limit),
            self.manifest,
            errors=self.errors,
            wall_seconds=wall,
            ran=self.ran,
        )

    def _scanned(self, scan: asyncio.Future) -> None:
        if scan.cancelled():
            return
        if scan.exception() is not None:
            self._abort(scan.exception())
            return
        self.total = scan.result()
        self.on_event({"event": "total", "total": self.total})

    def _abort(self, error: BaseException) -> None:
        """Stop the batch: no new prompt starts, runs in flight are cancelled (they stay resumable)."""
        if self.aborted is None:
            self.aborted = error
        for worker in self._workers:
            worker.cancel()

    async def _worker(self, items) -> None:
        while self.aborted is None:
            try:
                item = next(items, None)
            except Exception as exc:  # a bad line (the scan usually finds it first)
                self._abort(exc)
                return
            if item is None:
                return
            try:
                event = await self.one(item)
            except BatchAborted as exc:
                self._abort(exc)
                return
            except Exception as exc:  # outside one()'s guard (a result.json that is no object, say):
                event = self._failed(item, exc)  # this prompt fails, the worker goes on
            self.done += 1
            event |= {"done": self.done, "total": self.total}
            self.on_event(event)

    async def one(self, item: PromptItem) -> dict[str, Any]:
        """Run, resume or skip one prompt; any failure outside the graph is recorded, never raised."""
        run_dir = self.options.out / item.id
        started = time.monotonic()
        try:
            how = self.plan(item, run_dir)
            if how == "skipped":
                result = read_json(run_dir / RESULT_FILE)
            else:
                await self._warm_up()
                started = time.monotonic()
                result = await self._run(how, item, run_dir)
        except BatchAborted:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.errors[item.id] = error
            how, result = "error", {"status": "failed", "error": error}
        event: dict[str, Any] = {
            "event": "prompt",
            "id": item.id,
            "line": item.line,
            "status": result.get("status", "failed"),
            "rounds": result.get("rounds", 0),
            "seconds": result.get("seconds", 0.0),
            "wall_seconds": round(time.monotonic() - started, 3),
            "how": how,
            "error": result.get("error", ""),
            "run_dir": str(run_dir),
        }
        if how in ("started", "resumed", "restarted"):
            self.ran += 1
            event |= await self._after(item, run_dir, result)
        return event

    def _failed(self, item: PromptItem, exc: Exception) -> dict[str, Any]:
        """The event of a prompt whose handling broke; the summary lists it failed with this error."""
        error = f"{type(exc).__name__}: {exc}"
        self.errors[item.id] = error
        return {
            "event": "prompt",
            "id": item.id,
            "line": item.line,
            "status": "failed",
            "rounds": 0,
            "seconds": 0.0,
            "wall_seconds": 0.0,
            "how": "error",
            "error": error,
            "run_dir": str(self.options.out / item.id),
        }

    def plan(self, item: PromptItem, run_dir: Path) -> str:
        """What to do with a prompt: skipped (finished), resumed (interrupted), started, or restarted (other
        settings under --force, or a failed run under --retry-failed)."""
        saved = _read(run_dir / SETTINGS_FILE)
        if saved is None:
            return "started"
        same = (
            saved.get("prompt") == item.prompt
            and (saved.get("texts") or []) == item.texts
            and same_run_settings(saved.get("context") or {}, self.ctx)
        )
        if same and (run_dir / RESULT_FILE).exists():
            failed = (_read(run_dir / RESULT_FILE) or {}).get("status") == "failed"
            return "restarted" if failed and self.options.retry_failed else "skipped"
        if same:
            return "resumed"
        if not self.options.force:
            raise RunConflict(f"{run_dir} holds a run of another prompt or other settings; --force redoes it")
        return "restarted"

    async def _run(self, how: str, item: PromptItem, run_dir: Path) -> dict[str, Any]:
        if how == "resumed":
            return await aresume_run(run_dir, ctx=self.ctx, **self._run_kwargs(item))
        return await astart_run(
            item.prompt, self.ctx, run_dir, force=True, texts=item.texts, **self._run_kwargs(item)
        )

    def _run_kwargs(self, item: PromptItem) -> dict[str, Any]:
        batch_id = self.manifest["batch_id"]
        return {
            "metadata": {"coco_batch_id": batch_id, "coco_prompt_id": item.id, "coco_prompt_line": item.line},
            "tags": ["coco-batch", f"coco-batch:{batch_id}"],
            "deadline_s": self.options.deadline_s,
        }

    async def _after(self, item: PromptItem, run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
        """Run the on_result hook (e.g. a scorer); its dict replaces result.json."""
        if self.on_result is None:
            return {}
        try:
            updated = await asyncio.to_thread(self.on_result, item, run_dir, result)
        except Exception as exc:
            return {"hook_error": f"{type(exc).__name__}: {exc}"}
        if isinstance(updated, dict):
            write_json(run_dir / RESULT_FILE, updated)
            return {"scores": updated.get("scores")}
        return {}

    async def _warm_up(self) -> None:
        """Before the first run: start the sandbox, build the models, load the refiner, once for all runs."""
        async with self._warm_lock:
            if self._warm is False:
                try:
                    await asyncio.to_thread(warm_up, self.ctx)
                    self._warm = True
                except Exception as exc:
                    self._warm = BatchAborted(f"cannot run the batch: {exc}")
            if isinstance(self._warm, BatchAborted):
                raise self._warm


def warm_up(ctx: RunContext) -> None:
    """Make the shared sandbox, models and refiner ready (errors here would fail every prompt alike)."""
    from coco_agent.models import resolve_model
    from coco_agent.nodes.check import critic_enabled
    from coco_agent.refiners import load_refiner
    from coco_agent.sandbox import get_sandbox

    ctx.validate()
    get_sandbox(ctx.sandbox)
    resolve_model(ctx.llm, "coder", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
    if critic_enabled(ctx):
        resolve_model(ctx.vlm, "critic", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
    if (ctx.refiner or "none").strip().lower() != "none":
        load_refiner(ctx.refiner)


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
