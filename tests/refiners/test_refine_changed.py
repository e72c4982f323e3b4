"""Re-refine only what changed: a refined run, edited in one label, keeps every pixel of its old final outside the
(dilated) region where the new draft differs; real tiny random inpainting pipeline, production loader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.fixtures_models import ScriptedChatModel
from support.programs import STORES_CHART, code_of

from coco_agent.context import RunContext
from coco_agent.human.edit import edit_run
from coco_agent.refiners.changed import DILATE, changed_mask, composite, grow, region_crop
from coco_agent.runner import start_run


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.slow
def test_an_edited_label_refines_only_its_region(tmp_path, tiny_img2img_dir):
    refiner = f"inpaint:{tiny_img2img_dir}"
    ctx = RunContext(
        llm=ScriptedChatModel([STORES_CHART]), vlm="none", sandbox="process", refiner=refiner, clip_model="none",
        refine_strength=0.9, refine_guard=False,
    )  # fmt: skip
    run_dir = tmp_path / "run"
    first = start_run("a bar chart of stores", ctx, run_dir)
    assert first["refinement"]["kept"] is True
    old_final, old_draft = pixels(run_dir / "final.png"), pixels(run_dir / "attempts/01/draft.png")
    assert (old_final != old_draft).any()  # the refiner really changed the picture

    result = edit_run(run_dir, code_of(STORES_CHART).replace("Stores 2025", "Stores 2026"), ctx=ctx)
    record = result["refinement"]
    assert result["status"] == "accepted" and record["kept"] is True
    region = record["region"]
    assert region["previous_final"] == "edits/01/replaced/final.png" and region["dilate"] == DILATE
    assert 0 < region["region_fraction"] < 0.25  # a title, not the picture

    new_final, new_draft = pixels(run_dir / "final.png"), pixels(run_dir / "attempts/02/draft.png")
    changed = np.any(old_draft != new_draft, axis=2)
    mask = grow(changed, DILATE)
    saved = pixels(run_dir / "edits/01/changed.png")[..., 0] > 0
    assert (saved == mask).all()  # the mask the run recorded is the one computed here from the two drafts
    assert (new_final[~mask] == old_final[~mask]).all()  # byte equality outside the dilated mask
    assert (new_final[mask] != old_final[mask]).any()  # and the changed region was refined again
    assert (new_final[mask] != new_draft[mask]).any()  # by the refiner, not just pasted from the draft
    assert record["settings"]["seed"] == first["refinement"]["settings"]["seed"] == ctx.seed

    # --full-refine refines the whole new draft again: pixels far from the change differ from the old final
    full = edit_run(
        run_dir, code_of(STORES_CHART).replace("Stores 2025", "Stores 2027"), ctx=ctx, full_refine=True
    )
    assert "region" not in full["refinement"] and full["refinement"]["kept"] is True
    assert (pixels(run_dir / "final.png")[~mask] != old_final[~mask]).any()


@pytest.mark.slow
def test_an_unchanged_draft_keeps_the_old_final_as_it_is(tmp_path, tiny_img2img_dir):
    ctx = RunContext(
        llm=ScriptedChatModel([STORES_CHART]), vlm="none", sandbox="process", refiner=f"inpaint:{tiny_img2img_dir}",
        clip_model="none", refine_strength=0.9, refine_guard=False,
    )  # fmt: skip
    run_dir = tmp_path / "run"
    start_run("a bar chart of stores", ctx, run_dir)
    old = (run_dir / "final.png").read_bytes()
    result = edit_run(run_dir, code_of(STORES_CHART) + "# a comment only\n", ctx=ctx)
    assert result["refinement"]["region"]["changed_pixels"] == 0
    assert (run_dir / "final.png").read_bytes() == old


def test_region_pieces():
    old = Image.new("RGB", (64, 48), "white")
    new = old.copy()
    new.putpixel((30, 20), (0, 0, 0))
    change = changed_mask(old, new, dilate=3)
    assert change.changed_pixels == 1 and change.region_pixels == 49
    assert change.mask[17:24, 27:34].all() and not change.mask[16, 30] and not change.mask[20, 34]
    crop = region_crop(change.mask, multiple=8, context=4)
    x0, y0, x1, y1 = crop
    assert (x1 - x0) % 8 == 0 and (y1 - y0) % 8 == 0 and x0 <= 23 and x1 >= 38 and y0 <= 13 and y1 >= 28
    refined = Image.new("RGB", (x1 - x0, y1 - y0), (255, 0, 0))
    out = np.asarray(composite(old, refined, crop, change.mask))
    assert (out[change.mask] == (255, 0, 0)).all() and (out[~change.mask] == 255).all()
    with pytest.raises(ValueError, match="differ in size"):
        changed_mask(old, Image.new("RGB", (10, 10)))
