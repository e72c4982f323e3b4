"""execute: run the attempt's program in the sandbox and keep the draft PNG (or the error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent.context import RunContext
from coco_agent.geometry import check_geometry, expected_strings
from coco_agent.nodes.repair import wants_error_repair
from coco_agent.rundir import (
    DRAFT_FILE,
    ERROR_FILE,
    FACTS_FILE,
    GEOMETRY_FILE,
    OUTPUT_FILE,
    TEXT_BOXES_FILE,
    attempt_folder,
)
from coco_agent.runs import rel, write_json
from coco_agent.sandbox import get_sandbox
from coco_agent.trace import TRACE_KEY, traced

OUTPUT_KEEP = 20_000  # characters of stdout/stderr kept in attempts/NN/output.txt


@traced("execute")
def execute(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Render the program in the sandbox. Writes draft.png on success (text_boxes.json when the sandbox
    reported where the program drew text, geometry.json with the geometry checks when it reported the drawn
    strings, facts.json when it reported what it drew), error.txt otherwise.

    A crash whose traceback names a fixable keyword, legend location or colour goes to `repair` once (same
    round, no model call); anything else goes to `check`, which routes the retry.
    """
    ctx = runtime.context or RunContext()
    attempt = state["attempts"][-1]
    rnd = attempt["round"]
    if attempt.get("status") == "no_code":
        return {"route": "check", "why": "nothing to run", TRACE_KEY: {"status": "no_code"}}
    folder = attempt_folder(state["run_dir"], rnd, attempt.get("cand"))
    code = (Path(state["run_dir"]) / attempt["code_path"]).read_text(encoding="utf-8")
    try:
        sandbox = get_sandbox(ctx.sandbox)
    except Exception as exc:  # no engine, no image: the whole run cannot go on
        error = f"no sandbox available: {exc}"
        return {
            "attempts": [{"round": rnd, "status": "sandbox_unavailable", "error": error}],
            "status": "failed",
            "error": error,
            "route": "finalize",
            "why": "sandbox unavailable",
        }
    result = sandbox.render(code, state["format"], ctx.limits())
    record: dict[str, Any] = {
        "round": rnd,
        **({"cand": attempt["cand"]} if attempt.get("cand") else {}),
        "status": result.status,
        "sandbox": result.sandbox or sandbox.kind,
        "render_seconds": round(result.seconds, 3),
    }
    output = _output_text(result.stdout, result.stderr)
    if output:
        (folder / OUTPUT_FILE).write_text(output, encoding="utf-8")
    if result.ok:
        draft = folder / DRAFT_FILE
        draft.write_bytes(result.png)
        record |= {"draft_path": rel(state["run_dir"], draft), "width": result.width, "height": result.height}
        if result.text_boxes is not None:
            boxes = folder / TEXT_BOXES_FILE
            write_json(
                boxes,
                {
                    "source": "sandbox",
                    "captured": result.extra.get("captured", ""),
                    "size": [result.width, result.height],
                    "boxes": [list(box) for box in result.text_boxes],
                    "texts": getattr(
                        result, "texts", None
                    ),  # the drawn strings, where the renderer knows them
                },
            )
            record |= {"text_boxes_path": rel(state["run_dir"], boxes), "text_boxes": len(result.text_boxes)}
        if result.texts is not None:
            record["geometry"] = _geometry(state, folder, result)
        if result.facts is not None:
            facts_file = folder / FACTS_FILE
            write_json(
                facts_file, {"source": "sandbox", "size": [result.width, result.height], **result.facts}
            )
            record["facts_path"] = rel(state["run_dir"], facts_file)
    else:
        record["error"] = _error_text(result.error, result.stderr)
        (folder / ERROR_FILE).write_text(f"status: {result.status}\n{record['error']}\n", encoding="utf-8")
    route, why = "check", f"sandbox {result.status} in {result.seconds:.2f}s"
    if not result.ok and wants_error_repair(state, {**attempt, **record}, ctx):
        route, why = "repair", why + "; the error names something the repair step can fix -> repair and rerun"
    return {
        "attempts": [record],
        "route": route,
        "why": why,
        TRACE_KEY: {
            "status": result.status,
            "sandbox": record["sandbox"],
            **({"geometry": record["geometry"]["counts"]} if "geometry" in record else {}),
        },
    }


def _geometry(state: dict[str, Any], folder: Path, result: Any) -> dict[str, Any]:
    """Run the geometry checks on the texts the renderer measured; write geometry.json; the attempt's summary."""
    expected = expected_strings(state.get("prompt", ""), state.get("texts"))
    report = check_geometry(result.texts, expected, result.width, result.height)
    path = folder / GEOMETRY_FILE
    write_json(path, {"source": "sandbox", "captured": result.extra.get("captured", ""), **report.as_dict()})
    return {
        "path": rel(state["run_dir"], path),
        "ok": report.ok,
        "texts": len(result.texts),
        "counts": report.counts(),
        "problems": report.messages(),
    }


def _output_text(stdout: str, stderr: str) -> str:
    parts = []
    if stdout:
        parts.append("--- stdout ---\n" + stdout[-OUTPUT_KEEP:])
    if stderr:
        parts.append("--- stderr ---\n" + stderr[-OUTPUT_KEEP:])
    return "\n".join(parts)


def _error_text(error: str, stderr: str) -> str:
    error = (error or "").strip()
    stderr = (stderr or "").strip()
    if stderr and stderr[-200:] not in error:
        return f"{error}\n{stderr[-4000:]}".strip()
    return error or "the program failed without an error message"
