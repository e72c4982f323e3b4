"""review_draft / review_final: a person looks before it counts (``--review draft|refine|all``).

Both pass straight through unless the run context's ``review`` names their point. Then the node writes RUN/
review.json (what waits: the draft, its critique, the planned refinement; or the refined image against the
draft) and pauses the run with LangGraph ``interrupt()``; the pause is a checkpoint, so it survives the
process (SIGKILL, a reboot) and any front end answers it: `coco review`, the studio, the LangGraph SDK
(``Command(resume=...)``). The answer is one of:

- ``{"action": "accept"}``: the draft goes on to refinement / the refined image becomes the result;
- ``{"action": "reject", "feedback": "what is wrong"}``: to the code writer as feedback, a new round;
- ``{"action": "edit", "code": "...", "format"?: "svg"}``: the person's program is the next round's attempt
  (``source: "human"``), repaired, run, checked and critiqued like any other.

A malformed answer is not guessed at: the node pauses again, the payload's ``error`` saying why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from coco_agent.context import RunContext
from coco_agent.errors import EditRefused
from coco_agent.human.program import checked_program, write_attempt
from coco_agent.nodes.check import critic_enabled
from coco_agent.rundir import REVIEW_FILE
from coco_agent.runs import now, write_json
from coco_agent.trace import TRACE_KEY, traced

ACTIONS = ("accept", "reject", "edit")
MAX_FEEDBACK = 4000  # characters of a person's feedback passed to the code writer


def review_draft(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Before refinement: a person accepts the chosen draft, rejects it with feedback, or edits its program."""
    ctx = runtime.context or RunContext()
    if not ctx.reviews("draft"):
        return {}  # not asked: the decision already taken (refine) stands
    return _review_draft(state, runtime)


def review_final(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """After refinement: a person accepts the refined image, rejects it with feedback, or edits the program."""
    ctx = runtime.context or RunContext()
    if not ctx.reviews("refine"):
        return {}
    return _review_final(state, runtime)


@traced("review_draft")
def _review_draft(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context or RunContext()
    best = _attempt(state, state.get("best_round"))
    payload = {
        "point": "draft",
        "round": state.get("round"),
        "draft_round": best.get("round"),
        "draft": best.get("draft_path"),
        "code": best.get("code_path"),
        "format": state.get("format"),
        "verdict": best.get("verdict"),
        "critic": critic_enabled(ctx),
        "decision": {"status": state.get("status"), "why": state.get("why", "")},
        "planned_refinement": planned_refinement(state, ctx),
    }
    answer = _ask(state, payload)
    return _outcome(state, answer, "draft", best, "refine")


@traced("review_final")
def _review_final(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    best = _attempt(state, state.get("best_round"))
    refinement = state.get("refinement") or {}
    payload = {
        "point": "refine",
        "round": state.get("round"),
        "draft_round": best.get("round"),
        "draft": best.get("draft_path"),
        "code": best.get("code_path"),
        "format": state.get("format"),
        "verdict": best.get("verdict"),
        "refined": refinement.get("refined"),
        "final": state.get("final_path"),
        "refinement": refinement,
        "decision": {"status": state.get("status"), "why": refinement.get("why", "")},
    }
    answer = _ask(state, payload)
    return _outcome(state, answer, "refine", best, "finalize")


def planned_refinement(state: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """What refine will do with the draft: refiner, strength level and why, text kept (no model is loaded)."""
    refiner = ctx.refiner or "none"
    if refiner.strip().lower() == "none":
        return {"refiner": "none", "what": "no refiner: the final image is the draft"}
    from coco_agent.nodes.split_text import text_mode_for
    from coco_agent.refiners.policy import choose_strength

    choice = choose_strength(state.get("prompt", ""), ctx.refine_strength, list(state.get("texts") or []))
    text_mode = text_mode_for(state, ctx)
    plan = {
        "refiner": refiner,
        "strength": choice.as_dict(),
        "text_mode": text_mode.as_dict(),
        "seed": ctx.seed,
        "guard": ctx.refine_guard,
    }
    previous = (state.get("edits") or [{}])[-1].get("previous")
    if previous:
        plan["what"] = "only the regions that changed since the edited run's draft are refined again"
    return plan


def _ask(state: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Write review.json, pause, and return a well-formed answer (pausing again, with the error, until one)."""
    path = Path(state["run_dir"]) / REVIEW_FILE
    payload = {**payload, "actions": list(ACTIONS), "since": now()}
    write_json(path, payload)
    answer = interrupt(payload)
    while True:
        problem = answer_problem(answer, state)
        if not problem:
            break
        write_json(path, {**payload, "error": problem})
        answer = interrupt({**payload, "error": problem})
    path.unlink(missing_ok=True)
    return answer


def answer_problem(answer: Any, state: dict[str, Any]) -> str:
    """Why an answer cannot be taken ("" when it can)."""
    if not isinstance(answer, dict) or answer.get("action") not in ACTIONS:
        return f"answer with {{'action': one of {', '.join(ACTIONS)}}}, not {str(answer)[:200]!r}"
    if answer["action"] == "reject" and not str(answer.get("feedback") or "").strip():
        return "a rejection needs its feedback: what is wrong with the picture"
    if answer["action"] == "edit":
        try:
            checked_program(answer.get("code") or "", state.get("format") or "", answer.get("format"))
        except (EditRefused, ValueError) as exc:
            return f"the edited program cannot be used: {exc}"
    return ""


def _outcome(
    state: dict[str, Any], answer: dict[str, Any], point: str, best: dict[str, Any], onward: str
) -> dict[str, Any]:
    rnd = state.get("round", 0)
    what = "draft" if point == "draft" else "refined image"
    review = {"point": point, "action": answer["action"], "at": now()}
    mark = [{"round": best["round"], "reviews": [*(best.get("reviews") or []), review]}] if best else []
    if answer["action"] == "accept":
        why = f"a person accepted the {what} of round {best.get('round')}"
        return {"attempts": mark, "route": onward, "why": why, TRACE_KEY: {"review": review}}
    reset = {"status": "running", "best_round": None, "final_path": None, "refinement": None, "error": ""}
    if answer["action"] == "reject":
        feedback = str(answer["feedback"]).strip()[:MAX_FEEDBACK]
        review["feedback"] = feedback
        why = f"a person rejected the {what} of round {best.get('round')} -> round {rnd + 1}"
        told = f"A person reviewing the {what} rejected it:\n{feedback}"
        return {
            **reset,
            "attempts": mark,
            "feedback": told,
            "route": "write_code",
            "why": why,
            TRACE_KEY: {"review": review},
        }
    code, fmt = checked_program(answer["code"], state["format"], answer.get("format"))
    record = write_attempt(state["run_dir"], rnd + 1, code, fmt, reviewed_from=point)
    why = f"a person edited the program at the {point} review -> round {rnd + 1} (source human)"
    return {
        **reset,
        "round": rnd + 1,
        "format": fmt,
        "attempts": [*mark, record],
        "feedback": "",
        "route": "repair",
        "why": why,
        TRACE_KEY: {"review": review, "source": "human"},
    }


def _attempt(state: dict[str, Any], rnd: int | None) -> dict[str, Any]:
    return next((a for a in state.get("attempts") or [] if a.get("round") == rnd), {})
