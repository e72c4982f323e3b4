"""critique: the vision model sees the prompt, the code and the draft image, and returns a structured verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import prompts
from coco_agent.context import RunContext
from coco_agent.models import describe_model, resolve_model
from coco_agent.models.calls import call_model
from coco_agent.models.content import message_text, png_block
from coco_agent.routing import after_critique
from coco_agent.runs import attempt_dir, write_json
from coco_agent.trace import TRACE_KEY, traced
from coco_agent.verdict import Verdict, parse_verdict, verdict_record


def critic_messages(state: dict[str, Any], attempt: dict[str, Any]) -> list:
    """Exactly what the critic sees: its rules, the request, the program, and the draft as an image block."""
    run_dir = Path(state["run_dir"])
    code = (run_dir / attempt["code_path"]).read_text(encoding="utf-8")
    fmt = state["format"]
    text = prompts.render(
        "critic_task", prompt=state["prompt"], format=fmt, fence=prompts.FENCES[fmt], code=code
    )
    png = (run_dir / attempt["draft_path"]).read_bytes()
    return [
        SystemMessage(prompts.render("critic_system")),
        HumanMessage(content=[{"type": "text", "text": text}, png_block(png)]),
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
    """Judge the draft; a mismatch goes back to the code writer with the critic's listed problems."""
    ctx = runtime.context or RunContext()
    attempt = state["attempts"][-1]
    label = str(ctx.vlm)
    try:
        model = resolve_model(ctx.vlm, "critic", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
        label = describe_model(model)
        verdict, notes = ask_critic(model, critic_messages(state, attempt))
    except Exception as exc:  # the critic could not even be loaded: the deterministic checks decide
        verdict = {"match": None, "score": None, "problems": [], "summary": f"critic unavailable: {exc}"}
        verdict["source"] = "unavailable"
        notes = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    verdict["model"] = label
    write_json(attempt_dir(state["run_dir"], attempt["round"]) / "critique.json", {**verdict, "notes": notes})
    decision = after_critique(state, verdict, max_rounds=ctx.max_rounds)
    return {
        "attempts": [{"round": attempt["round"], "verdict": verdict}],
        **decision.update(),
        TRACE_KEY: {"model": label, "verdict": json.dumps(verdict, default=str)[:500], "notes": notes},
    }
