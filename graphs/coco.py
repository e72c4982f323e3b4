"""Entry point named in langgraph.json: `langgraph dev` serves this graph (it supplies its own checkpointer)."""

from coco_agent.graph import build_graph

graph = build_graph().compile()
