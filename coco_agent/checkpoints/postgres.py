"""Checkpoints for a cluster: one Postgres database, every run a thread ``batch_id:prompt_id``.

A network file system cannot carry SQLite's WAL, so the Ray engine keeps checkpoints here (run directories stay
on the shared path). The store is one connection pool per process; each run gets a saver of its own on it.
``hold(key)`` takes a per-prompt advisory lock on a session of its own and keeps it while the prompt runs, so a
second process that is handed the same prompt (a retry after a lost node, a rerun beside a batch still going)
waits instead of running it twice; Postgres ends the session, and the lock with it, when the holder dies.
``prune`` deletes a finished run's thread once its result.json is published. A run directory made by the local
engine (checkpoints.sqlite) continues here: its latest SQLite checkpoint is copied in first.

Needs the ``cluster`` extra: ``langgraph-checkpoint-postgres`` and ``psycopg[binary,pool]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coco_agent.errors import PostgresUnavailable, PromptBusy
from coco_agent.rundir import CHECKPOINT_FILE

CONNECT_TIMEOUT_S = 5
LOCK_POLL_S = 0.25
# a dead peer's session (and its lock) ends within about this long even when its machine vanished
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def masked(url: str) -> str:
    """The URL with its password hidden (what messages and batch.json show)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def check_reachable(url: str) -> None:
    """Connect once (5 s at most) and make the checkpoint tables; PostgresUnavailable saying how to fix it."""
    try:
        import psycopg
    except ImportError as exc:
        raise PostgresUnavailable(
            "Postgres checkpoints need the cluster extra: pip install 'coco-agent[cluster]'"
        ) from exc
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            from langgraph.checkpoint.postgres import PostgresSaver

            PostgresSaver(conn).setup()
    except Exception as exc:
        raise PostgresUnavailable(
            f"cannot use Postgres at {masked(url)} ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); start it "
            "(see README, 'Batches on a Ray cluster') or point --pg-url / COCO_PG_URL at a running one"
        ) from exc


class PostgresStore:
    """LangGraph checkpoints of a batch's runs in Postgres (see the module docstring)."""

    name = "postgres"

    def __init__(self, url: str, batch_id: str, *, pool_size: int = 8) -> None:
        self.url, self.batch_id, self.pool_size = url, batch_id, pool_size
        self._pool: Any = None
        self._pool_lock: asyncio.Lock | None = None

    def key(self, run_dir: Path) -> str:
        """The thread of a prompt's run: ``batch_id:prompt_id``."""
        return f"{self.batch_id}:{Path(run_dir).name}"

    def thread_id(self, run_dir: Path, saved_thread_id: str) -> str:
        return self.key(run_dir)

    async def pool(self) -> Any:
        if self._pool is None:
            if self._pool_lock is None:
                self._pool_lock = asyncio.Lock()
            async with self._pool_lock:
                if self._pool is None:
                    from psycopg.rows import dict_row
                    from psycopg_pool import AsyncConnectionPool

                    pool = AsyncConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=self.pool_size,
                        open=False,
                        timeout=30,
                        kwargs={
                            "autocommit": True,
                            "prepare_threshold": None,
                            "row_factory": dict_row,
                            "connect_timeout": CONNECT_TIMEOUT_S,
                            **KEEPALIVES,
                        },
                    )
                    await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
                    self._pool = pool
        return self._pool

    @contextlib.asynccontextmanager
    async def saver(self, run_dir: Path, thread_id: str) -> AsyncIterator[Any]:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        saver = AsyncPostgresSaver(await self.pool())
        config = {"configurable": {"thread_id": thread_id}}
        if await saver.aget_tuple(config) is None and (Path(run_dir) / CHECKPOINT_FILE).exists():
            await self._adopt_sqlite(Path(run_dir), saver, config)
        yield saver

    async def _adopt_sqlite(self, run_dir: Path, saver: Any, config: dict) -> None:
        """A run the local engine began: its latest SQLite checkpoint becomes this thread's."""
        from coco_agent.checkpoints import copy_latest

        async with _run_sqlite(run_dir) as (source, own):
            await copy_latest(source, own, saver, config)

    async def hand_over(self, run_dir: Path) -> bool:
        """A run paused for review (or stopped by a budget, or one adopted from its run directory): its latest
        checkpoint moves into the run directory's checkpoints.sqlite and its thread here is deleted, so
        `coco review RUN` answers it (or `coco resume RUN` / a rerun on either engine continues it) on any
        machine that mounts the run directories, without Postgres. A rerun of the batch adopts it back (``saver``), finds it still paused,
        and hands it over again. False when this thread holds nothing."""
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        from coco_agent.checkpoints import copy_latest
        from coco_agent.trace import append_trace

        run_dir, key = Path(run_dir), self.key(run_dir)
        source = AsyncPostgresSaver(await self.pool())
        async with _run_sqlite(run_dir, write=True) as (target, own):
            here = {"configurable": {"thread_id": key, "checkpoint_ns": ""}}
            moved = await copy_latest(source, here, target, own)
        if moved:
            await self.prune(key)
            append_trace(run_dir, {"node": "runner", "decision": "handed over", "to": CHECKPOINT_FILE})
        return moved

    async def fresh(self, run_dir: Path, thread_id: str) -> None:
        await self.prune(thread_id)

    async def prune(self, thread_id: str) -> None:
        """Delete a thread's checkpoints (its run's result.json is published: nothing will resume it)."""
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        await AsyncPostgresSaver(await self.pool()).adelete_thread(thread_id)

    async def threads(self) -> list[str]:
        """The threads of this batch that still hold checkpoints (runs not published yet)."""
        pool = await self.pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT DISTINCT thread_id FROM checkpoints WHERE thread_id LIKE %s", (f"{self.batch_id}:%",)
            )
            return sorted(row["thread_id"] for row in await cursor.fetchall())

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait_s: float = 120.0) -> AsyncIterator[None]:
        """Hold the advisory lock of ``key`` on a session of our own for the block; PromptBusy after
        ``wait_s`` seconds when another session keeps it."""
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, **KEEPALIVES
        )
        try:
            until = time.monotonic() + wait_s
            while True:
                cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
                if (await cursor.fetchone())[0]:
                    break
                if time.monotonic() >= until:
                    raise PromptBusy(f"another worker is running {key} (it holds its lock); rerun later")
                await asyncio.sleep(LOCK_POLL_S)
            yield
        finally:
            await conn.close()  # ends the session: the lock goes with it

    def lost(self, exc: BaseException) -> bool:
        try:
            import psycopg
            from psycopg_pool import PoolTimeout
        except ImportError:
            return False
        seen: BaseException | None = exc
        while seen is not None:
            if isinstance(seen, psycopg.OperationalError | PoolTimeout | PostgresUnavailable):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@contextlib.asynccontextmanager
async def _run_sqlite(run_dir: Path, write: bool = False) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """The run directory's checkpoints.sqlite as a saver (to ``write``: in WAL mode, as the local engine keeps
    it), with the config of the run's own thread (run.json's thread_id)."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from coco_agent.rundir import settings_path
    from coco_agent.runs import read_json

    saved = read_json(settings_path(run_dir)).get("thread_id")
    async with aiosqlite.connect(str(run_dir / CHECKPOINT_FILE)) as conn:
        if write:
            await conn.execute("PRAGMA journal_mode=WAL")
        yield AsyncSqliteSaver(conn), {"configurable": {"thread_id": saved}}
