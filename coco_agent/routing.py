"""Where the retry is decided. Nodes call these functions; the graph's routers only read ``state["route"]``.

The loop is bounded by ``state["round"]`` against ``RunContext.max_rounds``, never by recursion limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

NextNode = Literal["write_code", "critique", "refine", "finalize"]
FEEDBACK_TAIL = 2000  # characters of a traceback the code writer sees


@dataclass
class Decision:
    route: NextNode
    why: str
    extra: dict[str, Any] = field(default_factory=dict)

    def update(self) -> dict[str, Any]:
        return {"route": self.route, "why": self.why, **self.extra}


def after_check(state: dict[str, Any], attempt: dict[str, Any], *, max_rounds: int, critic: bool) -> Decision:
    """Route after the sandbox ran and the deterministic checks looked at the draft."""
    if attempt.get("status") != "ok":
        return retry_or_stop(
            state, max_rounds, execution_feedback(attempt), f"execution {attempt.get('status')}"
        )
    checks = attempt.get("checks") or {}
    if not checks.get("ok", False):
        problems = checks.get("problems") or ["the draft failed the deterministic checks"]
        return retry_or_stop(
            state, max_rounds, bullet(problems), "draft failed checks: " + "; ".join(problems)
        )
    geometry = geometry_problems(attempt)
    if geometry:
        feedback = "The renderer measured these text problems in your picture (fix each one):\n" + bullet(
            geometry
        )
        return retry_or_stop(
            state, max_rounds, feedback, "geometry checks failed: " + "; ".join(geometry)[:300]
        )
    if critic:
        return Decision("critique", "draft rendered and passed the deterministic checks")
    return accept(state, "no critic configured (--vlm none): deterministic checks passed")


def after_critique(state: dict[str, Any], verdict: dict[str, Any], *, max_rounds: int) -> Decision:
    """Route on the critic's verdict; an unreadable verdict leaves the decision to the deterministic checks."""
    if verdict.get("source") != "critic":
        return accept(state, "critic verdict unusable (" + verdict.get("summary", "") + "); checks passed")
    if verdict.get("match"):
        return accept(state, f"critic accepted (score {verdict.get('score')}): {verdict.get('summary', '')}")
    problems = verdict.get("problems") or [verdict.get("summary") or "the critic rejected the draft"]
    return retry_or_stop(state, max_rounds, bullet(problems), "critic rejected: " + "; ".join(problems)[:300])


def accept(state: dict[str, Any], why: str) -> Decision:
    return Decision("refine", why, {"status": "accepted", "best_round": state["round"]})


def retry_or_stop(state: dict[str, Any], max_rounds: int, feedback: str, reason: str) -> Decision:
    """Retry while rounds remain; else refine the best draft (flagged max_rounds), or fail with none."""
    rnd = state["round"]
    if rnd < max_rounds:
        return Decision(
            "write_code", f"{reason} -> retry (round {rnd + 1} of {max_rounds})", {"feedback": feedback}
        )
    best = best_attempt(state.get("attempts", []))
    if best is not None:
        why = f"{reason}; {max_rounds} rounds used -> refining best draft from round {best['round']}"
        return Decision(
            "refine", why, {"status": "max_rounds", "best_round": best["round"], "feedback": feedback}
        )
    last_error = (state.get("attempts") or [{}])[-1].get("error", "")
    error = f"no draft rendered in {max_rounds} round(s); last problem: {reason}. {last_error}".strip()
    return Decision(
        "finalize", f"{reason}; rounds exhausted with no draft", {"status": "failed", "error": error}
    )


def stop_for_budget(state: dict[str, Any], reason: str, stop: dict[str, Any], feedback: str = "") -> Decision:
    """A budget reached: refine the best draft so far (status budget, like max_rounds), or end with none.
    ``stop`` (why, by what, at which node and round) is kept for `coco resume` to continue from there."""
    best = best_attempt(state.get("attempts", []))
    extra: dict[str, Any] = {"status": "budget", "budget_stop": stop, "feedback": feedback}
    if best is not None:
        why = f"budget: {reason} -> refining best draft from round {best['round']}"
        return Decision("refine", why, {**extra, "best_round": best["round"]})
    error = f"stopped by its budget before any draft rendered: {reason}"
    return Decision("finalize", f"budget: {reason}; no draft yet", {**extra, "error": error})


def best_attempt(attempts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The draft to keep when no attempt was accepted: passing checks first, then fewer facts-check problems,
    then fewest geometry problems,
    then critic score, then latest."""
    drawn = [a for a in attempts if a.get("draft_path")]
    if not drawn:
        return None

    def rank(a: dict[str, Any]) -> tuple:
        verdict = a.get("verdict") or {}
        checks = a.get("checks") or {}
        facts = len((checks.get("facts") or {}).get("problems") or [])
        geometry = sum(((a.get("geometry") or {}).get("counts") or {}).values())
        return (bool(checks.get("ok")), -facts, -geometry, float(verdict.get("score") or 0), a["round"])

    return max(drawn, key=rank)


def geometry_problems(attempt: dict[str, Any]) -> list[str]:
    """The geometry checks' problems of an attempt (execute measured them: coco_agent/geometry.py)."""
    geometry = attempt.get("geometry") or {}
    return [] if geometry.get("ok", True) else list(geometry.get("problems") or ["the text layout failed"])


def execution_feedback(attempt: dict[str, Any]) -> str:
    """What the code writer hears about a failed execution: the traceback tail or 'drew nothing'."""
    status = attempt.get("status")
    error = (attempt.get("error") or "").strip()
    if status == "no_code":
        return "Your answer contained no program. Answer with exactly one fenced code block."
    if status == "no_image":
        return "The program ran but drew nothing: no figure or image was produced."
    if status == "timeout":
        return f"The program did not finish within the time limit and was stopped. {error}".strip()
    if status == "oom":
        return "The program ran out of memory and was stopped. Use less data and smaller arrays."
    if status == "rejected":
        return f"The program's output image was rejected: {error}"
    tail = error[-FEEDBACK_TAIL:]
    return f"The program crashed. Traceback (last lines):\n{tail}" if tail else "The program crashed."


def bullet(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)
