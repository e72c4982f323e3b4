"""select: the round's candidates ranked deterministically (candidates/ranking.py); the best becomes the round's
attempt, the best few that pass every check are the critic's shortlist, and the round is routed as a single
draft's would be (retry with the best candidate's problems, critique, accept, refine, stop)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from coco_agent.candidates.ranking import rank, shortlist, summary
from coco_agent.context import RunContext
from coco_agent.ledger.gate import gate
from coco_agent.nodes.check import critic_enabled
from coco_agent.routing import after_check
from coco_agent.rundir import RANKING_FILE, attempt_dir
from coco_agent.runs import write_json
from coco_agent.trace import TRACE_KEY, traced

# what the round's attempt takes from its chosen candidate
PROMOTED = (
    "cand",
    "status",
    "code_path",
    "code_orig_path",
    "draft_path",
    "error",
    "checks",
    "repairs",
    "width",
    "height",
    "sandbox",
    "render_seconds",
    "text_boxes_path",
    "text_boxes",
    "facts_path",
    "geometry",
    "ocr",
)


def promote(attempt: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The round's attempt with candidate ``record`` as its program and draft (other candidates stay listed)."""
    out = dict(attempt)
    out.update({k: record.get(k) for k in PROMOTED})  # None clears what an earlier choice left
    return out


@traced("select")
def select(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Rank the round's candidates, keep the ranking (attempts/NN/ranking.json), route the round."""
    ctx = runtime.context or RunContext()
    rnd = state["round"]
    mine = [c for c in state.get("candidates") or [] if c["round"] == rnd]
    ranked = rank(mine)
    table = [summary(c, position) for position, c in enumerate(ranked, start=1)]
    picks = shortlist(ranked)
    critic = critic_enabled(ctx)
    attempt = promote(state["attempts"][-1], ranked[0])
    attempt["candidates"] = [
        {
            "cand": c["cand"],
            "status": c.get("status"),
            "code_path": c.get("code_path"),
            "draft_path": c.get("draft_path"),
            "checks_ok": (c.get("checks") or {}).get("ok"),
            "geometry_ok": (c.get("geometry") or {}).get("ok"),
        }
        for c in sorted(mine, key=lambda c: c["cand"])
    ]
    attempt["ranking"] = [row["cand"] for row in table]
    attempt["shortlist"] = picks if critic else picks[:1]
    write_json(
        attempt_dir(state["run_dir"], rnd) / RANKING_FILE,
        {"round": rnd, "ranking": table, "shortlist": attempt["shortlist"], "order": "best first"},
    )
    view = {**state, "attempts": [*state["attempts"][:-1], attempt]}
    decision = gate(after_check(view, attempt, max_rounds=ctx.max_rounds, critic=critic), view, ctx)
    why = (
        f"best of {len(mine)}: candidate {ranked[0]['cand']}; shortlist {picks or 'empty'} -> {decision.why}"
    )
    decision.why = why[:1000]
    update: dict[str, Any] = {"attempts": [attempt], **decision.update()}
    if decision.route == "write_code":
        update["strategy"] = "patch"
    update[TRACE_KEY] = {
        "ranking": [row["cand"] for row in table],
        "shortlist": picks,
        "best": ranked[0]["cand"],
    }
    return update
