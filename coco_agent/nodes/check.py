"""check: cheap deterministic checks on the draft, then the routing decision (retry, critique, accept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent.checks import CheckResult, check_draft
from coco_agent.context import RunContext
from coco_agent.routing import after_check
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import ImageRejected, decode_png, read_bounded
from coco_agent.trace import TRACE_KEY, traced


def critic_enabled(ctx: RunContext) -> bool:
    return not (isinstance(ctx.vlm, str) and ctx.vlm.strip().lower() == "none")


@traced("check")
def check(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Blank or near-blank drafts and absurd sizes go straight back to the code writer; see routing.after_check."""
    ctx = runtime.context or RunContext()
    attempt = dict(state["attempts"][-1])
    update: dict[str, Any] = {}
    if attempt.get("status") == "ok" and attempt.get("draft_path"):
        result = check_file(Path(state["run_dir"]) / attempt["draft_path"], ctx.limits())
        attempt["checks"] = result.as_dict()
        update["attempts"] = [{"round": attempt["round"], "checks": attempt["checks"]}]
    view = {**state, "attempts": [*state["attempts"][:-1], attempt]}
    decision = after_check(view, attempt, max_rounds=ctx.max_rounds, critic=critic_enabled(ctx))
    update |= decision.update()
    update[TRACE_KEY] = {"checks": attempt.get("checks", {}).get("problems", [])}
    return update


def check_file(path: Path, limits: SandboxLimits) -> CheckResult:
    """check_draft of a draft on disk, read through the host's checked PNG decoder with the sandbox's limits (the
    file may have been replaced, or come from an older run): a draft it refuses fails the checks, with why."""
    try:
        image = decode_png(read_bounded(path, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes)
    except ImageRejected as exc:
        problem = f"the draft image could not be read back: {exc}"
        return CheckResult(ok=False, width=0, height=0, ink_fraction=0.0, problems=[problem])
    return check_draft(image)
