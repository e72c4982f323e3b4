"""The Ray engine's actors: DraftStage (beside each node's sandbox), RefineStage (one per GPU), ModelSlots.

- ``DraftStage``: an async actor that needs one unit of the node's ``coco_sandbox`` resource (declared at
  ``ray start``, so at most that many per node). It owns the node's warm sandbox pool, the compiled graph and
  the model clients of its process, and runs prompts with the same per-prompt work as every engine
  (``coco_agent.batch.work.process_prompt``: skip / resume / start, run, result.json), under the prompt's
  lock (Postgres advisory lock, or a file lock without Postgres), with checkpoints in the batch's store; a
  published run's checkpoints are pruned. Its runs hand refinement to the RefineStages and take model slots
  from ModelSlots.
- ``RefineStage``: an async actor holding one GPU (``num_gpus=1``; none on a machine without GPUs). It loads
  the refiner once and feeds every job that arrives, from any node, into a ``RefineQueue``: drafts of the same
  size go through one batched pipeline call, and the guardrail judges each.
- ``ModelSlots``: at most N model requests at once over the whole cluster (``--model-concurrency``), as leases
  that lapse when a holder dies without giving them back.
- ``BudgetBook``: the batch budget over the whole cluster (every call counted, asked before each new prompt and
  before a run asks the code writer again).

Each class here is plain Python; ``coco_agent.engines.ray_engine`` makes actors of them with ``ray.remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coco_agent.batch.prompts_file import PromptItem
from coco_agent.batch.work import BatchOptions, process_prompt, warm_up
from coco_agent.ledger.budget import batch_budget
from coco_agent.refiners.batching import RefineJob, RefineOutcome, RefineQueue
from coco_agent.rundir import CHECKPOINT_FILE, LOCKS_DIR, result_path

SLOT_POLL_S = 0.02
REFINE_RETRY_S = 2.0


def node_label() -> str:
    """host (pid): how a stage names where it runs."""
    return f"{socket.gethostname()} (pid {os.getpid()})"


class ModelSlots:
    """Leases on at most ``limit`` model requests at once for the whole cluster; a lease lapses after
    ``lease_s`` (a holder that died gives nothing back)."""

    def __init__(self, limit: int, lease_s: float) -> None:
        self.limit, self.lease_s = limit, lease_s
        self.held: dict[str, float] = {}
        self.peak = 0

    def try_acquire(self, token: str) -> bool:
        now = time.monotonic()
        self.held = {t: until for t, until in self.held.items() if until > now}
        if len(self.held) >= self.limit:
            return False
        self.held[token] = now + self.lease_s
        self.peak = max(self.peak, len(self.held))
        return True

    def release(self, token: str) -> None:
        self.held.pop(token, None)

    def stats(self) -> dict[str, int]:
        return {"limit": self.limit, "held": len(self.held), "peak": self.peak}


class BudgetBook:
    """The batch budget (``--batch-budget-usd/-tokens``, ``--batch-deadline``) for the whole cluster: every
    model call of every DraftStage is counted here, and both the driver (before it hands out a prompt) and each
    run (before it asks the code writer again) ask it whether the batch may go on."""

    def __init__(self, usd: float | None, tokens: int | None, seconds: float | None) -> None:
        from coco_agent.ledger.budget import BatchBudget

        self.budget = BatchBudget(usd, tokens, seconds)

    def add(self, record: dict[str, Any]) -> None:
        self.budget.add(record)

    def reason(self) -> str:
        return self.budget.reason()

    def as_dict(self) -> dict[str, Any]:
        return self.budget.as_dict()


class RayBudget:
    """``ledger.budget.BatchBudget``'s two calls (``add``, ``reason``) over a BudgetBook actor. A call's record
    goes without waiting; the actor runs a caller's calls in the order sent, so a run that asks next sees it."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def add(self, record: dict[str, Any]) -> None:
        self.actor.add.remote(record)

    def reason(self) -> str:
        import ray

        try:
            return str(ray.get(self.actor.reason.remote(), timeout=30))
        except Exception as exc:  # the book is gone: spend no more rather than spend blind
            return f"the batch budget cannot be checked ({type(exc).__name__}); nothing more is started"


class RaySlots:
    """``models.calls.Slots`` over a ModelSlots actor (one token per thread: acquire and release pair up in
    the thread that makes the request)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self._local = threading.local()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        import ray

        token = uuid.uuid4().hex
        until = None if timeout is None else time.monotonic() + timeout
        wait = SLOT_POLL_S
        while True:
            if ray.get(self.actor.try_acquire.remote(token)):
                self._local.token = token
                return True
            if not blocking or (until is not None and time.monotonic() >= until):
                return False
            time.sleep(wait)
            wait = min(wait * 2, 0.2)

    def release(self) -> None:
        token = getattr(self._local, "token", None)
        if token is not None:
            self._local.token = None
            self.actor.release.remote(token)


class RayRefineClient:
    """The refine service of a DraftStage's process: each job goes to a RefineStage (round robin); a stage
    that died (its GPU node lost) is retried, on another one or on itself once Ray has restarted it."""

    def __init__(self, stages: list[Any]) -> None:
        self.stages = list(stages)
        self._next = 0
        self._lock = threading.Lock()

    def refine(self, job: RefineJob) -> RefineOutcome:
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError

        from coco_agent.models.calls import CallAborted, _scope

        scope = _scope.get()
        while True:
            with self._lock:
                stage = self.stages[self._next % len(self.stages)]
                self._next += 1
            try:
                return ray.get(stage.refine.remote(job))
            except (RayActorError, ActorUnavailableError):
                if scope is not None and scope.cancelled.wait(REFINE_RETRY_S):
                    raise CallAborted("the run was cancelled while waiting for a GPU node") from None
                if scope is None:
                    time.sleep(REFINE_RETRY_S)


class RefineStage:
    """One GPU's refiner, loaded once; jobs from every node are batched in a RefineQueue."""

    def __init__(self, refiner: str, max_batch: int, max_wait_s: float) -> None:
        from coco_agent.refiners import load_refiner

        load_refiner(refiner)  # once, now: a missing refiner fails the stage's start, not every run
        self.queue = RefineQueue(max_batch, max_wait_s)
        self.node = node_label()

    async def ready(self) -> str:
        return self.node

    async def refine(self, job: RefineJob) -> RefineOutcome:
        return await asyncio.wrap_future(self.queue.submit(job))

    async def stats(self) -> dict[str, Any]:
        return {"node": self.node, "batches": list(self.queue.batches)}

    async def close(self) -> None:
        await asyncio.to_thread(self.queue.close)


class DraftStage:
    """Runs prompts beside this node's sandbox (see the module docstring)."""

    def __init__(
        self,
        options: BatchOptions,
        batch_id: str,
        refiners: list[Any],
        slots: Any | None,
        pg_url: str | None,
        budget: Any | None = None,
    ) -> None:
        from coco_agent.batch.threads import DaemonThreadPool
        from coco_agent.checkpoints import checkpoint_store
        from coco_agent.models.calls import call_policy
        from coco_agent.refiners.batching import refine_service

        self.options, self.batch_id = options, batch_id
        self.node = node_label()
        self.budget = RayBudget(budget) if budget is not None else None
        self._contexts = contextlib.ExitStack()
        self._contexts.enter_context(call_policy(options.model_policy(), RaySlots(slots) if slots else None))
        if refiners:
            self._contexts.enter_context(refine_service(RayRefineClient(refiners)))
        self.store = None
        if pg_url:
            from coco_agent.checkpoints.postgres import PostgresStore

            self.store = PostgresStore(pg_url, batch_id, pool_size=max(4, 2 * options.workers))
            self._contexts.enter_context(checkpoint_store(self.store))
        self._executor = DaemonThreadPool(max_workers=2 * options.workers + 4)
        self._warm_lock: asyncio.Lock | None = None
        self._warm: bool | BaseException = False

    async def ready(self) -> str:
        asyncio.get_running_loop().set_default_executor(self._executor)
        return self.node

    async def process(self, item: PromptItem) -> dict[str, Any]:
        """The prompt's event (``coco_agent.batch.work.prompt_event``), ``node`` added."""
        asyncio.get_running_loop().set_default_executor(self._executor)
        from coco_agent.errors import CheckpointStoreLost

        run_dir = self.options.run_dir(item)
        event: dict[str, Any] | None = None
        try:
            async with self._hold(run_dir):
                with batch_budget(self.budget):  # every call of the run counts for the whole cluster
                    event = await process_prompt(item, self.options, self.batch_id, warm=self._warm_up)
                if self.store is not None:
                    await self._settle(run_dir, event)
        except Exception as exc:
            if event is not None and result_path(run_dir).exists():
                # published, then the lock's release failed (Postgres went away): the lock went with its session
                return event | {"node": self.node}
            if self.store is not None and self.store.lost(exc):  # the lock's session: Postgres went away
                raise CheckpointStoreLost(f"postgres checkpoints unavailable: {exc}") from exc
            raise
        return event | {"node": self.node}

    async def _settle(self, run_dir: Path, event: dict[str, Any]) -> None:
        """Where a run's Postgres checkpoints go once its drive ended. Into the run directory's
        checkpoints.sqlite when someone may continue it there (a person's review; a budget stop, which a rerun
        or `coco resume RUN --budget-...` continues on either engine) or when the directory already holds an
        older copy (adopted from it: left as it was, `coco resume` or `coco edit` would start from a stale
        state); pruned once result.json is published; else kept, for the rerun that resumes it."""
        published = result_path(run_dir).exists()
        kept_there = (run_dir / CHECKPOINT_FILE).exists()
        if event.get("status") in ("paused", "budget") or (published and kept_there):
            await self.store.hand_over(run_dir)
        elif published:
            with contextlib.suppress(Exception):  # pruning is housekeeping: a failure costs nothing
                await self.store.prune(self.store.key(run_dir))

    def _hold(self, run_dir: Path) -> contextlib.AbstractAsyncContextManager[None]:
        if self.store is not None:
            return self.store.hold(self.store.key(run_dir))
        return file_lock(run_dir.parent / LOCKS_DIR / f"{run_dir.name}.lock")

    async def _warm_up(self) -> None:
        if self._warm_lock is None:
            self._warm_lock = asyncio.Lock()
        async with self._warm_lock:
            if self._warm is False:
                try:
                    await asyncio.to_thread(warm_up, self.options.ctx)
                    self._warm = True
                except BaseException as exc:
                    self._warm = exc
            if isinstance(self._warm, BaseException):
                raise self._warm

    async def close(self) -> None:
        """Remove this process's containers and close its Postgres pool (before the actor is killed)."""
        from coco_agent.sandbox import close_sandboxes

        await asyncio.to_thread(close_sandboxes)
        if self.store is not None:
            await self.store.close()
        self._contexts.close()


@contextlib.asynccontextmanager
async def file_lock(path: Path, poll_s: float = 0.25) -> AsyncIterator[None]:
    """An exclusive flock on ``path`` for the block (one machine, no Postgres: a local Ray instance); the
    kernel drops it when the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(poll_s)
        yield
    finally:
        os.close(fd)
