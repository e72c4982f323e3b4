"""The budget gate on routing: a decision to start a new round (or to call the critic) becomes a clean stop
(status ``budget``) when the run's or the batch's budget says so. Used by every node that routes."""

from __future__ import annotations

from typing import Any

from coco_agent.ledger.budget import check
from coco_agent.routing import Decision, stop_for_budget


def gate(decision: Decision, state: dict[str, Any], ctx: Any) -> Decision:
    """``decision``, or the budget stop that replaces it (``state`` as the deciding node sees it)."""
    if decision.route == "write_code":
        stop = check(ctx, state, "write_code", "coder")
    elif decision.route == "critique":
        calls = 2 if getattr(ctx, "critique", "single") == "split" else 1
        stop = check(ctx, state, "critique", "critic", calls=calls)
    else:
        return decision
    if stop is None:
        return decision
    record = stop.as_dict(decision.route, int(state.get("round") or 0))
    return stop_for_budget(state, stop.reason, record, decision.extra.get("feedback", ""))
