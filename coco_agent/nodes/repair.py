"""repair: CoCo-style fixes of the attempt's program before it runs, without spending a model round.

Runs between write_code and execute (static repairs: indentation, unknown colour names, invalid legend
locations, keyword arguments matplotlib does not know), and once more after a failed run whose traceback
names something fixable (a keyword, a legend location, a colour): then the fixed program reruns in the same
round. The model's program is kept as code.orig.py; every repair is listed in the trace and the attempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent import formats
from coco_agent.context import RunContext
from coco_agent.repairs import RepairResult, repair_code, repair_from_error
from coco_agent.rundir import ERROR_FILE, ORIGINAL_CODE_FILE, ORIGINAL_ERROR_FILE, attempt_folder
from coco_agent.runs import rel
from coco_agent.trace import TRACE_KEY, traced


def wants_error_repair(state: dict[str, Any], attempt: dict[str, Any], ctx: RunContext) -> bool:
    """After a crash: is there one targeted repair the traceback names (and none was tried this round)?"""
    if not ctx.repairs or attempt.get("status") != "error" or attempt.get("error_repaired"):
        return False
    if not formats.get(state.get("format") or formats.DEFAULT).python or not attempt.get("code_path"):
        return False
    code = (Path(state["run_dir"]) / attempt["code_path"]).read_text(encoding="utf-8")
    try:
        return repair_from_error(code, attempt.get("error") or "", state["format"]).changed
    except Exception:  # repairs parse untrusted code: a bug there must not fail the run (see repair())
        return False


@traced("repair")
def repair(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Repair the attempt's program in place (code.orig.py keeps the model's version), then run it."""
    ctx = runtime.context or RunContext()
    attempt = state["attempts"][-1]
    rnd = attempt["round"]
    if not ctx.repairs:
        return {"route": "execute", "why": "repairs turned off", TRACE_KEY: {"repairs": []}}
    if (
        attempt.get("status") == "no_code"
        or not attempt.get("code_path")
        or not formats.get(state["format"]).python
    ):
        return {"route": "execute", "why": "nothing to repair", TRACE_KEY: {"repairs": []}}
    code_path = Path(state["run_dir"]) / attempt["code_path"]
    code = code_path.read_text(encoding="utf-8")
    after_error = attempt.get("status") == "error"
    try:
        result: RepairResult = (
            repair_from_error(code, attempt.get("error") or "", state["format"])
            if after_error
            else repair_code(code, state["format"])
        )
    except Exception as exc:  # repairs parse untrusted code on the host: a bug there runs it as written
        why = f"repairs failed ({type(exc).__name__}: {exc}); running the program as written"
        update: dict[str, Any] = {"route": "execute", "why": why[:1000], TRACE_KEY: {"repairs": []}}
        if after_error:  # tried this round: never back here for the same error
            update["attempts"] = [{"round": rnd, "error_repaired": True}]
            if attempt.get("cand"):
                update["attempts"][0]["cand"] = attempt["cand"]
        return update
    if not result.changed:
        why = f"not repaired: {result.note}; running it as written" if result.note else "no repairs needed"
        return {"route": "execute", "why": why, TRACE_KEY: {"repairs": []}}
    folder = attempt_folder(state["run_dir"], rnd, attempt.get("cand"))
    original = folder / ORIGINAL_CODE_FILE
    if not original.exists():
        original.write_text(code, encoding="utf-8")
    code_path.write_text(result.code, encoding="utf-8")
    records = [r.as_dict() for r in result.repairs]
    record: dict[str, Any] = {
        "round": rnd,
        **({"cand": attempt["cand"]} if attempt.get("cand") else {}),
        "repairs": list(attempt.get("repairs") or []) + records,
        "code_orig_path": rel(state["run_dir"], original),
    }
    stage = "after the sandbox error" if after_error else "before running"
    if after_error:
        error_file = folder / ERROR_FILE
        if error_file.exists():
            error_file.replace(folder / ORIGINAL_ERROR_FILE)
        record |= {"status": "pending", "error": "", "error_repaired": True}
    why = f"{len(records)} repair(s) {stage}: " + "; ".join(r.summary() for r in result.repairs)
    return {"attempts": [record], "route": "execute", "why": why[:1000], TRACE_KEY: {"repairs": records}}
