"""Entry point named in langgraph.json: `langgraph dev` serves this graph (it supplies its own checkpointer).

A request's context (``{"llm": ..., "vlm": ..., ...}``, all optional) becomes an ``EnvContext``: what it leaves
out comes from the server's environment (COCO_LLM, COCO_VLM, OPENAI_BASE_URL, ...) by the rule `coco generate`
uses (``coco_agent/environment.py``), so both choose the same models, the same default critic included.
"""

from coco_agent.environment import EnvContext
from coco_agent.graph import build_graph

graph = build_graph(context_schema=EnvContext).compile()
