"""Run the agent into a run directory with a SQLite checkpointer; resume an interrupted run.

``start_run`` / ``resume_run`` block (the CLI's `generate` and `resume`); ``astart_run`` / ``aresume_run`` are
the same on LangGraph's async API with an async SQLite saver, plus a per-run deadline (`coco batch` runs many at
once in one event loop). Both write the same run directory. ``metadata`` and ``tags`` go into the LangGraph
config, where LangSmith tracing (only when the user enabled it: LANGSMITH_TRACING and a key) records them.

Whoever drives a run holds its lock (``coco_agent.runlock``): a second writer is refused with RunBusy. A run
paused for review (nodes/review.py) returns ``paused_result``: result.json's shape with status ``paused`` and
the ``review`` that waits (nothing is written to result.json, which stays the mark of a finished run);
``continue_run`` resumes it with an answer (``human/review.py``) or goes on from a fork (``human/edit.py``).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coco_agent.checkpoints import current_store
from coco_agent.context import RunContext
from coco_agent.errors import CheckpointStoreLost, RunDirError
from coco_agent.graph import build_graph
from coco_agent.models.calls import run_scope
from coco_agent.rundir import CHECKPOINT_FILE, CRASH_FILE, LOCK_FILE, RESULT_FILE, SETTINGS_FILE
from coco_agent.runlock import run_lock
from coco_agent.runs import build_result, now, read_json, write_json
from coco_agent.settings import context_from_settings, settings_of
from coco_agent.trace import append_trace

OnUpdate = Callable[[str, dict[str, Any]], None]


def start_run(
    prompt: str,
    ctx: RunContext,
    run_dir: str | Path,
    *,
    force: bool = False,
    texts: list[str] | None = None,
    on_update: OnUpdate | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Create ``run_dir`` and run the agent to the end (or to a pause for review). Returns result.json's
    content (``paused_result`` for a paused run)."""
    run_dir = Path(run_dir)
    with run_lock(run_dir, "coco generate"):
        thread_id, inputs = new_run(prompt, ctx, run_dir, force=force, texts=texts)
        config = run_config(ctx, thread_id, metadata, tags)
        return _drive(run_dir, ctx, config, inputs, on_update)


def resume_run(
    run_dir: str | Path,
    *,
    ctx: RunContext | None = None,
    on_update: OnUpdate | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    budget: dict[str, Any] | None = None,
) -> dict:
    """Continue an interrupted run from its last checkpoint; finished nodes are not run again. A run paused
    for review stays paused (its ``paused_result``): answer it with ``human.review.review_run``. ``budget``
    (``budget_usd``, ``budget_tokens``, ``deadline_s``) replaces the run's own, in run.json too; a run its
    budget stopped (status budget) then continues from where it stopped, if the new budget allows it."""
    run_dir = Path(run_dir)
    ctx, thread_id, inputs = saved_run(run_dir, ctx)
    if budget:
        ctx = new_budget(run_dir, ctx, budget)
    config = run_config(ctx, thread_id, metadata, tags)
    with run_lock(run_dir, "coco resume"):
        return _drive(run_dir, ctx, config, inputs, on_update, resume=True, reopen=bool(budget))


def continue_run(
    run_dir: Path,
    start: Any,
    *,
    ctx: RunContext | None = None,
    on_update: OnUpdate | None = None,
) -> dict[str, Any]:
    """Go on from the run's head with ``start`` as the graph's input (a ``Command(resume=...)`` answering a
    review, or None after a fork). The caller holds the run's lock."""
    ctx, thread_id, inputs = saved_run(run_dir, ctx)
    config = run_config(ctx, thread_id, None, None)
    return _drive(run_dir, ctx, config, inputs, on_update, resume=True, start=start)


def new_budget(run_dir: Path, ctx: RunContext, budget: dict[str, Any]) -> RunContext:
    """The run's context with a new budget, validated and saved in run.json (later resumes keep it)."""
    import dataclasses

    ctx = dataclasses.replace(ctx, **budget)
    ctx.validate_search()
    settings = read_json(run_dir / SETTINGS_FILE)
    settings["context"] = {**settings.get("context", {}), **budget}
    write_json(run_dir / SETTINGS_FILE, settings)
    append_trace(run_dir, {"node": "runner", "decision": "budget", "why": f"new budget {budget}"})
    return ctx


def _finished_or_reopened(
    run_dir: Path, ctx: RunContext, snapshot: Any, reopen: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """For a finished run: ``(result, None)`` to return as it is, or ``(None, update)`` that sends a run its
    budget stopped back to where it stopped (the next round's code writer, or the critic of the last draft),
    when ``reopen`` is asked and the new budget allows."""
    from coco_agent.ledger.budget import reopening

    result = read_json(run_dir / RESULT_FILE)
    if not (reopen and result.get("status") == "budget"):
        return result, None  # finished already: nothing to redo
    why_not, update = reopening(snapshot.values, ctx, run_dir)
    if update is None:
        return {**result, "resume": f"not continued: {why_not}"}, None
    return None, update


def _trace_reopened(run_dir: Path, update: dict[str, Any]) -> None:
    append_trace(run_dir, {"node": "runner", "decision": update["route"], "why": update["why"]})


async def astart_run(
    prompt: str,
    ctx: RunContext,
    run_dir: str | Path,
    *,
    force: bool = False,
    texts: list[str] | None = None,
    on_update: OnUpdate | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """``start_run`` on the async API; past ``deadline_s`` seconds the run ends ``failed`` with that reason."""
    run_dir = Path(run_dir)
    with run_lock(run_dir, "coco batch"):
        thread_id, inputs = await asyncio.to_thread(new_run, prompt, ctx, run_dir, force=force, texts=texts)
        config = run_config(ctx, thread_id, metadata, tags)
        return await _adrive(run_dir, ctx, config, inputs, on_update, deadline_s=deadline_s)


async def aresume_run(
    run_dir: str | Path,
    *,
    ctx: RunContext | None = None,
    on_update: OnUpdate | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    deadline_s: float | None = None,
    reopen: bool = False,
) -> dict[str, Any]:
    """``resume_run`` on the async API, with an optional deadline for what is left of the run; ``reopen``
    continues a run a budget stopped, when the budgets now allow the next call."""
    run_dir = Path(run_dir)
    ctx, thread_id, inputs = saved_run(run_dir, ctx)
    config = run_config(ctx, thread_id, metadata, tags)
    with run_lock(run_dir, "coco batch"):
        return await _adrive(
            run_dir, ctx, config, inputs, on_update, resume=True, deadline_s=deadline_s, reopen=reopen
        )


def new_run(
    prompt: str, ctx: RunContext, run_dir: Path, *, force: bool = False, texts: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """Create the run directory and its run.json; return the thread id and the graph's input."""
    if (run_dir / SETTINGS_FILE).exists():
        if not force:
            raise RunDirError(
                f"{run_dir} already holds a run; continue it with `coco resume {run_dir}`, "
                "pick another -o, or pass --force to start over"
            )
        _clear(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "thread_id": f"{run_dir.name}-{uuid.uuid4().hex[:8]}",
        "prompt": prompt,
        "texts": texts or [],
        "context": settings_of(ctx),
        "created": now(),
    }
    write_json(run_dir / SETTINGS_FILE, settings)
    inputs = {"prompt": prompt, "run_dir": str(run_dir), "format": ctx.format, "texts": texts or []}
    return settings["thread_id"], inputs


def _clear(run_dir: Path) -> None:
    """Empty a run directory for --force, all but its lock file (which the caller holds)."""
    for child in run_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def saved_run(
    run_dir: Path, ctx: RunContext | None, *, edits: bool = True
) -> tuple[RunContext, str, dict[str, Any]]:
    """Read run.json back: the context (unless given), the thread id and the graph's input. The settings the
    latest `coco edit` changed for its branch (``edits[-1].context``) apply over either, unless ``edits`` is
    False (a new edit starts from the run's own settings)."""
    run_dir = Path(run_dir)
    if not (run_dir / SETTINGS_FILE).is_file():
        raise RunDirError(
            f"{run_dir} is not a coco run directory (no {SETTINGS_FILE}); start one with `coco generate`"
        )
    try:
        settings = read_json(run_dir / SETTINGS_FILE)
        settings["context"], settings["thread_id"], settings["prompt"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{run_dir}/{SETTINGS_FILE} is unreadable ({exc}); it is not a usable run") from exc
    overrides = (((settings.get("edits") or [{}])[-1] or {}).get("context") or {}) if edits else {}
    if ctx is None:
        ctx = context_from_settings({**settings["context"], **overrides})
    elif overrides:
        import dataclasses

        ctx = dataclasses.replace(ctx, **overrides)
    inputs = {
        "prompt": settings["prompt"],
        "run_dir": str(run_dir),
        "format": ctx.format,
        "texts": settings.get("texts") or [],
    }
    return ctx, settings["thread_id"], inputs


def run_config(
    ctx: RunContext, thread_id: str, metadata: dict[str, Any] | None, tags: list[str] | None
) -> dict[str, Any]:
    """The LangGraph config: thread, recursion head-room, and run metadata/tags for tracing."""
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": 10 * ctx.max_rounds + 20,
    }
    if metadata:
        config["metadata"] = dict(metadata)
    if tags:
        config["tags"] = list(tags)
    return config


def _finished(run_dir: Path, resume: bool, snapshot: Any) -> bool:
    return bool(resume and snapshot.values and not snapshot.next and (run_dir / RESULT_FILE).exists())


def _published_without_checkpoints(run_dir: Path, resume: bool, snapshot: Any) -> bool:
    """A resume of a run that published a result (other than a failure, which may start over) and whose
    checkpoints are gone: continuing it would redo every call."""
    if not resume or snapshot.values or not (run_dir / RESULT_FILE).exists():
        return False
    return read_json(run_dir / RESULT_FILE).get("status") != "failed"


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """The identity of a file as written (inode, mtime, size; write_json replaces, so a new write differs)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def paused_result(snapshot: Any, ctx: RunContext) -> dict[str, Any]:
    """A run waiting for review: result.json's record with status ``paused`` and the ``review`` that waits."""
    review = snapshot.interrupts[0].value if snapshot.interrupts else {}
    result = build_result({**snapshot.values, "status": "paused"}, settings_of(ctx))
    return result | {"review": review, "finished": None}


_FROM_CHECKPOINT = object()  # _drive's default start: the inputs for a new run, the last checkpoint on resume


def _drive(
    run_dir: Path,
    ctx: RunContext,
    config: dict[str, Any],
    inputs: dict[str, Any],
    on_update: OnUpdate | None,
    *,
    resume: bool = False,
    start: Any = _FROM_CHECKPOINT,
    reopen: bool = False,
) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    on_update = _shielded(on_update)
    try:
        ctx.validate()
        with SqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
            graph = _compiled_graph().copy({"checkpointer": saver})
            snapshot = graph.get_state(config)
            if start is _FROM_CHECKPOINT:
                if _finished(run_dir, resume, snapshot):
                    done, update = _finished_or_reopened(run_dir, ctx, snapshot, reopen)
                    if done is not None:
                        return done
                    graph.update_state(config, update, as_node="check")
                    _trace_reopened(run_dir, update)
                    snapshot = graph.get_state(config)
                elif _published_without_checkpoints(run_dir, resume, snapshot):
                    result = read_json(run_dir / RESULT_FILE)  # e.g. finished on Ray, its checkpoints pruned
                    return {**result, "resume": "not continued: its checkpoints are gone"}
                if resume and snapshot.interrupts:
                    return paused_result(snapshot, ctx)  # waits for a person, not for this process
                start = None if (resume and snapshot.values) else inputs
            decision = "start" if start is inputs else "resume" if start is None else "answer"
            append_trace(run_dir, {"node": "runner", "decision": decision})
            for chunk in graph.stream(start, config, context=ctx, stream_mode="updates", durability="sync"):
                for node, update in chunk.items():
                    if on_update and isinstance(update, dict):
                        on_update(node, update)
            snapshot = graph.get_state(config)
            if snapshot.interrupts:
                return paused_result(snapshot, ctx)
    except Exception as exc:
        return _crash_result(run_dir, ctx, inputs, exc)
    return read_json(run_dir / RESULT_FILE)


async def _adrive(
    run_dir: Path,
    ctx: RunContext,
    config: dict[str, Any],
    inputs: dict[str, Any],
    on_update: OnUpdate | None,
    *,
    resume: bool = False,
    deadline_s: float | None = None,
    reopen: bool = False,
) -> dict[str, Any]:
    timer = asyncio.timeout(deadline_s)
    on_update = _shielded(on_update)
    store = (
        current_store()
    )  # checkpoints.sqlite in run_dir, or the cluster's Postgres (coco_agent/checkpoints)
    thread = store.thread_id(run_dir, config["configurable"]["thread_id"])
    config = {**config, "configurable": {**config["configurable"], "thread_id": thread}}
    before = _stamp(run_dir / RESULT_FILE)  # so a result.json written later (a new file) is this drive's
    try:
        ctx.validate()
        with run_scope(deadline_s) as scope:
            try:
                if not resume:
                    await store.fresh(run_dir, thread)
                async with store.saver(run_dir, thread) as saver:
                    graph = _compiled_graph().copy({"checkpointer": saver})
                    start = inputs
                    if resume:
                        snapshot = await graph.aget_state(config)
                        if _finished(run_dir, resume, snapshot):
                            done, update = _finished_or_reopened(run_dir, ctx, snapshot, reopen)
                            if done is not None:
                                return done
                            await graph.aupdate_state(config, update, as_node="check")
                            _trace_reopened(run_dir, update)
                            snapshot = await graph.aget_state(config)
                        elif _published_without_checkpoints(run_dir, resume, snapshot):
                            result = read_json(run_dir / RESULT_FILE)  # published, its checkpoints gone:
                            return {**result, "resume": "not continued: its checkpoints are gone"}  # no redo
                        if snapshot.interrupts:
                            return paused_result(snapshot, ctx)
                        start = None if snapshot.values else inputs
                    decision = "resume" if start is None else "start"
                    append_trace(run_dir, {"node": "runner", "decision": decision, "checkpoints": store.name})
                    async with timer:
                        async for chunk in graph.astream(
                            start, config, context=ctx, stream_mode="updates", durability="sync"
                        ):
                            for node, update in chunk.items():
                                if on_update and isinstance(update, dict):
                                    on_update(node, update)
                    snapshot = await graph.aget_state(config)
                    if snapshot.interrupts:
                        return paused_result(snapshot, ctx)
            finally:
                scope.cancel()  # a node still running in a worker thread starts no further model request
    except TimeoutError as exc:
        values = await _last_values(store, run_dir, config)
        if not timer.expired():
            return await asyncio.to_thread(_crash_result, run_dir, ctx, inputs, exc, values)
        error = (
            f"deadline: the run took longer than {deadline_s:g} s and was stopped; "
            f"`coco resume {run_dir}` continues it from its last checkpoint"
        )
        return await asyncio.to_thread(_failed_result, run_dir, ctx, inputs, error, values)
    except Exception as exc:
        if store.lost(exc) and _stamp(run_dir / RESULT_FILE) not in (None, before):
            # finalize had published the run when the store went (its last checkpoint, or the state read
            # after it): the run is finished; only its checkpoint copy is short of the last step
            why = str(exc)[:500]
            append_trace(run_dir, {"node": "runner", "decision": "store_lost_after_publish", "why": why})
            return read_json(run_dir / RESULT_FILE)
        if store.lost(exc):  # the checkpoint store went away: no result.json, the run stays resumable
            append_trace(run_dir, {"node": "runner", "decision": "store_lost", "why": str(exc)[:500]})
            raise CheckpointStoreLost(f"{store.name} checkpoints unavailable: {exc}") from exc
        values = await _last_values(store, run_dir, config)
        return await asyncio.to_thread(_crash_result, run_dir, ctx, inputs, exc, values)
    return read_json(run_dir / RESULT_FILE)


async def _last_values(store: Any, run_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """What the run's last checkpoint in ``store`` knew (None when it cannot be read)."""
    try:
        async with store.saver(run_dir, config["configurable"]["thread_id"]) as saver:
            return (await _compiled_graph().copy({"checkpointer": saver}).aget_state(config)).values
    except Exception:
        return None


def _shielded(on_update: OnUpdate | None) -> OnUpdate | None:
    """The progress callback made unable to fail the run (a display error is reported, the run goes on)."""
    if on_update is None:
        return None
    from coco_agent.progress import shielded

    return shielded(on_update)


@functools.cache
def _compiled_graph() -> Any:
    """The graph compiled once per process; each run takes a copy bound to its own checkpointer."""
    return build_graph().compile()


def _crash_result(
    run_dir: Path,
    ctx: RunContext,
    inputs: dict[str, Any],
    exc: Exception,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An unexpected error still ends with result.json (status failed) and the traceback kept on disk."""
    (run_dir / CRASH_FILE).write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    error = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, ValueError):
        error = f"internal error ({error}); the traceback is in {CRASH_FILE}. `coco resume {run_dir}` retries"
    return _failed_result(run_dir, ctx, inputs, error, values)


def _failed_result(
    run_dir: Path,
    ctx: RunContext,
    inputs: dict[str, Any],
    error: str,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write result.json with status failed and ``error``, keeping what the last checkpoint knew (``values``,
    else read from checkpoints.sqlite)."""
    append_trace(run_dir, {"node": "runner", "decision": "failed", "why": error})
    state = {**inputs, "status": "failed", "error": error}
    if values is None and (run_dir / CHECKPOINT_FILE).exists():
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver

            with SqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
                config = {"configurable": {"thread_id": read_json(run_dir / SETTINGS_FILE)["thread_id"]}}
                values = build_graph().compile(checkpointer=saver).get_state(config).values
        except Exception:
            values = None
    if values:
        state = {**values, "status": "failed", "error": error}
    result = build_result(state, settings_of(ctx))
    write_json(run_dir / RESULT_FILE, result)
    return result
