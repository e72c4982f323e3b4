"""write_code: the code writer (LLM) turns the prompt, plus feedback on the last attempt, into a program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import formats, prompts
from coco_agent.codeblocks import MAX_ANSWER_CHARS, extract_program, fenced_blocks
from coco_agent.context import RunContext
from coco_agent.formats.choose import AUTO, from_answer
from coco_agent.models import describe_model, resolve_model
from coco_agent.models.calls import call_model
from coco_agent.models.content import message_text
from coco_agent.rundir import ANSWER_FILE, ERROR_FILE
from coco_agent.runs import attempt_dir, rel
from coco_agent.trace import TRACE_KEY, traced


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
            fence="" if fmt == AUTO else formats.get(fmt).fence,
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
        messages = coder_messages(state, fmt)
    except OSError as exc:  # coco-agent's own prompt files: not the model's fault, and the message says so
        return _failed(rnd, folder, label, f"coco-agent's prompt templates cannot be read: {exc}", "")
    try:
        model = resolve_model(ctx.llm, "coder", base_url=ctx.base_url, timeout=ctx.model_timeout_s)
        label = describe_model(model)
        answer = message_text(call_model(model.invoke, messages))
    except Exception as exc:  # any provider error ends the run with a clear message, never a traceback
        error = f"the code writer ({label}) failed: {type(exc).__name__}: {str(exc)[:2000]}"
        return _failed(
            rnd, folder, label, error, " - check the model name, its server or API key, and the network"
        )
    kept = answer if len(answer) <= MAX_ANSWER_CHARS else answer[:MAX_ANSWER_CHARS] + "\n"
    if kept is not answer:
        kept += f"[... {len(answer) - MAX_ANSWER_CHARS:,} more characters of the answer dropped]\n"
    (folder / ANSWER_FILE).write_text(kept, encoding="utf-8")
    chosen: dict[str, Any] = {}
    if fmt == AUTO:  # the code writer chose the format: the fence language of its answer says which
        fmt, why = chosen_format(answer)
        chosen = {"format": fmt, "format_choice": {"format": fmt, "by": "code writer", "why": why}}
    found = extract_program(answer, fmt)  # capped and linear: a hostile answer costs no host CPU to speak of
    code = found.code
    record: dict[str, Any] = {"round": rnd, "model": label, "status": "pending" if code else "no_code"}
    if code:
        code_path = folder / formats.get(fmt).code_file
        code_path.write_text(code + "\n", encoding="utf-8")
        record["code_path"] = rel(state["run_dir"], code_path)
    else:
        record["error"] = found.why
        (folder / ERROR_FILE).write_text(record["error"] + "\n", encoding="utf-8")
    return {
        **chosen,
        "round": rnd,
        "attempts": [record],
        "route": "repair",
        "why": f"{len(code)} chars of {fmt} code" if code else f"no code in the answer: {found.why}",
        TRACE_KEY: {"model": label, "answer_chars": len(answer), **chosen},
    }


def chosen_format(answer: str) -> tuple[str, str]:
    """The format a code writer asked to choose picked (formats/choose.py from_answer), and why."""
    if len(answer) > MAX_ANSWER_CHARS:
        return formats.DEFAULT, "the answer is over the size limit; no format was read from it"
    blocks = [(lang, body) for lang, body in fenced_blocks(answer.replace("\r\n", "\n")) if body.strip()]
    lang, body = max(blocks, key=lambda block: len(block[1])) if blocks else ("", answer)
    return from_answer(lang, body)


def _failed(rnd: int, folder, label: str, error: str, hint: str) -> dict[str, Any]:
    """The update that ends the run when no answer could be had (error.txt keeps the reason)."""
    (folder / ERROR_FILE).write_text(error + "\n", encoding="utf-8")
    return {
        "round": rnd,
        "attempts": [{"round": rnd, "status": "model_error", "error": error, "model": label}],
        "status": "failed",
        "error": error + hint,
        "route": "finalize",
        "why": "code writer model call failed" if hint else "prompt templates missing",
        TRACE_KEY: {"model": label},
    }
