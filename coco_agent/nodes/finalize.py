"""finalize: write result.json, the run's one-page summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent.context import RunContext
from coco_agent.deliverables import write_deliverables
from coco_agent.rundir import RESULT_FILE
from coco_agent.runs import build_result, write_json
from coco_agent.settings import settings_of
from coco_agent.trace import TRACE_KEY, traced


@traced("finalize")
def finalize(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Record the outcome: status, rounds, models, sandbox, seconds per node, paths; write final.svg (the final
    image with the program's text as live text) beside final.png, and final.html for HTML drafts."""
    ctx = runtime.context or RunContext()
    status = state.get("status") or "failed"
    if status == "running":
        status = "failed"
    result = build_result({**state, "status": status}, settings_of(ctx))
    deliverables = write_deliverables(state)  # final.svg beside final.png (never fails the run)
    if deliverables:
        result["deliverables"] = deliverables
        result["paths"]["final_svg"] = deliverables["svg"].get("path")
        if "html" in deliverables:
            result["paths"]["final_html"] = deliverables["html"].get("path")
    write_json(Path(state["run_dir"]) / RESULT_FILE, result)
    return {"status": status, TRACE_KEY: {"decision": status, "why": state.get("error") or status}}
