"""The agent's state: paths and small records only, never image bytes (checkpoints stay small)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, TypedDict

RunStatus = Literal["running", "accepted", "max_rounds", "budget", "failed"]
Route = Literal[
    "write_code", "repair", "execute", "check", "critique", "refine", "finalize", "candidates", "select"
]


def merge_attempts(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer: attempts are keyed by round; a later record for the same round updates it."""
    merged = {a["round"]: dict(a) for a in old or []}
    for item in new or []:
        merged.setdefault(item["round"], {}).update(item)
    return [merged[k] for k in sorted(merged)]


def merge_candidates(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer: candidates are keyed by (round, cand); a later record for the same one updates it."""
    merged = {(c["round"], c["cand"]): dict(c) for c in old or []}
    for item in new or []:
        merged.setdefault((item["round"], item["cand"]), {}).update(item)
    return [merged[k] for k in sorted(merged)]


class AgentInput(TypedDict):
    """What a caller passes in: the prompt, and optionally the run directory and the code format."""

    prompt: str
    run_dir: NotRequired[str]
    format: NotRequired[str]
    texts: NotRequired[list[str]]


class AgentState(TypedDict, total=False):
    """Everything the graph carries between nodes.

    `attempts` holds one record per round: code_path, draft_path, status, error, checks, verdict, feedback,
    repairs (the repair records; code_orig_path when the program was changed).
    `route` and `why` hold the last routing decision (routers only read them; nodes decide and trace).
    `edits`: the `coco edit`s on the way to this state (human/edit.py), each ``{"number", "from_round",
    "round", "previous"?}``; an attempt a person wrote carries ``source: "human"``.
    `calls` holds the ledger record of every model call the run went on with (coco_agent/ledger/records.py);
    `candidates` one record per candidate of a round (--candidates N); `strategy` the critic's repair strategy
    for the next round (patch / rewrite); `budget_stop` why and where a budget stopped the run.
    """

    prompt: str
    texts: list[str]
    format: str
    format_choice: dict[str, Any]  # who chose the format and why (the user, the classifier, the code writer)
    run_dir: str
    round: int
    attempts: Annotated[list[dict[str, Any]], merge_attempts]
    feedback: str
    route: Route
    why: str
    status: RunStatus
    error: str
    best_round: int
    final_path: str
    refinement: dict[str, Any]
    text_mode: dict[str, Any]  # what becomes of the draft's text in refinement (nodes/split_text.py)
    edits: list[dict[str, Any]]
    timings: Annotated[list[dict[str, Any]], operator.add]
    calls: Annotated[list[dict[str, Any]], operator.add]
    candidates: Annotated[list[dict[str, Any]], merge_candidates]
    strategy: str
    budget_stop: dict[str, Any]
