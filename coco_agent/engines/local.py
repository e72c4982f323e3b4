"""The `local` engine: N runs at once in one asyncio event loop, in this process.

It only schedules: ``workers`` coroutines take prompts from the file (read as a stream) while a thread checks
and counts the whole file; each prompt is ``coco_agent.batch.work.process_prompt`` (plan, run, publish), so
exactly-once is the per-prompt work's, not this module's. Runs share the process-wide sandbox, the loaded
refiner and the cached models (warmed up once, before the first run); model requests go through
``models.calls`` under the batch's policy. Neither a bad prompt nor a display that fails stops the batch:
``on_event`` is shielded (its errors are reported and swallowed), so every prompt still gets its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from coco_agent.batch.prompts_file import PromptItem, count_prompts, iter_prompts
from coco_agent.batch.threads import DaemonThreadPool
from coco_agent.batch.work import (
    BatchAborted,
    BatchOptions,
    BatchTally,
    OnEvent,
    OnResult,
    begin_batch,
    finish_batch,
    process_prompt,
    warm_up,
)
from coco_agent.ledger.budget import BatchBudget, batch_budget
from coco_agent.models.calls import call_policy
from coco_agent.progress import shielded
from coco_agent.refiners.batching import RefineQueue, refine_service
from coco_agent.safe_text import terminal_text


class LocalEngine:
    """The engine table's ``local`` entry."""

    name = "local"

    def run(
        self, options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
    ) -> dict[str, Any]:
        """Run a batch to the end (blocking); return the summary (summary.json without its rows)."""
        if options.pg_url:  # runs a Ray batch left in Postgres continue here: it must answer, at once
            from coco_agent.checkpoints.postgres import check_reachable

            check_reachable(options.pg_url)
        return asyncio.run(arun_batch(options, on_event=on_event, on_result=on_result))


ENGINE = LocalEngine()


async def arun_batch(
    options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
) -> dict[str, Any]:
    """Run a batch in the running event loop; events are described on BatchDriver.

    ``on_result(item, run_dir, result)`` runs (in a worker thread) after each prompt that ran this time; a dict
    it returns replaces result.json (a scorer adds ``scores`` this way). Raises PromptsFileError for a bad
    prompts file, BatchRefused for an OUT made by another batch, BatchAborted when nothing can run.
    """
    manifest = begin_batch(options)
    return await BatchDriver(options, manifest, on_event, on_result).run()


@contextlib.asynccontextmanager
async def adopting(options: BatchOptions, batch_id: str) -> AsyncIterator[None]:
    """With ``--pg-url``: the runs a Ray batch left in Postgres continue from their checkpoints there (copied into
    each run's checkpoints.sqlite as it resumes; coco_agent/checkpoints ``SqliteStore(adopt=...)``)."""
    if not options.pg_url:
        yield
        return
    from coco_agent.checkpoints import SqliteStore, checkpoint_store
    from coco_agent.checkpoints.postgres import PostgresStore

    postgres = PostgresStore(options.pg_url, batch_id, pool_size=max(2, options.workers))
    try:
        with checkpoint_store(SqliteStore(adopt=postgres)):
            yield
    finally:
        await postgres.close()


@contextlib.contextmanager
def refine_queue(options: BatchOptions) -> Iterator[RefineQueue | None]:
    """Every run's refinement through one queue (up to ``refine_batch`` drafts per pipeline call, the first
    waiting at most ``refine_wait_s``), when the batch refines at all."""
    if (options.ctx.refiner or "none").strip().lower() == "none":
        yield None
        return
    queue = RefineQueue(options.refine_batch, options.refine_wait_s)
    try:
        with refine_service(queue):
            yield queue
    finally:
        queue.close()


class BatchDriver:
    """Feeds prompts to ``workers`` coroutines while a thread checks and counts the whole file.

    Events (dicts, ``event`` key): ``start`` (total still unknown), ``total`` (once the file is checked: the
    first runs do not wait for a long file), then one ``prompt`` per prompt (``work.prompt_event``: id, line,
    status, rounds, seconds, wall_seconds, how, error, run_dir) with ``done`` and ``total``. A bad line found by
    the check stops the batch (runs in flight stay resumable).
    """

    def __init__(
        self,
        options: BatchOptions,
        manifest: dict[str, Any],
        on_event: OnEvent | None,
        on_result: OnResult | None,
    ) -> None:
        self.options = options
        self.manifest = manifest
        self.total: int | None = None
        # the display must never cost a prompt: an exception it raises is reported (escaped) and ignored
        self.on_event = shielded(on_event, "the batch") if on_event else (lambda event: None)
        self.on_result = on_result
        self.done = 0
        self.tally = BatchTally()
        self.aborted: BaseException | None = None
        self._workers: list[asyncio.Future] = []
        self._warm_lock = asyncio.Lock()
        self._warm: bool | BatchAborted = False
        self.budget: BatchBudget | None = None
        self.budget_stop = ""

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
        self.budget = options.batch_budget()
        with call_policy(options.model_policy()), batch_budget(self.budget), refine_queue(options):
            async with adopting(options, self.manifest["batch_id"]):
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
        if self.budget is not None:
            self.tally.budget = {**self.budget.as_dict(), "stopped": self.budget_stop or None}
        wall = time.monotonic() - started
        return await asyncio.to_thread(finish_batch, options, self.manifest, self.tally, wall)

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

    async def _worker(self, items: Iterator[PromptItem]) -> None:
        while self.aborted is None:
            reason = self.budget.reason() if self.budget is not None else ""
            if reason:  # no new prompt starts; those in flight finish their round (ledger/budget.py)
                self.budget_stop = self.budget_stop or reason
                return
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
            self.tally.add(event)
            self.done += 1
            event |= {"done": self.done, "total": self.total}
            self.on_event(event)

    async def one(self, item: PromptItem) -> dict[str, Any]:
        """Run, resume or skip one prompt (the per-prompt work); its event."""
        batch_id = self.manifest["batch_id"]
        return await process_prompt(
            item, self.options, batch_id, on_result=self.on_result, warm=self._warm_up
        )

    async def _warm_up(self) -> None:
        """Before the first run: start the sandbox, build the models, load the refiner, once for all runs."""
        async with self._warm_lock:
            if self._warm is False:
                try:
                    await asyncio.to_thread(warm_up, self.options.ctx)
                    self._warm = True
                except BatchAborted as exc:
                    self._warm = exc
            if isinstance(self._warm, BatchAborted):
                raise self._warm
