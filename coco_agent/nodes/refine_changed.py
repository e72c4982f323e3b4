"""The refine node's path after `coco edit` of a run that had a refined final: refine again only the regions that
changed since the draft that final was made from (refiners/changed.py), with the same refiner and seed, and
keep every other pixel of the old final exactly. ``--full-refine`` (the edit's ``full_refine``) skips it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from coco_agent.context import RunContext
from coco_agent.refiners.base import RefineRequest
from coco_agent.rundir import CHANGED_MASK_FILE, REFINED_FILE, edit_path


def previous_final(state: dict[str, Any]) -> dict[str, Any] | None:
    """What the latest edit left to keep (the old final and its draft), unless it asked for a full refine."""
    edits = state.get("edits") or []
    edit = edits[-1] if edits else {}
    if not edit or edit.get("full_refine") or not edit.get("previous"):
        return None
    return {**edit["previous"], "edit": edit.get("number")}


def refine_changed_regions(
    state: dict[str, Any],
    ctx: RunContext,
    draft_path: Path,
    run_dir: Path,
    previous: dict[str, Any],
    text_regions: Callable[..., list | None],
) -> dict[str, Any] | None:
    """The refinement record (as refine_and_verify's), or None when the drafts cannot be compared (another size,
    an old file gone): then the whole draft is refined as usual. ``text_regions``: the refine node's
    sandbox_text_regions (the draft's text, which inpainting keeps)."""
    from coco_agent.models.content import flatten_rgb
    from coco_agent.refiners import load_refiner
    from coco_agent.refiners.changed import changed_mask, composite, mask_image, region_crop
    from coco_agent.refiners.guardrail import verify
    from coco_agent.refiners.policy import choose_strength
    from coco_agent.sandbox.png import ImageRejected, decode_png, read_bounded

    limits = ctx.limits()

    def load(path: Path):
        data = read_bounded(path, limits.max_png_bytes)
        return flatten_rgb(decode_png(data, limits.max_pixels, limits.max_png_bytes))  # on white

    try:
        draft = load(draft_path)
        old_draft, old_final = load(run_dir / previous["draft"]), load(run_dir / previous["final"])
    except (ImageRejected, OSError, KeyError):
        return None
    if not (draft.size == old_draft.size == old_final.size):
        return None
    texts = list(state.get("texts") or [])
    choice = choose_strength(state["prompt"], ctx.refine_strength, texts)
    record: dict[str, Any] = {"strength": choice.as_dict()}
    if choice.strength <= 0:
        return record | {"kept": False, "why": f"not refined: {choice.why}"}
    change = changed_mask(old_draft, draft)
    region: dict[str, Any] = {"previous_final": previous["final"], "previous_draft": previous["draft"]}
    if change.empty:
        old_final.save(run_dir / REFINED_FILE)
        region |= change.as_dict(None)
        why = "the edited draft is the draft the old final was refined from: the old final is kept as it is"
        return record | {"refined": REFINED_FILE, "region": region, "kept": True, "why": why}
    try:
        refiner = load_refiner(ctx.refiner)
        family = getattr(refiner, "family", None)
        crop = region_crop(change.mask, getattr(family, "multiple", 8))
        x0, y0, x1, y1 = crop
        boxes = text_regions(run_dir, state["best_round"], state["attempts"], draft.size)
        protect = None
        if boxes is not None:
            inside = [(max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)) for b in boxes]
            protect = [(a - x0, b - y0, c - x0, d - y0) for a, b, c, d in inside if a < c and b < d]
        request = RefineRequest(
            draft=draft.crop(crop),
            prompt=state["prompt"],
            strength=choice.strength if choice.source == "user" else None,
            level=choice.level,
            seed=ctx.seed,
            protect=protect,
            protect_source="sandbox" if protect is not None else None,
            repaint=mask_image(change.mask).crop(crop),
        )
        output = refiner.refine(request)
        image = composite(old_final, output.image, crop, change.mask)
        image.save(run_dir / REFINED_FILE)
        if previous.get("edit"):
            mask_image(change.mask).save(edit_path(run_dir, previous["edit"]) / CHANGED_MASK_FILE)
    except Exception as exc:  # never lose the draft over a refiner problem
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
        return record | {"kept": False, "error": error, "why": "refiner failed; the final image is the draft"}
    region |= change.as_dict(crop)
    if previous.get("edit"):
        region["mask"] = f"{edit_path(Path('.'), previous['edit']).as_posix()}/{CHANGED_MASK_FILE}"
    record |= {"refined": REFINED_FILE, "settings": output.settings, "region": region}
    what = f"re-refined only what the edit changed ({region['region_fraction']:.1%} of the picture)"
    if not ctx.refine_guard:
        return record | {"kept": True, "why": f"{what}; not verified (guardrail turned off)"}
    verdict, scores = verify(
        draft, image, state["prompt"], texts, margin=ctx.refine_margin, ocr_engine=ctx.ocr_engine,
        clip_model=ctx.clip_model,
    )  # fmt: skip
    return record | {
        "kept": verdict.keep_refined,
        "why": f"{what}; {verdict.why}",
        "checks": verdict.checks,
        "scores": scores,
    }
