"""refine: turn the accepted (or best) draft into the final image, and keep it only when it holds up.

The strength follows the prompt kind (refiners/policy.py) unless the user set it; the refined image is scored
against the draft (refiners/guardrail.py) and the draft stays final when text accuracy or CLIP got worse. Then
each stated string the program drew is read again inside its own box, in the draft and the refined image
(facts/regions.py): with the guardrail on, a region that reads worse keeps the draft too. refined.png stays in
the run directory either way; result.json's `refinement` record says what and why.

Layered text (split_text made the layers): the refiner gets the draft without its text, the text layer is
composited over what it makes (refined_bare.png), and that composite is refined.png, judged like any other.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from PIL import Image

from coco_agent.context import RunContext
from coco_agent.geometry import expected_strings
from coco_agent.models.content import flatten_rgb
from coco_agent.nodes.refine_changed import previous_final, refine_changed_regions
from coco_agent.refiners.base import RefineRequest
from coco_agent.refiners.batching import RefineJob, current_service
from coco_agent.refiners.policy import choose_strength
from coco_agent.refiners.text_layer import TextLayer
from coco_agent.refiners.text_regions import padded_and_merged
from coco_agent.rundir import FINAL_FILE, REFINED_BARE_FILE, REFINED_FILE
from coco_agent.runs import read_json, write_bytes
from coco_agent.sandbox.base import clean_text_boxes
from coco_agent.sandbox.png import ImageRejected, decode_png, read_bounded, read_png
from coco_agent.trace import TRACE_KEY, traced


@traced("refine")
def refine(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Refine the chosen draft at a strength fit for the prompt; keep the result only if the scores hold."""
    ctx = runtime.context or RunContext()
    run_dir = Path(state["run_dir"])
    best = next(a for a in state["attempts"] if a["round"] == state["best_round"])
    draft_path = run_dir / best["draft_path"]
    record: dict[str, Any] = {"refiner": ctx.refiner, "draft": best["draft_path"]}
    if state.get("text_mode") and ctx.refiner not in ("", "none", None):
        record["text_mode"] = state["text_mode"]
    if ctx.refiner in ("", "none", None):
        record |= {"kept": False, "why": "no refiner (--refiner none): the final image is the draft"}
    else:
        previous = previous_final(state)  # after `coco edit` of a refined run: only what changed
        regional = None
        if previous:
            regional = refine_changed_regions(state, ctx, draft_path, run_dir, previous, sandbox_text_regions)
        if regional is not None:
            record |= regional
        else:
            record |= refine_and_verify(state, ctx, draft_path, run_dir)
            record |= region_check(state, ctx, draft_path, run_dir, record)
    final_path: str | None = FINAL_FILE
    if record["kept"]:  # written by this process from the refiner's pixels
        shutil.copyfile(run_dir / REFINED_FILE, run_dir / FINAL_FILE)
    else:  # the draft as the host decodes it now (it may have been replaced since it was checked)
        limits = ctx.limits()
        try:
            clean = read_png(draft_path, limits.max_pixels, limits.max_png_bytes)
            write_bytes(run_dir / FINAL_FILE, clean.png)
        except ImageRejected as exc:
            final_path = None
            record["why"] += f"; but the draft cannot be read back ({exc}): no final image"
    strength = record.get("strength") or {}
    trace = {
        "refiner": ctx.refiner,
        "decision": "refined" if record["kept"] else "draft",
        "strength": strength.get("strength"),
        "strength_level": strength.get("level"),
        "strength_why": strength.get("why"),
        "text_mode": (record.get("text_mode") or {}).get("mode"),
        "text_layered": (record.get("text_layer") or {}).get("composited"),
    }
    regions = record.get("regions") or {}
    if regions.get("checked") is not None:
        trace["regions_checked"], trace["regions_worse"] = regions["checked"], regions.get("worse")
    return {
        "final_path": final_path,
        "refinement": record,
        "route": "finalize",
        "why": record["why"],
        TRACE_KEY: {k: v for k, v in trace.items() if v is not None},
    }


def refine_and_verify(
    state: dict[str, Any], ctx: RunContext, draft_path: Path, run_dir: Path
) -> dict[str, Any]:
    """Choose the strength, run the refiner, save refined.png, and judge it against the draft."""
    texts = list(state.get("texts") or [])
    choice = choose_strength(state["prompt"], ctx.refine_strength, texts)
    record: dict[str, Any] = {"strength": choice.as_dict()}
    if choice.strength <= 0:
        return record | {"kept": False, "why": f"not refined: {choice.why}"}
    try:
        limits = ctx.limits()
        draft = decode_png(
            read_bounded(draft_path, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes
        )
        draft = flatten_rgb(draft)  # transparency onto white, as the critic saw it (not black)
        strength = (
            choice.strength if choice.source == "user" else None
        )  # None: the family's value for the level
        text_mode = state.get("text_mode") or {}
        layer = text_layer(run_dir, text_mode, draft, limits, state["best_round"])
        if text_mode.get("mode") == "layered" and layer is None:
            record["text_layer"] = {"composited": False, "why": "the layers do not fit this draft: protected"}
        if layer is not None or text_mode.get("mode") == "free":
            protect = []  # nothing to keep: the text is not in the picture, or may be redrawn
        else:
            protect = sandbox_text_regions(run_dir, state["best_round"], state["attempts"], draft.size)
        request = RefineRequest(
            draft=layer.bare if layer is not None else draft,
            prompt=state["prompt"],
            strength=strength,
            level=choice.level,
            seed=ctx.seed,
            protect=protect,
            protect_source="sandbox"
            if protect
            else f"none (text mode {text_mode.get('mode')})"
            if protect == []
            else None,
        )
        job = RefineJob(
            refiner=ctx.refiner,
            request=request,
            texts=texts,
            guard=ctx.refine_guard,
            margin=ctx.refine_margin,
            ocr_engine=ctx.ocr_engine,
            clip_model=ctx.clip_model,
            layer=layer,
        )
        # the process's refine service: at once (generate), a queue batching across runs (batch), a GPU actor
        outcome = current_service().refine(job)
        if outcome.image is not None:
            outcome.image.save(run_dir / REFINED_FILE)
        if outcome.bare is not None:
            outcome.bare.save(run_dir / REFINED_BARE_FILE)
    except Exception as exc:  # never lose the draft over a refiner problem
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
        return record | {"kept": False, "error": error, "why": "refiner failed; the final image is the draft"}
    if outcome.image is not None:
        record["refined"] = REFINED_FILE
    return record | outcome.record


def region_check(
    state: dict[str, Any], ctx: RunContext, draft_path: Path, run_dir: Path, record: dict[str, Any]
) -> dict[str, Any]:
    """The stated strings read again box by box in the draft and refined.png (``regions``); with the guardrail on,
    a kept refined image in which one reads worse is dropped for the draft. {} when there is nothing to check."""
    best = next(a for a in state["attempts"] if a["round"] == state["best_round"])
    expected = expected_strings(state.get("prompt", ""), state.get("texts"))
    geometry_path = (best.get("geometry") or {}).get("path")
    if not record.get("refined") or not expected or not geometry_path:
        return {}
    from coco_agent.facts.regions import check_regions
    from coco_agent.scoring.ocr import OcrUnavailable

    try:
        limits = ctx.limits()
        texts = read_json(run_dir / geometry_path).get("texts") or []
        draft = decode_png(
            read_bounded(draft_path, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes
        )
        with Image.open(
            run_dir / REFINED_FILE
        ) as opened:  # written by this process from the refiner's pixels
            refined = opened.convert("RGB")
        regions = check_regions(draft, refined, texts, expected, ctx.ocr_engine)
    except (OcrUnavailable, ImageRejected, OSError, ValueError, AttributeError) as exc:
        return {"regions": {"available": False, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}}
    update: dict[str, Any] = {"regions": regions}
    if regions["worse"] and record.get("kept") and ctx.refine_guard:
        update |= {"kept": False, "why": "kept the draft: " + "; ".join(regions["problems"][:3])}
    return update


def text_layer(
    run_dir: Path, text_mode: dict[str, Any], draft: Image.Image, limits: Any, best_round: int
) -> TextLayer | None:
    """The layers split_text made for this draft (the bare draft, the text layer); None for no layered text, or
    when they do not fit it (another round, another size, unreadable): then the text is protected as usual."""
    if text_mode.get("mode") != "layered" or not text_mode.get("layer") or not text_mode.get("bare"):
        return None
    if text_mode.get("round") != best_round:
        return None
    try:
        bare = read_png(run_dir / text_mode["bare"], limits.max_pixels, limits.max_png_bytes)
        with Image.open(io.BytesIO(bare.png)) as opened:
            bare_image = flatten_rgb(opened.convert("RGBA"))  # on white, as the draft
        with Image.open(run_dir / text_mode["layer"]) as opened:  # written by this process (split_text)
            layer = opened.convert("RGBA")
    except (ImageRejected, OSError, ValueError):
        return None
    if bare_image.size != draft.size or layer.size != draft.size:
        return None
    return TextLayer(layer=layer, draft=draft, bare=bare_image)


def sandbox_text_regions(
    run_dir: Path, best_round: int, attempts: list[dict[str, Any]], size: tuple[int, int]
) -> list[tuple[int, int, int, int]] | None:
    """The regions inpainting keeps: the text boxes the sandbox reported for the draft (attempts/NN/
    text_boxes.json), padded and merged; None (OCR decides) when it reported none or they are unknown."""
    best = next((a for a in attempts if a["round"] == best_round), {})
    path = best.get("text_boxes_path")
    if not path:
        return None
    try:
        saved = read_json(run_dir / path)
        boxes = clean_text_boxes(saved.get("boxes"), *size) if saved.get("size") == list(size) else None
    except (OSError, ValueError, AttributeError):
        return None
    return padded_and_merged(boxes, size) if boxes else None
