"""Answering a run paused for review (``--review``): what waits, and the answer that lets the run go on.

The pause itself is LangGraph's: the review node called ``interrupt()`` and the run's checkpoint holds it
(nodes/review.py). ``pending_review`` reads it back from the checkpoint; ``review_run`` resumes the run with
``Command(resume=answer)`` under the run's lock, so two people answering at once cannot both go on (the second
gets RunBusy), and an answer to a run that does not wait is refused (ReviewRefused) with nothing changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coco_agent.errors import ReviewRefused
from coco_agent.rundir import CHECKPOINT_FILE, RESULT_FILE, REVIEW_FILE
from coco_agent.runlock import run_lock
from coco_agent.runs import read_json


def pending_review(run_dir: str | Path) -> dict[str, Any] | None:
    """The review a run waits for (the payload its review node paused with), or None when it waits for none.
    RunDirError when ``run_dir`` is not a run."""
    from coco_agent.runner import run_config, saved_run

    run_dir = Path(run_dir)
    ctx, thread_id, _ = saved_run(run_dir, None)
    snapshot = _snapshot(run_dir, run_config(ctx, thread_id, None, None))
    if snapshot is None or not snapshot.interrupts:
        return None
    return dict(snapshot.interrupts[0].value) | {"run_dir": str(run_dir)}


def review_run(
    run_dir: str | Path, answer: dict[str, Any], *, ctx: Any = None, on_update: Any = None
) -> dict[str, Any]:
    """Answer the review the run waits for and go on (to the end, or to its next pause), with the run's own
    settings (run.json) unless ``ctx`` is given. Returns result.json's content (or the paused record).
    ReviewRefused when nothing waits or the answer is malformed."""
    from langgraph.types import Command

    from coco_agent.nodes.review import answer_problem
    from coco_agent.runner import continue_run, run_config, saved_run

    run_dir = Path(run_dir)
    ctx, thread_id, _ = saved_run(run_dir, ctx)
    with run_lock(run_dir, "coco review"):
        snapshot = _snapshot(run_dir, run_config(ctx, thread_id, None, None))
        if snapshot is None or not snapshot.interrupts:
            raise ReviewRefused(_not_waiting(run_dir))
        problem = answer_problem(answer, snapshot.values)
        if problem:
            raise ReviewRefused(problem)
        return continue_run(run_dir, Command(resume=answer), ctx=ctx, on_update=on_update)


def waiting_runs(folder: str | Path) -> list[Path]:
    """The run directories under a batch folder (or the run itself) that wait for review (RUN/review.json)."""
    folder = Path(folder)
    if (folder / REVIEW_FILE).is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / REVIEW_FILE).is_file())


def _snapshot(run_dir: Path, config: dict[str, Any]) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from coco_agent.graph import build_graph

    if not (run_dir / CHECKPOINT_FILE).is_file():
        return None
    with SqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
        return build_graph().compile(checkpointer=saver).get_state(config)


def _not_waiting(run_dir: Path) -> str:
    if (run_dir / RESULT_FILE).is_file():
        try:
            status = read_json(run_dir / RESULT_FILE).get("status")
        except (OSError, ValueError, AttributeError):
            status = "unknown"
        return (
            f"{run_dir} waits for no review: it finished ({status}). `coco edit {run_dir}` changes its program "
            "and continues it"
        )
    return (
        f"{run_dir} waits for no review (it is unfinished, not paused: `coco resume {run_dir}` continues it; "
        "a run pauses for review only when started with --review)"
    )
