"""write_code: the code writer (LLM) turns the prompt, plus feedback on the last attempt, into a program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import prompts
from coco_agent.codeblocks import extract_code
from coco_agent.context import RunContext
from coco_agent.models import describe_model, resolve_model
from coco_agent.models.calls import call_model
from coco_agent.models.content import message_text
from coco_agent.rundir import ANSWER_FILE, ERROR_FILE
from coco_agent.runs import attempt_dir, rel
from coco_agent.trace import TRACE_KEY, traced

CODE_NAMES = {"matplotlib": "code.py", "pil": "code.py", "svg": "code.svg"}


def coder_messages(state: dict[str, Any], fmt: str) -> list:
    """System rules for the format, the request, and (after round 1) the last program with what went wrong."""
    request = prompts.render("coder_task", prompt=state["prompt"])
    attempts = state.get("attempts") or []
    if attempts and state.get("feedback"):
        last = attempts[-1]
        code = ""
        if last.get("code_path"):
            code = (Path(state["run_dir"]) / last["code_path"]).read_text(encoding="utf-8")
        request += "\n\n" + prompts.render(
            "coder_feedback",
            round=last["round"],
            fence=prompts.FENCES[fmt],
            code=code or "(no program was found in your answer)",
            feedback=state["feedback"],
        )
    return [SystemMessage(prompts.coder_system(fmt)), HumanMessage(request)]


@traced("write_code")
def write_code(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask the code writer for a program; save its answer and the extracted code in attempts/NN/."""
    ctx = runtime.context or RunContext()
    rnd = state.get("round", 0) + 1
    fmt = state["format"]
    folder = attempt_dir(state["run_dir"], rnd)
    label = str(ctx.llm)
    try:
        model = resolve_model(ctx.llm, "coder", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
        label = describe_model(model)
        answer = message_text(call_model(model.invoke, coder_messages(state, fmt)))
    except Exception as exc:  # any provider error ends the run with a clear message, never a traceback
        error = f"the code writer ({label}) failed: {type(exc).__name__}: {str(exc)[:2000]}"
        (folder / ERROR_FILE).write_text(error + "\n", encoding="utf-8")
        return {
            "round": rnd,
            "attempts": [{"round": rnd, "status": "model_error", "error": error, "model": label}],
            "status": "failed",
            "error": error + " - check the model name, its server or API key, and the network",
            "route": "finalize",
            "why": "code writer model call failed",
            TRACE_KEY: {"model": label},
        }
    (folder / ANSWER_FILE).write_text(answer, encoding="utf-8")
    code = extract_code(answer, fmt)
    record: dict[str, Any] = {"round": rnd, "model": label, "status": "pending" if code else "no_code"}
    if code:
        code_path = folder / CODE_NAMES[fmt]
        code_path.write_text(code + "\n", encoding="utf-8")
        record["code_path"] = rel(state["run_dir"], code_path)
    else:
        record["error"] = "the model's answer contained no program (prose only)"
        (folder / ERROR_FILE).write_text(record["error"] + "\n", encoding="utf-8")
    return {
        "round": rnd,
        "attempts": [record],
        "route": "repair",
        "why": f"{len(code)} chars of {fmt} code" if code else "no code in the answer",
        TRACE_KEY: {"model": label, "answer_chars": len(answer)},
    }
