"""check: cheap deterministic checks on the draft (blank, absurd size), the facts check (the prompt's numbers,
labels and strings against what the program drew: coco_agent/facts/), then the routing decision (retry,
critique, accept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent.checks import CheckResult, check_draft
from coco_agent.context import RunContext
from coco_agent.facts.check import check_facts
from coco_agent.ledger.gate import gate
from coco_agent.routing import after_check
from coco_agent.runs import read_json, write_json
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import ImageRejected, decode_png, read_bounded
from coco_agent.trace import TRACE_KEY, traced


def critic_enabled(ctx: RunContext) -> bool:
    return not (isinstance(ctx.vlm, str) and ctx.vlm.strip().lower() == "none")


@traced("check")
def check(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Blank or near-blank drafts, absurd sizes and drawn facts that contradict the prompt go straight back to
    the code writer (with the exact problem); see routing.after_check."""
    ctx = runtime.context or RunContext()
    attempt = dict(state["attempts"][-1])
    update: dict[str, Any] = {}
    if attempt.get("status") == "ok" and attempt.get("draft_path"):
        attempt["checks"] = draft_checks(state, attempt, ctx.limits())
        update["attempts"] = [{"round": attempt["round"], "checks": attempt["checks"]}]
    view = {**state, "attempts": [*state["attempts"][:-1], attempt]}
    decision = gate(
        after_check(view, attempt, max_rounds=ctx.max_rounds, critic=critic_enabled(ctx)), view, ctx
    )
    update |= decision.update()
    if decision.route == "write_code":
        update["strategy"] = "patch"  # a crash or a failed check: fix this program
    facts = (attempt.get("checks") or {}).get("facts") or {}
    update[TRACE_KEY] = {
        "checks": attempt.get("checks", {}).get("problems", []),
        "facts": {k: facts.get(k) for k in ("problems", "checked", "skipped")} if facts else None,
    }
    return update


def draft_checks(state: dict[str, Any], attempt: dict[str, Any], limits: SandboxLimits) -> dict[str, Any]:
    """The draft checks and the facts check of a rendered attempt (or candidate), as its ``checks`` record;
    the facts check is also written into the attempt's facts.json (key ``check``)."""
    run_dir = Path(state["run_dir"])
    checks = check_file(run_dir / attempt["draft_path"], limits).as_dict()
    facts = None
    if attempt.get("facts_path"):
        try:
            facts = read_json(run_dir / attempt["facts_path"])
        except (OSError, ValueError):
            facts = None
    result = check_facts(state.get("prompt", ""), facts, texts=list(state.get("texts") or []))
    checks["facts"] = result
    if result["problems"]:
        checks["ok"] = False
        checks["problems"] = [*checks.get("problems", []), *result["problems"]]
    if facts is not None:
        write_json(run_dir / attempt["facts_path"], {**facts, "check": result})
    return checks


def check_file(path: Path, limits: SandboxLimits) -> CheckResult:
    """check_draft of a draft on disk, read through the host's checked PNG decoder with the sandbox's limits (the
    file may have been replaced, or come from an older run): a draft it refuses fails the checks, with why."""
    try:
        image = decode_png(read_bounded(path, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes)
    except ImageRejected as exc:
        problem = f"the draft image could not be read back: {exc}"
        return CheckResult(ok=False, width=0, height=0, ink_fraction=0.0, problems=[problem])
    return check_draft(image)
