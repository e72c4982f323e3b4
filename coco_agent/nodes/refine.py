"""refine: hand the accepted (or best) draft to the refiner; final.png is the result."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from PIL import Image

from coco_agent.context import RunContext
from coco_agent.refiners import load_refiner
from coco_agent.refiners.base import RefineRequest
from coco_agent.runs import FINAL_FILE
from coco_agent.trace import TRACE_KEY, traced

REFINED_FILE = "refined.png"


@traced("refine")
def refine(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Refine the chosen draft. A refiner failure keeps the draft as the final image and says why."""
    ctx = runtime.context or RunContext()
    run_dir = Path(state["run_dir"])
    best = next(a for a in state["attempts"] if a["round"] == state["best_round"])
    draft_path = run_dir / best["draft_path"]
    final_path = run_dir / FINAL_FILE
    record: dict[str, Any] = {"refiner": ctx.refiner, "draft": best["draft_path"]}
    if ctx.refiner in ("", "none", None):
        shutil.copyfile(draft_path, final_path)
        record |= {"kept": False, "why": "no refiner (--refiner none): the final image is the draft"}
    else:
        try:
            refiner = load_refiner(ctx.refiner)
            with Image.open(draft_path) as draft:
                request = RefineRequest(
                    draft=draft.convert("RGB"),
                    prompt=state["prompt"],
                    strength=ctx.refine_strength,
                    seed=ctx.seed,
                )
                output = refiner.refine(request)
            output.image.save(run_dir / REFINED_FILE)
            shutil.copyfile(run_dir / REFINED_FILE, final_path)
            record |= {"kept": True, "refined": REFINED_FILE, "settings": output.settings, "why": "refined"}
        except Exception as exc:  # never lose the draft over a refiner problem
            shutil.copyfile(draft_path, final_path)
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
            record |= {"kept": False, "error": error, "why": "refiner failed; the final image is the draft"}
    return {
        "final_path": FINAL_FILE,
        "refinement": record,
        "route": "finalize",
        "why": record["why"],
        TRACE_KEY: {"refiner": ctx.refiner},
    }
