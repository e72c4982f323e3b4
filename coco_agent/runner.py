"""Run the agent into a run directory with a SQLite checkpointer; resume an interrupted run."""

from __future__ import annotations

import shutil
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coco_agent.context import RunContext
from coco_agent.graph import build_graph
from coco_agent.runs import (
    CHECKPOINT_FILE,
    RESULT_FILE,
    SETTINGS_FILE,
    build_result,
    now,
    read_json,
    write_json,
)
from coco_agent.settings import context_from_settings, settings_of
from coco_agent.trace import append_trace

OnUpdate = Callable[[str, dict[str, Any]], None]


class RunDirError(Exception):
    """The run directory cannot be used as asked (exists already, or is not a run)."""


def start_run(
    prompt: str,
    ctx: RunContext,
    run_dir: str | Path,
    *,
    force: bool = False,
    texts: list[str] | None = None,
    on_update: OnUpdate | None = None,
) -> dict[str, Any]:
    """Create ``run_dir`` and run the agent to the end. Returns result.json's content."""
    run_dir = Path(run_dir)
    if (run_dir / SETTINGS_FILE).exists():
        if not force:
            raise RunDirError(
                f"{run_dir} already holds a run; continue it with `coco resume {run_dir}`, "
                "pick another -o, or pass --force to start over"
            )
        shutil.rmtree(run_dir)
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
    return _drive(run_dir, ctx, settings["thread_id"], inputs, on_update)


def resume_run(
    run_dir: str | Path, *, ctx: RunContext | None = None, on_update: OnUpdate | None = None
) -> dict:
    """Continue an interrupted run from its last checkpoint; finished nodes are not run again."""
    run_dir = Path(run_dir)
    if not (run_dir / SETTINGS_FILE).exists():
        raise RunDirError(
            f"{run_dir} is not a coco run directory (no {SETTINGS_FILE}); start one with `coco generate`"
        )
    settings = read_json(run_dir / SETTINGS_FILE)
    ctx = ctx or context_from_settings(settings["context"])
    inputs = {
        "prompt": settings["prompt"],
        "run_dir": str(run_dir),
        "format": ctx.format,
        "texts": settings["texts"],
    }
    return _drive(run_dir, ctx, settings["thread_id"], inputs, on_update, resume=True)


def _drive(
    run_dir: Path,
    ctx: RunContext,
    thread_id: str,
    inputs: dict[str, Any],
    on_update: OnUpdate | None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 10 * ctx.max_rounds + 20}
    try:
        ctx.validate()
        with SqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
            graph = build_graph().compile(checkpointer=saver)
            snapshot = graph.get_state(config)
            if resume and snapshot.values and not snapshot.next and (run_dir / RESULT_FILE).exists():
                return read_json(run_dir / RESULT_FILE)  # finished already: nothing to redo
            start = None if (resume and snapshot.values) else inputs
            append_trace(run_dir, {"node": "runner", "decision": "resume" if start is None else "start"})
            for chunk in graph.stream(start, config, context=ctx, stream_mode="updates", durability="sync"):
                for node, update in chunk.items():
                    if on_update and isinstance(update, dict):
                        on_update(node, update)
    except Exception as exc:
        return _crash_result(run_dir, ctx, inputs, exc)
    return read_json(run_dir / RESULT_FILE)


def _crash_result(run_dir: Path, ctx: RunContext, inputs: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """An unexpected error still ends with result.json (status failed) and the traceback kept on disk."""
    (run_dir / "crash.txt").write_text(traceback.format_exc(), encoding="utf-8")
    error = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, ValueError):
        error = f"internal error ({error}); the traceback is in crash.txt. `coco resume {run_dir}` retries"
    append_trace(run_dir, {"node": "runner", "decision": "failed", "why": error})
    state = {**inputs, "status": "failed", "error": error}
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
            config = {"configurable": {"thread_id": read_json(run_dir / SETTINGS_FILE)["thread_id"]}}
            values = build_graph().compile(checkpointer=saver).get_state(config).values
            state = {**values, "status": "failed", "error": error}
    except Exception:
        pass
    result = build_result(state, settings_of(ctx))
    write_json(run_dir / RESULT_FILE, result)
    return result
