"""`coco edit`: a person corrects the program of round N and the run goes on from there, as a new branch of its
LangGraph checkpoint history (time travel).

The fork point is the checkpoint where round N had been decided (its draft checked and critiqued, the route
taken; round 0: the prompt prepared, for a run that never drew anything). ``update_state(fork, ..., as_node=
"write_code")`` writes a child of that checkpoint as if the code writer had answered with the person's
program: round N+1, ``source: "human"``; the run then goes on from it like any run (repair, execute, check,
critique unless ``critic=False``, refine, finalize; a rejection goes back to the model). Every checkpoint of
the old line stays in checkpoints.sqlite; the files of the old line that the new one would overwrite (result
.json, final.png, refined.png, final.svg, review.json, and attempts/NN/ after round N) move to
edits/NN/replaced/, so the run directory always shows its current line and nothing is lost. When the run had
finished with a refined final, the new line refines only what changed (nodes/refine.py, refiners/changed.py)
unless ``full_refine``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from coco_agent import formats
from coco_agent.context import RunContext
from coco_agent.errors import EditRefused, RunDirError
from coco_agent.human.program import HUMAN, checked_program, program_of, write_attempt
from coco_agent.rundir import (
    CHECKPOINT_FILE,
    EDIT_FILE,
    EDITS_DIR,
    FINAL_FILE,
    FINAL_HTML_FILE,
    FINAL_SVG_FILE,
    REFINED_BARE_FILE,
    REFINED_FILE,
    REPLACED_DIR,
    RESULT_FILE,
    REVIEW_FILE,
    SETTINGS_FILE,
    attempt_dirs,
    edit_path,
)
from coco_agent.runlock import run_lock
from coco_agent.runs import now, read_json, rel, write_json
from coco_agent.trace import append_trace

DECIDED = frozenset({"write_code", "review_draft", "refine", "finalize"})  # what may follow a decided round
OUTCOME_FILES = (
    RESULT_FILE,
    FINAL_FILE,
    REFINED_FILE,
    REFINED_BARE_FILE,
    FINAL_SVG_FILE,
    FINAL_HTML_FILE,
    REVIEW_FILE,
)


@dataclasses.dataclass
class EditPoint:
    """Where an edit forks: the round whose program is edited, its checkpoint, and the state there."""

    round: int
    config: dict[str, Any]
    values: dict[str, Any]
    head: dict[str, Any]  # the state at the head of the current line (what the edit replaces)
    program: str  # round N's program, the text the person starts from ("" when there is none)
    format: str


def edit_point(run_dir: str | Path, rnd: int | None = None, *, ctx: RunContext | None = None) -> EditPoint:
    """Find the fork point for editing round ``rnd`` (None: the chosen round; a run that never drew anything:
    round 0, the edit being round 1). RunDirError when it is no run, EditRefused when that round cannot be
    edited (never ran, or the prompt itself was refused)."""
    from coco_agent.runner import run_config, saved_run

    run_dir = Path(run_dir)
    ctx, thread_id, inputs = saved_run(run_dir, ctx)
    with _graph(run_dir) as graph:
        config = run_config(ctx, thread_id, None, None)
        return _point(graph, config, inputs, ctx, rnd)


def edit_run(
    run_dir: str | Path,
    code: str | bytes,
    *,
    rnd: int | None = None,
    fmt: str | None = None,
    critic: bool = True,
    full_refine: bool = False,
    ctx: RunContext | None = None,
    on_update: Any = None,
    source_name: str = "",
) -> dict[str, Any]:
    """Continue the run with ``code`` as the program after round ``rnd`` (see ``edit_point``), as a new branch
    of its checkpoint history. ``fmt`` switches the run to another format (a program that looks like another
    format is refused without it); ``critic=False`` lets the deterministic checks decide alone for the rest of
    the run; ``full_refine`` refines the whole new draft even where it did not change. Returns result.json's
    content (or the paused record). RunBusy when someone else is continuing the run."""
    from coco_agent.runner import continue_run, run_config, saved_run

    run_dir = Path(run_dir)
    base_ctx, thread_id, inputs = saved_run(run_dir, ctx, edits=False)
    with run_lock(run_dir, "coco edit"):
        with _graph(run_dir) as graph:
            config = run_config(base_ctx, thread_id, None, None)
            point = _point(graph, config, inputs, base_ctx, rnd)
            program, new_format = checked_program(code, point.format, fmt)
            number = _next_edit_number(run_dir)
            previous = _replace_outcome(run_dir, number, point)
            new_round = point.round + 1
            record = write_attempt(run_dir, new_round, program, new_format, edit=number)
            edit = {
                "number": number,
                "from_round": point.round,
                "round": new_round,
                "source": HUMAN,
                "format": new_format,
                "critic": critic,
                "full_refine": full_refine,
                "code": record["code_path"],
                "from": source_name or None,
                "at": now(),
                "forked_from": point.config["configurable"].get("checkpoint_id"),
                "replaced_head": point.head.get("checkpoint_id"),
                "context": _overrides(base_ctx, new_format, critic, new_round),
            }
            if previous:
                edit["previous"] = previous
            update = {
                "round": new_round,
                "format": new_format,
                "attempts": [record],
                "edits": [*(point.values.get("edits") or []), edit],
                "route": "repair",
                "why": f"edit {number}: a person's program after round {point.round}",
                "status": "running",
                "error": "",
                "feedback": "",
                "best_round": None,
                "final_path": None,
                "refinement": None,
            }
            fork = graph.update_state(point.config, update, as_node="write_code")
            edit["checkpoint"] = fork["configurable"].get("checkpoint_id")  # the new line's first
        _record(run_dir, number, edit)
        append_trace(
            run_dir,
            {
                "node": "edit",
                "round": new_round,
                "source": HUMAN,
                "decision": "repair",
                "why": f"edit {number}: a person's program after round {point.round} (fork of checkpoint "
                f"{edit['forked_from']})",
            },
        )
        run_ctx = dataclasses.replace(base_ctx, **edit["context"])
        return continue_run(run_dir, None, ctx=run_ctx, on_update=on_update)


def checkpoint_line(run_dir: str | Path, *, ctx: RunContext | None = None) -> list[dict[str, Any]]:
    """Every checkpoint of the run, newest first: id, parent, round, next nodes, and whether it is on the current
    line (the head's ancestry). A fork shows as a checkpoint with two children."""
    from coco_agent.runner import run_config, saved_run

    run_dir = Path(run_dir)
    ctx, thread_id, _ = saved_run(run_dir, ctx)
    with _graph(run_dir) as graph:
        history = list(graph.get_state_history(run_config(ctx, thread_id, None, None)))
    on_line = {_id(s) for s in _line(history)}
    return [
        {
            "checkpoint": _id(s),
            "parent": (s.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
            "round": (s.values or {}).get("round"),
            "next": list(s.next),
            "current": _id(s) in on_line,
        }
        for s in history
    ]


# ------------------------------------------------------------------------------------------------ parts


class _graph:
    """The run's graph on its checkpoint file, for the block."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def __enter__(self) -> Any:
        from langgraph.checkpoint.sqlite import SqliteSaver

        from coco_agent.graph import build_graph

        self._saver = SqliteSaver.from_conn_string(str(self.run_dir / CHECKPOINT_FILE))
        return build_graph().compile(checkpointer=self._saver.__enter__())

    def __exit__(self, *exc: object) -> None:
        self._saver.__exit__(*exc)


def _id(snapshot: Any) -> str | None:
    return (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")


def _line(history: list[Any]) -> list[Any]:
    """The head's ancestry, newest first (history holds every branch; the head is its newest checkpoint)."""
    if not history:
        return []
    by_id = {_id(s): s for s in history}
    line, snapshot = [], history[0]
    while snapshot is not None:
        line.append(snapshot)
        parent = (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        snapshot = by_id.get(parent)
    return line


def _point(
    graph: Any, config: dict[str, Any], inputs: dict[str, Any], ctx: RunContext, rnd: int | None
) -> EditPoint:
    history = list(graph.get_state_history(config))
    if not history:  # killed before its first checkpoint: prepare it now, stopping before the code writer
        for _ in graph.stream(
            inputs, config, context=ctx, interrupt_before=["write_code"], durability="sync"
        ):
            pass
        history = list(graph.get_state_history(config))
    line = list(reversed(_line(history)))  # oldest first
    head = line[-1].values if line else {}
    if head.get("round", 0) == 0 and head.get("status") == "failed":
        raise EditRefused(
            f"the run's prompt was refused ({head.get('error')}); there is nothing to edit: start a new run"
        )
    attempts = {a["round"]: a for a in head.get("attempts") or []}
    decided: dict[int, Any] = {}
    for snapshot in line:
        values, upcoming = snapshot.values or {}, set(snapshot.next)
        number = values.get("round", 0)
        if number == 0 and upcoming == {"write_code"} or number > 0 and upcoming <= DECIDED:
            decided.setdefault(number, snapshot)
    if rnd is None:
        rnd = _default_round(head, attempts, decided)
    if rnd not in decided:
        done = sorted(r for r in decided if r > 0)
        raise EditRefused(
            f"round {rnd} cannot be edited: "
            + (
                f"the run's decided rounds are {', '.join(map(str, done))}"
                if done
                else "no round was decided yet"
            )
            + " (--round 0 starts over from the prompt with your program as round 1)"
        )
    snapshot = decided[rnd]
    source = attempts.get(rnd) if rnd else _last_program(attempts)
    return EditPoint(
        round=rnd,
        config=snapshot.config,
        values=snapshot.values,
        head={**head, "checkpoint_id": _id(line[-1]) if line else None},
        program=program_of(head.get("run_dir") or inputs["run_dir"], source),
        format=(snapshot.values or {}).get("format") or ctx.format,
    )


def _default_round(head: dict[str, Any], attempts: dict[int, Any], decided: dict[int, Any]) -> int:
    """The chosen round; else the last decided round that drew a draft; else 0 (nothing was drawn)."""
    best = head.get("best_round")
    if best in decided:
        return best
    drawn = [r for r in decided if r > 0 and (attempts.get(r) or {}).get("draft_path")]
    return max(drawn) if drawn else 0


def _last_program(attempts: dict[int, Any]) -> dict[str, Any] | None:
    with_code = [a for r, a in sorted(attempts.items()) if a.get("code_path")]
    return with_code[-1] if with_code else None


def _next_edit_number(run_dir: Path) -> int:
    folder = run_dir / EDITS_DIR
    numbers = [int(p.name) for p in folder.glob("[0-9]*") if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=0) + 1


def _replace_outcome(run_dir: Path, number: int, point: EditPoint) -> dict[str, Any] | None:
    """Move what the old line left that the new one would overwrite to edits/NN/replaced/; return what the
    refine node needs to keep the old final's pixels (the old final and its draft), when the run had finished
    with a refined image."""
    replaced = edit_path(run_dir, number) / REPLACED_DIR
    replaced.mkdir(parents=True, exist_ok=True)
    old = _read(run_dir / RESULT_FILE)
    for name in OUTCOME_FILES:
        if (run_dir / name).exists():
            (run_dir / name).replace(replaced / name)
    moved: dict[str, str] = {}
    for rnd, folder in attempt_dirs(run_dir):
        if rnd > point.round:
            target = replaced / rel(run_dir, folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(target))
            moved[rel(run_dir, folder)] = rel(run_dir, target)
    if not old or not (old.get("refinement") or {}).get("kept") or not (replaced / FINAL_FILE).exists():
        return None
    draft = (old.get("paths") or {}).get("draft")
    if not draft:
        return None
    folder, _, name = draft.rpartition("/")
    draft = f"{moved[folder]}/{name}" if folder in moved else draft
    return {
        "final": rel(run_dir, replaced / FINAL_FILE),
        "draft": draft,
        "refiner": old.get("refiner"),
        "best_round": old.get("best_round"),
        "status": old.get("status"),
    }


def _overrides(ctx: RunContext, fmt: str, critic: bool, new_round: int) -> dict[str, Any]:
    """The settings the edit's branch runs with, where they differ from the run's."""
    changed: dict[str, Any] = {}
    if fmt != ctx.format:
        formats.get(fmt)
        changed["format"] = fmt
    if not critic:
        changed["vlm"] = "none"
    if new_round > ctx.max_rounds:  # the person's round is always judged, even past the run's bound
        changed["max_rounds"] = new_round
    return changed


def _record(run_dir: Path, number: int, edit: dict[str, Any]) -> None:
    """edits/NN/edit.json, and the edit in run.json (``edits``: what `coco resume` applies to the branch)."""
    write_json(edit_path(run_dir, number) / EDIT_FILE, edit)
    settings = read_json(run_dir / SETTINGS_FILE)
    settings["edits"] = [*(settings.get("edits") or []), edit]
    write_json(run_dir / SETTINGS_FILE, settings)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


__all__ = ["EditPoint", "RunDirError", "checkpoint_line", "edit_point", "edit_run"]
