"""critique: the vision model sees the prompt, the code and the draft image, and returns a structured verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import formats, prompts
from coco_agent.context import RunContext
from coco_agent.models import describe_model, resolve_model
from coco_agent.models.calls import call_model
from coco_agent.models.content import message_text, png_file_block
from coco_agent.routing import after_critique, bullet, retry_or_stop
from coco_agent.rundir import CRITIQUE_FILE, attempt_dir
from coco_agent.runs import write_json
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import ImageRejected
from coco_agent.trace import TRACE_KEY, traced
from coco_agent.verdict import Verdict, parse_verdict, verdict_record


def critic_messages(
    state: dict[str, Any], attempt: dict[str, Any], limits: SandboxLimits | None = None
) -> list:
    """Exactly what the critic sees: its rules, the request, the program, and the draft as an image block.

    The draft is read from disk through the host's checked decoder, with the sandbox's limits, and re-encoded
    (it may have been replaced since it was checked, or come from an older run): the critic sees the pixels
    the checks saw, never a file's text chunks or an APNG's other frames. Raises ImageRejected with the reason.
    """
    run_dir = Path(state["run_dir"])
    code = (run_dir / attempt["code_path"]).read_text(encoding="utf-8")
    fmt = state["format"]
    text = prompts.render(
        "critic_task", prompt=state["prompt"], format=fmt, fence=formats.get(fmt).fence, code=code
    )
    image = png_file_block(run_dir / attempt["draft_path"], limits)
    return [
        SystemMessage(prompts.render("critic_system")),
        HumanMessage(content=[{"type": "text", "text": text}, image]),
    ]


def ask_critic(model: Any, messages: list) -> tuple[dict[str, Any], list[str]]:
    """Structured output first, then the answer's text, then one repair try. Never raises."""
    notes: list[str] = []
    raw_text = ""
    try:
        structured = model.with_structured_output(Verdict, include_raw=True)
        out = call_model(structured.invoke, messages)
        if isinstance(out.get("parsed"), Verdict):
            return verdict_record(out["parsed"]), notes
        raw_text = message_text(out.get("raw"))
        notes.append("structured output gave no verdict")
    except NotImplementedError:
        notes.append("model has no structured output; reading JSON from text")
    except Exception as exc:
        notes.append(f"structured call failed: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        if not raw_text:
            raw_text = message_text(call_model(model.invoke, messages))
        return verdict_record(parse_verdict(raw_text)), notes
    except Exception as exc:
        notes.append(f"unparsable verdict: {str(exc)[:200]}")
        error = str(exc)[:200]
    try:  # the one repair try
        repair = HumanMessage(prompts.render("critic_repair", error=error))
        answer = call_model(model.invoke, [*messages, AIMessage(raw_text or "(no answer)"), repair])
        return verdict_record(parse_verdict(message_text(answer)), source="critic"), [*notes, "repaired"]
    except Exception as exc:
        notes.append(f"repair failed: {str(exc)[:200]}")
    summary = "critic answer unreadable after one repair try"
    return {"match": None, "score": None, "problems": [], "summary": summary, "source": "unparsable"}, notes


@traced("critique")
def critique(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Judge the draft; a mismatch goes back to the code writer with the critic's listed problems. A draft the
    host's PNG check now refuses (replaced on disk since it was checked) is not shown: it counts as a failed
    check, and the round is retried."""
    ctx = runtime.context or RunContext()
    attempt = state["attempts"][-1]
    label = str(ctx.vlm)
    try:
        messages = critic_messages(state, attempt, ctx.limits())
        model = resolve_model(ctx.vlm, "critic", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
        label = describe_model(model)
        verdict, notes = ask_critic(model, messages)
    except ImageRejected as exc:  # raised by critic_messages only (ask_critic never raises)
        return _refused(state, attempt, ctx, label, str(exc))
    except Exception as exc:  # the critic could not even be loaded: the deterministic checks decide
        verdict = {"match": None, "score": None, "problems": [], "summary": f"critic unavailable: {exc}"}
        verdict["source"] = "unavailable"
        notes = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    verdict["model"] = label
    write_json(attempt_dir(state["run_dir"], attempt["round"]) / CRITIQUE_FILE, {**verdict, "notes": notes})
    decision = after_critique(state, verdict, max_rounds=ctx.max_rounds)
    return {
        "attempts": [{"round": attempt["round"], "verdict": verdict}],
        **decision.update(),
        TRACE_KEY: {"model": label, "verdict": json.dumps(verdict, default=str)[:500], "notes": notes},
    }


def _refused(
    state: dict[str, Any], attempt: dict[str, Any], ctx: RunContext, label: str, reason: str
) -> dict[str, Any]:
    """The draft on disk fails the host's PNG check: no critic call, the attempt's checks fail, retry."""
    problem = f"the draft image could not be read back: {reason}"
    verdict = {"match": None, "score": None, "problems": [], "summary": problem, "source": "refused"}
    verdict["model"] = label
    notes = ["draft refused by the host's PNG check; the critic was not called"]
    write_json(attempt_dir(state["run_dir"], attempt["round"]) / CRITIQUE_FILE, {**verdict, "notes": notes})
    checks = {**(attempt.get("checks") or {}), "ok": False}
    checks["problems"] = [*checks.get("problems", []), problem]
    view = {**state, "attempts": [*state["attempts"][:-1], {**attempt, "checks": checks}]}  # ranks it last
    decision = retry_or_stop(view, ctx.max_rounds, bullet([problem]), "draft refused: " + reason[:300])
    return {
        "attempts": [{"round": attempt["round"], "verdict": verdict, "checks": checks}],
        **decision.update(),
        TRACE_KEY: {"model": label, "verdict": json.dumps(verdict, default=str)[:500], "notes": notes},
    }
