"""After refinement, each stated string is read again by OCR inside the box the program drew it in, in the draft
and in the refined image (coco_agent/facts/regions.py): a smudged label is named with its place even when the
same words still show elsewhere, so the global text score would not see it.

The runs use the real process sandbox (matplotlib reports each drawn string and its box) and the real local
OCR; the refiner is a stand-in loaded through the refiner cache that smudges one box, or changes nothing.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw, ImageFilter
from support.fixtures_models import ScriptedChatModel
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, font

import coco_agent.refiners as refiners
from coco_agent.context import RunContext
from coco_agent.facts.regions import check_regions, locate
from coco_agent.refiners.base import RefineOutput
from coco_agent.runner import start_run

pytestmark = pytest.mark.skipif(not HAS_RAPIDOCR, reason=NO_RAPIDOCR)

PROMPT = "A shop window poster with a big banner 'GRAND OPENING' and the same words on a small door sign"
POSTER = """```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(6.4, 3.6), dpi=100)
fig.text(0.5, 0.72, "GRAND OPENING", ha="center", va="center", fontsize=40, weight="bold")
fig.text(0.8, 0.2, "GRAND OPENING", ha="center", va="center", fontsize=16, weight="bold")
plt.savefig("output.png")
```"""


def _text(text: str, box: list[int]) -> dict:
    return {"text": text, "box": box, "container": None, "font_px": 20.0, "rotation": 0.0, "color": None}


def test_each_stated_string_is_found_in_the_tightest_text_that_holds_it():
    texts = [_text("Grand Opening Saturday", [0, 0, 400, 60]), _text("grand opening!", [10, 200, 150, 230])]
    found, skipped = locate(texts, ["GRAND OPENING", "Free coffee"])
    assert [(f["text"], f["box"]) for f in found] == [("GRAND OPENING", [10, 200, 150, 230])]
    assert skipped == ["Free coffee"]


def _sign(words: str) -> Image.Image:
    image = Image.new("RGB", (480, 200), "white")
    ImageDraw.Draw(image).text((20, 20), words, fill="black", font=font(36))
    ImageDraw.Draw(image).text((20, 120), "OPEN DAILY", fill="black", font=font(36))
    return image


def test_a_smudged_box_is_worse_and_an_untouched_one_is_not():
    draft = _sign("FRESH BREWS")
    texts = [_text("FRESH BREWS", [20, 28, 311, 54]), _text("OPEN DAILY", [20, 128, 260, 154])]
    smudged = draft.copy()
    smudged.paste(draft.crop((20, 124, 264, 158)).filter(ImageFilter.GaussianBlur(9)), (20, 124))
    result = check_regions(draft, smudged, texts, ["FRESH BREWS", "OPEN DAILY"], "rapidocr")
    assert result["checked"] == 2 and result["worse"] == ["OPEN DAILY"]
    assert "'OPEN DAILY' at (20, 128)-(260, 154) reads" in result["problems"][0]
    regions = {r["text"]: r for r in result["regions"]}
    assert regions["FRESH BREWS"]["draft"] == regions["FRESH BREWS"]["refined"] == 1.0
    assert regions["OPEN DAILY"]["draft"] == 1.0 > regions["OPEN DAILY"]["refined"]
    same = check_regions(draft, draft.copy(), texts, ["FRESH BREWS", "OPEN DAILY"], "rapidocr")
    assert same["worse"] == [] and same["problems"] == []


class BoxRefiner:
    """Returns the draft with the small door sign blurred away (``smudge``), or unchanged."""

    name = "test-box-refiner"

    def __init__(self, smudge: bool) -> None:
        self.smudge = smudge

    def refine(self, request) -> RefineOutput:
        image = request.draft.copy()
        if self.smudge:
            box = (400, 230, 620, 330)  # the small sign: right, low (fig.text at 0.8, 0.2 of 640x360)
            image.paste(image.crop(box).filter(ImageFilter.GaussianBlur(10)), box[:2])
        return RefineOutput(image=image, settings={"strength": 0.3})


def _run(tmp_path, monkeypatch, smudge: bool) -> tuple[dict, dict]:
    monkeypatch.setattr(refiners, "_load", lambda key: BoxRefiner(smudge))
    refiners.clear_refiner_cache()
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[POSTER]),
        vlm="none",
        sandbox="process",
        refiner="test-box-refiner",
        clip_model="none",
        ocr_engine="rapidocr",
        text_mode="protect",  # the refiner sees the text (layered text never lets it near: test_text_mode.py)
    )
    try:
        result = start_run(PROMPT, ctx, tmp_path / "run")
    finally:
        refiners.clear_refiner_cache()
    return result, json.loads((tmp_path / "run/result.json").read_text())


def test_a_refiner_that_smudges_one_stated_box_leaves_the_draft_final(tmp_path, monkeypatch):
    """The banner still shows GRAND OPENING, so the global text score holds (1.0 -> 1.0); the door sign, the
    tightest box holding the string, reads worse: the region check keeps the draft and says where."""
    result, saved = _run(tmp_path, monkeypatch, smudge=True)
    record = result["refinement"]
    assert record["scores"]["refined"]["text"]["score"] == 1.0  # the global check alone would keep it
    assert record["kept"] is False and record["why"].startswith("kept the draft: 'GRAND OPENING' at (")
    assert record["regions"]["worse"] == ["GRAND OPENING"] and record["regions"]["checked"] == 1
    run = tmp_path / "run"
    assert (run / "final.png").read_bytes() != (run / "refined.png").read_bytes()
    assert saved["refinement"]["regions"] == record["regions"]
    trace = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    refine = next(t for t in trace if t.get("node") == "refine")
    assert refine["regions_worse"] == ["GRAND OPENING"] and refine["decision"] == "draft"


def test_a_refiner_that_keeps_every_box_readable_is_kept(tmp_path, monkeypatch):
    result, _ = _run(tmp_path, monkeypatch, smudge=False)
    record = result["refinement"]
    assert record["kept"] is True, record["why"]
    assert record["regions"]["checked"] == 1 and record["regions"]["worse"] == []
    assert (tmp_path / "run/final.png").read_bytes() == (tmp_path / "run/refined.png").read_bytes()
