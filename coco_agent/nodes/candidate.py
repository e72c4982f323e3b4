"""candidate: one candidate program of a round (``--candidates N``), repaired, rendered and checked, exactly as
the single-draft path does it (repair, execute, the repair-and-rerun of a fixable error, check), in its own
folder attempts/NN/cand-K/. The graph runs the round's candidates in parallel (LangGraph ``Send``): each is a
task of its own, checkpointed and traced on its own, and the sandbox pool renders them side by side.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from coco_agent.candidates.ranking import passes
from coco_agent.context import RunContext
from coco_agent.nodes.check import draft_checks
from coco_agent.nodes.execute import execute
from coco_agent.nodes.repair import repair
from coco_agent.trace import TRACE_KEY, traced


def candidate_input(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """What the ``Send`` to one candidate carries: the run's fixed facts and the candidate's record."""
    keys = ("prompt", "texts", "format", "run_dir", "round")
    return {**{k: state.get(k) for k in keys}, "candidate": dict(record)}


@traced("candidate")
def candidate(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Repair, render and check one candidate; its record goes to ``candidates`` (keyed by round and number)."""
    ctx = runtime.context or RunContext()
    record = dict(state["candidate"])
    steps: list[str] = []
    if record.get("status") == "pending":
        for name, step in STEPS:
            view = {**state, "attempts": [record]}
            update = step(view, runtime)
            for item in update.get("attempts") or []:
                record.update(item)
            steps.append(f"{name}: {update.get('why', '')}"[:300])
            if name == "execute" and update.get("route") != "repair":
                break
    if record.get("status") == "ok" and record.get("draft_path"):
        record["checks"] = draft_checks(state, record, ctx.limits())
        if passes(record):  # the OCR only breaks ties on the shortlist: never spent on a candidate off it
            record["ocr"] = quoted_ocr(state, record, ctx)
    checks = record.get("checks") or {}
    return {
        "candidates": [record],
        TRACE_KEY: {
            "cand": record.get("cand"),
            "status": record.get("status"),
            "checks": checks.get("problems", []),
            "steps": steps,
        },
    }


# repair, execute, and once more repair + execute after an error the repair step can fix (the nodes' own
# functions, unwrapped: the candidate's trace line stands for them)
STEPS = (
    ("repair", repair.__wrapped__),
    ("execute", execute.__wrapped__),
    ("repair", repair.__wrapped__),
    ("execute", execute.__wrapped__),
)


def quoted_ocr(state: dict[str, Any], record: dict[str, Any], ctx: RunContext) -> dict[str, Any] | None:
    """Text accuracy of the strings the prompt quotes, read by the local OCR in the candidate's draft (None
    when the prompt quotes none; unavailable when no OCR engine runs here)."""
    import io
    from pathlib import Path

    from PIL import Image

    from coco_agent.sandbox.png import read_png
    from coco_agent.scoring.score import expected_texts, text_part

    expected, _ = expected_texts(state.get("prompt", ""), state.get("texts"))
    if not expected:
        return None
    try:
        limits = ctx.limits()
        png = read_png(
            Path(state["run_dir"]) / record["draft_path"], limits.max_pixels, limits.max_png_bytes
        ).png
        part = text_part(Image.open(io.BytesIO(png)).convert("RGB"), expected, ctx.ocr_engine)
    except Exception as exc:  # OCR is a tie-breaker: never a failed candidate
        return {"available": False, "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
    keep = ("score", "matched", "total", "engine", "available", "reason")
    return {k: v for k, v in part.items() if k in keep}
