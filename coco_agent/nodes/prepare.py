"""prepare: validate the prompt and lay out the run directory."""

from __future__ import annotations

import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from coco_agent.context import RunContext
from coco_agent.formats.choose import AUTO, Choice, classify
from coco_agent.trace import TRACE_KEY, traced

MAX_PROMPT_CHARS = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_prompt(text: str) -> str:
    """Normalise a prompt: NFC, no control characters, trimmed."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text or "")).strip()


def prompt_problem(prompt: str) -> str:
    """Why a prompt cannot be drawn, or "" when it can."""
    if not prompt:
        return "the prompt is empty: pass the text of the picture to draw"
    if len(prompt) > MAX_PROMPT_CHARS:
        return (
            f"the prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}. "
            "Shorten it to the picture's content (data, labels, layout)"
        )
    return ""


@traced("prepare")
def prepare(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Check the prompt (empty, huge), pick the code format and create the run directory."""
    ctx = runtime.context or RunContext()
    prompt = clean_prompt(state.get("prompt", ""))
    run_dir = state.get("run_dir") or str(Path(ctx.runs_dir) / _run_name(runtime))
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    fmt = state.get("format") or ctx.format
    choice = classify(prompt) if fmt == AUTO else Choice(fmt, "given with --format", {}, by="user")
    update: dict[str, Any] = {
        "prompt": prompt,
        "run_dir": run_dir,
        "format": choice.format or AUTO,  # still auto: the code writer chooses (nodes/write_code.py)
        "format_choice": choice.as_dict(),
        "round": 0,
        "status": "running",
    }
    problem = prompt_problem(prompt)
    if problem:
        update |= {"status": "failed", "error": problem, "route": "finalize", "why": problem}
    else:
        update |= {"route": "write_code", "why": f"prompt ok ({len(prompt)} chars)"}
    update[TRACE_KEY] = {"format": update["format"], "format_choice": update["format_choice"]}
    return update


def _run_name(runtime: Runtime[RunContext]) -> str:
    info = getattr(runtime, "execution_info", None)
    thread = getattr(info, "thread_id", None) if info else None
    return f"run-{thread or uuid.uuid4().hex[:12]}"
