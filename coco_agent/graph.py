"""The CoCo agent as a LangGraph StateGraph. Export the uncompiled builder; callers add their checkpointer.

prepare -> write_code -> repair -> execute -> check -> critique -> review_draft -> split_text -> refine -> review_final -> finalize
               ^           ^           |         |          |            |                                      |
               |           +-----------+         |          |            |                                      |  (repair-and-rerun)
               +---------------------------------+----------+------------+--------------------------------------+  (retry; routing.py)

split_text decides what becomes of the draft's text in refinement (layered / protect / free; nodes/split_text.py).

review_draft and review_final pass straight through unless the run context asks a person (``review``): then
they pause the run with ``interrupt()`` (nodes/review.py); the answer accepts, rejects with feedback for the
code writer, or brings an edited program (to repair, as a new round).

With --candidates N > 1, write_code fans out instead (LangGraph Send), one task per candidate, rendered in
parallel, and a join ranks them:  write_code => candidate x N => select -> critique | write_code | review_draft | finalize
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from coco_agent.context import RunContext
from coco_agent.nodes.candidate import candidate, candidate_input
from coco_agent.nodes.check import check
from coco_agent.nodes.critique import critique
from coco_agent.nodes.execute import execute
from coco_agent.nodes.finalize import finalize
from coco_agent.nodes.prepare import prepare
from coco_agent.nodes.refine import refine
from coco_agent.nodes.repair import repair
from coco_agent.nodes.review import review_draft, review_final
from coco_agent.nodes.select import select
from coco_agent.nodes.split_text import split_text
from coco_agent.nodes.write_code import write_code
from coco_agent.state import AgentInput, AgentState


def after_prepare(state: dict[str, Any]) -> Literal["write_code", "finalize"]:
    return state["route"]


def after_write_code(state: dict[str, Any]) -> Literal["repair", "finalize"] | list[Send]:
    """One program goes to repair; a round of candidates fans out, one ``candidate`` task each."""
    if state["route"] == "candidates":
        records = state["attempts"][-1].get("candidates") or []
        return [Send("candidate", candidate_input(state, record)) for record in records]
    return state["route"]


def after_select(state: dict[str, Any]) -> Literal["write_code", "critique", "review_draft", "finalize"]:
    return _gated(state["route"])


def after_execute(state: dict[str, Any]) -> Literal["check", "repair", "finalize"]:
    return state["route"]


def after_check(state: dict[str, Any]) -> Literal["write_code", "critique", "review_draft", "finalize"]:
    return _gated(state["route"])


def after_critique(state: dict[str, Any]) -> Literal["write_code", "review_draft", "finalize"]:
    return _gated(state["route"])


def after_review_draft(state: dict[str, Any]) -> Literal["split_text", "write_code", "repair", "finalize"]:
    """An accepted draft goes to refinement by way of split_text (the text mode, layered text's layers)."""
    return "split_text" if state["route"] == "refine" else state["route"]


def after_review_final(state: dict[str, Any]) -> Literal["finalize", "write_code", "repair"]:
    return state["route"]


def _gated(route: str) -> str:
    """A draft on its way to refinement passes the draft review first (a pass-through unless asked for)."""
    return "review_draft" if route == "refine" else route


def build_graph(context_schema: type[RunContext] = RunContext) -> StateGraph:
    """The uncompiled graph. Compile with your own checkpointer: ``build_graph().compile(checkpointer=...)``.

    ``context_schema`` is what a context given as a dict becomes: ``RunContext`` as it is, or a subclass such
    as ``coco_agent.environment.EnvContext`` (fills what is left out from the environment; `langgraph dev`).
    """
    builder = StateGraph(AgentState, context_schema=context_schema, input_schema=AgentInput)
    builder.add_node("prepare", prepare)
    builder.add_node("write_code", write_code)
    builder.add_node("repair", repair)
    builder.add_node("execute", execute)
    builder.add_node("check", check)
    builder.add_node("candidate", candidate)
    builder.add_node("select", select)
    builder.add_node("critique", critique)
    builder.add_node("review_draft", review_draft)
    builder.add_node("split_text", split_text)
    builder.add_node("refine", refine)
    builder.add_node("review_final", review_final)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", after_prepare)
    builder.add_conditional_edges("write_code", after_write_code, ["repair", "finalize", "candidate"])
    builder.add_edge("candidate", "select")
    builder.add_conditional_edges("select", after_select)
    builder.add_edge("repair", "execute")
    builder.add_conditional_edges("execute", after_execute)
    builder.add_conditional_edges("check", after_check)
    builder.add_conditional_edges("critique", after_critique)
    builder.add_conditional_edges("review_draft", after_review_draft)
    builder.add_edge("split_text", "refine")
    builder.add_edge("refine", "review_final")
    builder.add_conditional_edges("review_final", after_review_final)
    builder.add_edge("finalize", END)
    return builder
