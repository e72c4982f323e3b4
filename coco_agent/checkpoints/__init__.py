"""Where a run's LangGraph checkpoints live: the process's checkpoint store.

- ``SQLITE`` (the default): checkpoints.sqlite in the run directory (`coco generate`, `coco resume`, the local
  engine). One process writes it; its WAL needs a local file system.
- ``coco_agent.checkpoints.postgres.PostgresStore``: one Postgres database for a whole cluster (the Ray engine),
  every run a thread keyed ``batch_id:prompt_id``, pruned once the run's result.json is published, and a
  per-prompt advisory lock held by the session of the process that runs the prompt (a duplicate waits).

A store gives the runner a saver for a run (``saver``), forgets a run that starts over (``fresh``), and says
which errors mean that the store itself went away (``lost``: the run then stays resumable instead of ending
failed). ``checkpoint_store(store)`` sets the store for a block, process-wide, like ``models.calls.call_policy``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

from coco_agent.rundir import CHECKPOINT_FILE


class CheckpointStore(Protocol):
    """Checkpoints for runs (see the module docstring)."""

    name: str

    def thread_id(self, run_dir: Path, saved_thread_id: str) -> str:
        """The LangGraph thread of the run in ``run_dir`` (``saved_thread_id`` is run.json's)."""
        ...

    def saver(self, run_dir: Path, thread_id: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """An async checkpointer for the run (entered for the run's whole graph invocation)."""
        ...

    async def fresh(self, run_dir: Path, thread_id: str) -> None:
        """Drop what the store holds for a run that starts over."""
        ...

    def lost(self, exc: BaseException) -> bool:
        """True when ``exc`` says that the store went away (the run must stay resumable)."""
        ...


class SqliteStore:
    """checkpoints.sqlite in each run directory, WAL mode, synchronous=NORMAL: every checkpoint survives a
    killed process (SIGKILL); only a power cut could lose the last few, which then simply run again.

    ``adopt``: a ``PostgresStore`` whose runs continue here (`coco batch --engine local --pg-url`, after a Ray
    batch was interrupted): a run with no SQLite checkpoint gets its latest Postgres checkpoint copied in, and its
    Postgres thread is deleted (the run directory's file is the run's from then on)."""

    name = "sqlite"

    def __init__(self, adopt: Any = None) -> None:
        self.adopt = adopt

    def thread_id(self, run_dir: Path, saved_thread_id: str) -> str:
        return saved_thread_id

    @contextlib.asynccontextmanager
    async def saver(self, run_dir: Path, thread_id: str) -> AsyncIterator[Any]:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(str(Path(run_dir) / CHECKPOINT_FILE)) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn)
            if self.adopt is not None:
                await self._adopt_postgres(Path(run_dir), saver, thread_id)
            yield saver

    async def _adopt_postgres(self, run_dir: Path, saver: Any, thread_id: str) -> None:
        """A run the Ray engine began: its latest Postgres checkpoint becomes this file's, its thread goes."""
        config = {"configurable": {"thread_id": thread_id}}
        if await saver.aget_tuple(config) is not None:
            return
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        from coco_agent.trace import append_trace

        key = self.adopt.key(run_dir)
        source = AsyncPostgresSaver(await self.adopt.pool())
        if await copy_latest(
            source, {"configurable": {"thread_id": key, "checkpoint_ns": ""}}, saver, config
        ):
            await self.adopt.prune(key)
            append_trace(run_dir, {"node": "runner", "decision": "adopted", "from": f"postgres {key}"})

    async def fresh(self, run_dir: Path, thread_id: str) -> None:
        return None  # a new run directory holds a new file

    def lost(self, exc: BaseException) -> bool:
        return False


SQLITE = SqliteStore()
_store: CheckpointStore | None = None
_lock = threading.Lock()


def current_store() -> CheckpointStore:
    """The process's checkpoint store (``SQLITE`` unless a block set another)."""
    return _store or SQLITE


@contextlib.contextmanager
def checkpoint_store(store: CheckpointStore) -> Iterator[CheckpointStore]:
    """Keep the checkpoints of every run of this process in ``store`` until the block ends."""
    global _store
    with _lock:
        previous, _store = _store, store
    try:
        yield store
    finally:
        with _lock:
            _store = previous


async def copy_latest(source: Any, source_config: dict, target: Any, target_config: dict) -> bool:
    """Copy a thread's latest checkpoint (and its pending writes) from one saver to another, so a run made
    under one store continues under the other; False when the source holds none."""
    found = await source.aget_tuple(source_config)
    if found is None:
        return False
    thread = target_config["configurable"]["thread_id"]
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    versions = dict(found.checkpoint.get("channel_versions") or {})
    stored = await target.aput(config, found.checkpoint, found.metadata, versions)
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in found.pending_writes or []:
        by_task.setdefault(task_id, []).append((channel, value))
    for task_id, writes in by_task.items():
        await target.aput_writes(stored, writes, task_id)
    return True


__all__ = ["SQLITE", "CheckpointStore", "SqliteStore", "checkpoint_store", "copy_latest", "current_store"]
