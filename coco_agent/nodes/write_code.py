"""write_code: the code writer (LLM) turns the prompt, plus feedback on the last attempt, into a program.

With ``--candidates N`` it asks for N programs at once (as many as the budget still covers): one request with
``n`` where the provider takes it, else parallel requests at varied temperature and seed (ledger/meter.py);
each answer goes to attempts/NN/cand-K/ and the candidates fan out to be rendered in parallel (graph.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import formats, prompts
from coco_agent.codeblocks import MAX_ANSWER_CHARS, extract_program, fenced_blocks
from coco_agent.context import RunContext
from coco_agent.formats.choose import AUTO, from_answer
from coco_agent.ledger.budget import affordable
from coco_agent.ledger.meter import Site, invoke, invoke_many
from coco_agent.ledger.prices import load_prices
from coco_agent.models import describe_model, model_for
from coco_agent.models.content import message_text
from coco_agent.models.sampling import Sampling, candidate_samplings
from coco_agent.rundir import ANSWER_FILE, ERROR_FILE, attempt_folder
from coco_agent.runs import attempt_dir, rel
from coco_agent.trace import TRACE_KEY, traced


def coder_messages(state: dict[str, Any], fmt: str) -> list:
    """System rules for the format, the request, and (after round 1) what went wrong: with the last program
    to patch it (the critic's strategy ``patch``, the default), or without it to start over (``rewrite``)."""
    request = prompts.render("coder_task", prompt=state["prompt"])
    attempts = state.get("attempts") or []
    if attempts and state.get("feedback"):
        last = attempts[-1]
        if state.get("strategy") == "rewrite":
            request += "\n\n" + prompts.render(
                "coder_rewrite", round=last["round"], feedback=state["feedback"]
            )
        else:
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
    """Ask the code writer for a program (or N candidates); save the answers and programs in attempts/NN/."""
    ctx = runtime.context or RunContext()
    rnd = state.get("round", 0) + 1
    fmt = state["format"]
    folder = attempt_dir(state["run_dir"], rnd)
    label = str(ctx.llm)
    try:
        messages = coder_messages(state, fmt)
    except OSError as exc:  # coco-agent's own prompt files: not the model's fault, and the message says so
        return _failed(rnd, folder, label, f"coco-agent's prompt templates cannot be read: {exc}", "")
    site = Site(state["run_dir"], "write_code", rnd, "coder", prices=load_prices(ctx.prices))
    wanted = ctx.candidates
    n = affordable(ctx, state, wanted) if wanted > 1 else 1
    try:
        model = model_for(ctx, "coder")
        label = describe_model(model)
        if wanted > 1:
            samplings = candidate_samplings(Sampling.of(ctx), n)
            answers, records = invoke_many(site, model, messages, n, samplings)
        else:
            answer, record = invoke(site, model, messages)
            answers, records = [answer], [record]
    except Exception as exc:  # any provider error ends the run with a clear message, never a traceback
        error = f"the code writer ({label}) failed: {type(exc).__name__}: {str(exc)[:2000]}"
        return _failed(
            rnd, folder, label, error, " - check the model name, its server or API key, and the network"
        )
    texts = [message_text(a) for a in answers]
    trace = {"model": label, "answer_chars": [len(t) for t in texts] if wanted > 1 else len(texts[0])}
    trace["calls"] = records
    chosen: dict[str, Any] = {}
    if fmt == AUTO:  # the code writer chose the format: the fence language of its (first) answer says which
        fmt, why_format = chosen_format(texts[0])
        chosen = {"format": fmt, "format_choice": {"format": fmt, "by": "code writer", "why": why_format}}
        trace.update(chosen)
    elif (state.get("format_choice") or {}).get("by") == "classifier":  # a suggestion: the writer may differ
        other = answered_instead(texts[0], fmt)
        if other:
            why_format = (
                f"the prompt read as {fmt} ({state['format_choice'].get('why', '')}), but the code writer "
                f"answered with a {other} program and no {fmt} one: {other}"
            )
            fmt = other
            chosen = {
                "format": fmt,
                "format_choice": {"format": fmt, "by": "code writer", "why": why_format[:500]},
            }
            trace.update(chosen)
    if wanted == 1:
        record, why = keep_answer(state["run_dir"], rnd, None, fmt, texts[0], label)
        return {
            **chosen,
            "round": rnd,
            "attempts": [record],
            "route": "repair",
            "why": why,
            "calls": records,
            TRACE_KEY: trace,
        }
    candidates = []
    for k, text in enumerate(texts, start=1):
        record, _ = keep_answer(state["run_dir"], rnd, k, fmt, text, label)
        candidates.append(record)
    asked = f"{n} of {wanted} candidates (the budget covers {n})" if n < wanted else f"{n} candidates"
    got = sum(1 for c in candidates if c.get("code_path"))
    why = f"{asked}: {got} with a program, {len(candidates) - got} without"
    attempt = {"round": rnd, "model": label, "status": "pending", "candidates": candidates}
    trace["candidates"] = len(candidates)
    return {
        **chosen,
        "round": rnd,
        "attempts": [attempt],
        "route": "candidates",
        "why": why,
        "calls": records,
        TRACE_KEY: trace,
    }


def keep_answer(
    run_dir: str, rnd: int, cand: int | None, fmt: str, answer: str, label: str
) -> tuple[dict[str, Any], str]:
    """Save one answer (answer.md) and the program found in it (code.<suffix>) in its attempt folder; the
    attempt's record and a line for the trace."""
    folder = attempt_folder(run_dir, rnd, cand)
    kept = answer if len(answer) <= MAX_ANSWER_CHARS else answer[:MAX_ANSWER_CHARS] + "\n"
    if kept is not answer:
        kept += f"[... {len(answer) - MAX_ANSWER_CHARS:,} more characters of the answer dropped]\n"
    (folder / ANSWER_FILE).write_text(kept, encoding="utf-8")
    found = extract_program(answer, fmt)  # capped and linear: a hostile answer costs no host CPU to speak of
    code = found.code
    record: dict[str, Any] = {"round": rnd, "model": label, "status": "pending" if code else "no_code"}
    if cand:
        record["cand"] = cand
    if code:
        code_path = folder / formats.get(fmt).code_file
        code_path.write_text(code + "\n", encoding="utf-8")
        record["code_path"] = rel(run_dir, code_path)
    else:
        record["error"] = found.why
        (folder / ERROR_FILE).write_text(record["error"] + "\n", encoding="utf-8")
    why = f"{len(code)} chars of {fmt} code" if code else f"no code in the answer: {found.why}"
    return record, why


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


def answered_instead(answer: str, suggested: str) -> str | None:
    """The format of a fenced program of another format in `answer` when it holds none of the `suggested` one
    (the classifier's choice, not the user's), else None."""
    if len(answer) > MAX_ANSWER_CHARS:
        return None
    found = extract_program(answer, suggested).code
    if found and formats.guess(found) == suggested:
        return None  # it answered in the suggested format
    lang, body = largest_block(answer)
    if not lang:
        return None
    name, _ = from_answer(lang, body)
    return name if name != suggested and extract_program(answer, name).code else None


def chosen_format(answer: str) -> tuple[str, str]:
    """The format a code writer asked to choose picked (formats/choose.py from_answer), and why. With
    ``--candidates N`` the first answer's choice holds for the whole round."""
    if len(answer) > MAX_ANSWER_CHARS:
        return formats.DEFAULT, "the answer is over the size limit; no format was read from it"
    return from_answer(*largest_block(answer))


def largest_block(answer: str) -> tuple[str, str]:
    """The fence language and body of the answer's largest non-empty fenced block; ("", answer) when none."""
    blocks = [(lang, body) for lang, body in fenced_blocks(answer.replace("\r\n", "\n")) if body.strip()]
    return max(blocks, key=lambda block: len(block[1])) if blocks else ("", answer)
