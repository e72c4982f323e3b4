"""split_text: before refinement, decide what becomes of the draft's text, and for layered text separate it.

The text mode comes from the user (--text-mode) or the prompt kind (refiners/policy.py). For ``layered``, the
chosen program runs once more in the sandbox with its text hidden (same limits, same layout); the host checks
that this render differs from the draft only inside the draft's text boxes and solves the text layer
(refiners/text_layer.py). attempts/NN/draft_bare.png and text_layer.png are written; the refine node gives the
refiner the bare draft and composites the layer over what comes back. When the split is refused (a program that
draws differently each time, a format that cannot hide its text, no reported text boxes), the run goes on with
``protect`` and the record says why. Runs here, before refine, so a Ray engine's draft stage (which owns the
sandbox) does it and the GPU stage only refines.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from PIL import Image

from coco_agent import formats
from coco_agent.context import RunContext
from coco_agent.nodes.refine_changed import previous_final
from coco_agent.refiners.policy import TextModeChoice, choose_strength, choose_text_mode
from coco_agent.refiners.text_layer import LayerRefused
from coco_agent.refiners.text_layer import split_text as solve_layer
from coco_agent.rundir import BARE_DRAFT_FILE, TEXT_LAYER_FILE
from coco_agent.runs import read_json, rel, write_bytes
from coco_agent.sandbox import get_sandbox
from coco_agent.sandbox.base import clean_text_boxes
from coco_agent.sandbox.png import ImageRejected, read_png
from coco_agent.trace import TRACE_KEY, traced


@traced("split_text")
def split_text(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The text mode of this run's refinement; for layered text, the bare draft and the text layer."""
    ctx = runtime.context or RunContext()
    if ctx.refiner in ("", "none", None):
        return {"route": "refine", "why": "no refiner: nothing to decide", TRACE_KEY: {"mode": None}}
    texts = list(state.get("texts") or [])
    fmt = state.get("format") or "matplotlib"
    choice = text_mode_for(state, ctx)
    record: dict[str, Any] = choice.as_dict()
    if choice.mode == "layered":
        if choose_strength(state.get("prompt", ""), ctx.refine_strength, texts).strength <= 0:
            record["why"] += "; not refined at this strength, so nothing to separate"
        elif previous_final(state):
            record |= {"mode": "protect", "why": record["why"] + "; but an edited run refines only what changed "
                       "since its last final, with the text kept as before"}  # fmt: skip
        else:
            try:
                record |= _separate(state, ctx, fmt)
            except Exception as exc:  # never lose the run over the split: protect the text instead
                record["refused"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if record.get("refused"):
                record["mode"] = "protect"
    return {
        "text_mode": record,
        "route": "refine",
        "why": f"text {record['mode']}: {record.get('refused') or record['why']}",
        TRACE_KEY: {"mode": record["mode"], "source": record["source"], "refused": record.get("refused")},
    }


def text_mode_for(state: dict[str, Any], ctx: RunContext) -> TextModeChoice:
    """The run's text mode: the user's, else by prompt kind; layered only where the format can hide its text."""
    fmt = state.get("format") or ""
    layers = fmt in formats.FORMATS and formats.get(fmt).text_layers
    return choose_text_mode(state.get("prompt", ""), ctx.text_mode, list(state.get("texts") or []), layers)


def _separate(state: dict[str, Any], ctx: RunContext, fmt: str) -> dict[str, Any]:
    """Draw the chosen program again without its text and solve the text layer; {"refused": why} when not."""
    run_dir = Path(state["run_dir"])
    best = next(a for a in state["attempts"] if a["round"] == state["best_round"])
    if not best.get("code_path") or not best.get("draft_path"):
        return {"refused": "the chosen attempt has no program or draft"}
    limits = ctx.limits()
    try:
        draft = read_png(run_dir / best["draft_path"], limits.max_pixels, limits.max_png_bytes)
        boxes = _text_boxes(run_dir, best, (draft.width, draft.height))
        code = (run_dir / best["code_path"]).read_text(encoding="utf-8")
        result = get_sandbox(ctx.sandbox).render(
            code, fmt, dataclasses.replace(limits, hide_text=True, facts=False)
        )
    except (ImageRejected, OSError, ValueError, RuntimeError) as exc:
        return {"refused": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if not result.ok:
        return {
            "refused": f"the program without its text did not render ({result.status}: {result.error[:300]})"
        }
    if not result.text_hidden:
        return {"refused": "the sandbox drew the picture with its text (its renderer cannot hide it)"}
    try:
        # in-memory images, not closed: the layer keeps the two renders (transparency flattened onto white)
        layer = solve_layer(Image.open(io.BytesIO(draft.png)), Image.open(io.BytesIO(result.png)), boxes)
    except LayerRefused as exc:
        return {"refused": str(exc)}
    folder = (run_dir / best["draft_path"]).parent
    write_bytes(folder / BARE_DRAFT_FILE, result.png)
    buffer = io.BytesIO()
    layer.layer.save(buffer, format="PNG")
    write_bytes(folder / TEXT_LAYER_FILE, buffer.getvalue())
    return {
        "bare": rel(run_dir, folder / BARE_DRAFT_FILE),
        "layer": rel(run_dir, folder / TEXT_LAYER_FILE),
        "round": best["round"],
        "render_seconds": round(result.seconds, 3),
        **layer.record(),
    }


def _text_boxes(run_dir: Path, attempt: dict[str, Any], size: tuple[int, int]) -> list:
    """The draft's text boxes as the sandbox reported them ([] when it reported none)."""
    path = attempt.get("text_boxes_path")
    if not path:
        return []
    saved = read_json(run_dir / path)
    if saved.get("size") != list(size):
        return []
    return clean_text_boxes(saved.get("boxes"), *size) or []
