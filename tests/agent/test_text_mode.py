"""--text-mode: what becomes of the draft's text in refinement (nodes/split_text.py, refiners/text_layer.py).

layered: the refiner gets the draft drawn without its text and the text goes back on top, at its own pixels;
protect: the refiner gets the draft (inpainting keeps the text boxes); free: nothing is kept. The runs use the
real process sandbox, the real local OCR in the guardrail, and a stand-in refiner loaded through the refiner
cache that blurs and tints everything it is given, text included, and remembers what it got.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps
from support.fixtures_models import ScriptedChatModel
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR

import coco_agent.refiners as refiners
from coco_agent.context import RunContext
from coco_agent.refiners.base import RefineOutput
from coco_agent.refiners.policy import choose_text_mode
from coco_agent.runner import start_run

PROMPT = "A cafe poster on a dark wall with the big words 'OPEN LATE' and 'FRESH BREWS' below"
POSTER = """```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(6.4, 3.6), dpi=100, facecolor="#203050")
fig.patches.append(plt.Circle((0.85, 0.75), 0.12, transform=fig.transFigure, color="#e0a030"))
fig.text(0.4, 0.62, "OPEN LATE", ha="center", va="center", fontsize=44, weight="bold", color="white")
fig.text(0.4, 0.3, "FRESH BREWS", ha="center", va="center", fontsize=30, weight="bold", color="#ffd070")
plt.savefig("poster.png")
```"""
# a patch of fresh noise each run: two renders differ in thousands of pixels outside the text, always (a
# rectangle at a random place differed by too little about one run in 25, when the two places were close)
RANDOM = POSTER.replace(
    'plt.savefig("poster.png")',
    "import numpy as np\nnoise = fig.add_axes([0.02, 0.02, 0.2, 0.2])\nnoise.imshow(np.random.rand(24, 24, 3))\n"
    'noise.axis("off")\nplt.savefig("poster.png")',
)


class SmearRefiner:
    """Blurs and tints the whole picture it is given (its text too), and keeps what it got."""

    name = "test-smear-refiner"

    def __init__(self) -> None:
        self.seen: list = []

    def refine(self, request) -> RefineOutput:
        self.seen.append(request)
        tinted = ImageOps.colorize(request.draft.convert("L"), black="#301010", white="#f0d0a0")
        return RefineOutput(image=tinted.filter(ImageFilter.GaussianBlur(6)), settings={"strength": 0.5})


def _run(tmp_path, monkeypatch, mode: str, program: str = POSTER) -> tuple[dict, SmearRefiner]:
    refiner = SmearRefiner()
    monkeypatch.setattr(refiners, "_load", lambda key: refiner)
    refiners.clear_refiner_cache()
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[program]),
        vlm="none",
        sandbox="process",
        refiner="test-smear-refiner",
        clip_model="none",
        ocr_engine="rapidocr",
        text_mode=mode,
    )
    try:
        start_run(PROMPT, ctx, tmp_path / "run")
    finally:
        refiners.clear_refiner_cache()
    return json.loads((tmp_path / "run/result.json").read_text()), refiner


def _pixels(path, mode: str = "RGB") -> np.ndarray:
    with Image.open(path) as opened:
        return np.asarray(opened.convert(mode), dtype=int)


@pytest.mark.skipif(not HAS_RAPIDOCR, reason=NO_RAPIDOCR)
def test_layered_text_survives_a_refiner_that_smears_everything(tmp_path, monkeypatch):
    result, refiner = _run(tmp_path, monkeypatch, "layered")
    run, record = tmp_path / "run", result["refinement"]
    mode = record["text_mode"]
    assert mode["mode"] == "layered" and mode["source"] == "user" and not mode.get("refused")
    assert (run / mode["bare"]).name == "draft_bare.png" and (run / mode["layer"]).name == "text_layer.png"
    # the refiner never saw a glyph: what it got is the bare draft, which differs from the draft at the text
    (request,) = refiner.seen
    assert request.protect == []
    bare, draft = _pixels(run / mode["bare"]), _pixels(run / record["draft"])
    assert (np.asarray(request.draft.convert("RGB"), dtype=int) == bare).all()
    layer = _pixels(run / mode["layer"], "RGBA")
    core = layer[..., 3] == 255
    assert core.sum() > 1000 and (np.abs(draft - bare).max(axis=2)[core] > 50).all()
    # the final: the refiner's picture with the text's own pixels on top, read by the guardrail's OCR
    assert record["kept"] is True, record["why"]
    assert record["text_layer"] == {"composited": True}
    final, refined_bare = _pixels(run / "final.png"), _pixels(run / "refined_bare.png")
    assert np.abs(final[core] - draft[core]).max() <= 1
    clear = layer[..., 3] == 0
    assert np.abs(final[clear] - refined_bare[clear]).max() <= 1
    assert record["scores"]["refined"]["text"]["score"] == 1.0
    # the editable deliverable sets the words live over the refiner's own picture: nothing to erase, no ghost
    svg = result["deliverables"]["svg"]
    assert svg["background"] == "without text (layered)" and svg["strings"] == 2
    embedded = (run / "final.svg").read_text().split('href="data:image/png;base64,')[1].split('"')[0]
    with Image.open(io.BytesIO(base64.b64decode(embedded))) as background:
        assert (np.asarray(background.convert("RGB"), dtype=int) == refined_bare).all()
    trace = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    nodes = [t.get("node") for t in trace]
    assert nodes.index("split_text") + 1 == nodes.index("refine")
    refine = next(t for t in trace if t.get("node") == "refine")
    assert refine["text_mode"] == "layered" and refine["text_layered"] is True


@pytest.mark.skipif(not HAS_RAPIDOCR, reason=NO_RAPIDOCR)
def test_protect_gives_the_refiner_the_text_and_the_guardrail_keeps_the_draft(tmp_path, monkeypatch):
    """The same refiner on the draft with its text: the words blur away, the guardrail sees it, the draft stays."""
    result, refiner = _run(tmp_path, monkeypatch, "protect")
    record = result["refinement"]
    assert record["text_mode"]["mode"] == "protect"
    (request,) = refiner.seen
    draft = _pixels(tmp_path / "run" / record["draft"])
    assert (np.asarray(request.draft.convert("RGB"), dtype=int) == draft).all()
    assert request.protect  # the sandbox's text boxes, for inpainting families
    assert record["kept"] is False and "text" in record["why"]
    assert not (tmp_path / "run/refined_bare.png").exists()
    assert result["deliverables"]["svg"]["background"] == "the final picture, its text erased"


def test_free_keeps_nothing_back(tmp_path, monkeypatch):
    result, refiner = _run(tmp_path, monkeypatch, "free")
    assert result["refinement"]["text_mode"]["mode"] == "free"
    (request,) = refiner.seen
    assert request.protect == [] and request.protect_source == "none (text mode free)"


def test_a_program_that_draws_differently_each_run_falls_back_to_protect(tmp_path, monkeypatch):
    result, refiner = _run(tmp_path, monkeypatch, "layered", RANDOM)
    mode = result["refinement"]["text_mode"]
    assert mode["mode"] == "protect" and "outside its text boxes" in mode["refused"]
    (request,) = refiner.seen
    assert request.protect  # protected as today
    assert not list((tmp_path / "run").rglob("text_layer.png"))


@pytest.mark.parametrize(
    ("prompt", "mode"),
    [
        ("A bar chart of sales by region", "protect"),
        ("A conference poster titled 'Deep Sea' with the date", "layered"),
        ("A neon sign reading 'OPEN' above a rainy street", "layered"),
        ("A lighthouse on a cliff at dusk", "protect"),
    ],
)
def test_the_mode_follows_the_prompt_kind(prompt: str, mode: str):
    choice = choose_text_mode(prompt)
    assert choice.mode == mode and choice.source == "auto"


def test_the_users_mode_wins_and_a_format_without_layers_protects():
    assert choose_text_mode("A lighthouse at dusk", "layered").mode == "layered"
    fallback = choose_text_mode("A poster titled 'Deep Sea'", "auto", layers=False)
    assert fallback.mode == "protect" and "cannot be drawn without its text" in fallback.why
    with pytest.raises(ValueError, match="unknown text mode"):
        choose_text_mode("x", "smudge")
    with pytest.raises(ValueError, match="unknown text mode"):
        RunContext(text_mode="smudge").validate()


# Programs that never paint a background: transparent pixels stored as (0, 0, 0, 0), as PIL and cairosvg write them
TRANSPARENT = {
    "pil": """```python
from PIL import Image, ImageDraw, ImageFont
image = Image.new("RGBA", (640, 360), (0, 0, 0, 0))
draw = ImageDraw.Draw(image)
draw.ellipse((480, 40, 600, 160), fill=(224, 160, 48, 255))
draw.text((60, 100), "OPEN LATE", fill=(0, 0, 0, 255), font=ImageFont.truetype("DejaVuSans-Bold.ttf", 60))
draw.text((60, 220), "FRESH BREWS", fill=(0, 0, 0, 255), font=ImageFont.truetype("DejaVuSans-Bold.ttf", 40))
image.save("poster.png")
```""",
    "svg": """```svg
<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360">
  <circle cx="540" cy="100" r="60" fill="#e0a030"/>
  <text x="60" y="160" font-family="DejaVu Sans" font-weight="bold" font-size="60" fill="#000000">OPEN LATE</text>
  <text x="60" y="260" font-family="DejaVu Sans" font-weight="bold" font-size="40" fill="#000000">FRESH BREWS</text>
</svg>
```""",
}


@pytest.mark.skipif(not HAS_RAPIDOCR, reason=NO_RAPIDOCR)
@pytest.mark.parametrize(("draft_format", "mode"), [("pil", "free"), ("pil", "protect"), ("svg", "layered")])
def test_a_transparent_draft_reaches_the_refiner_on_white(
    tmp_path, monkeypatch, draft_format: str, mode: str
):
    """Black text on a transparent canvas: the critic sees it on white, and so must the refiner (the draft, or
    in layered mode the draft without its text); on black its words would vanish into the background."""
    refiner = SmearRefiner()
    monkeypatch.setattr(refiners, "_load", lambda key: refiner)
    refiners.clear_refiner_cache()
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[TRANSPARENT[draft_format]]), vlm="none", sandbox="process",
        refiner="test-smear-refiner", clip_model="none", ocr_engine="rapidocr", text_mode=mode,
        format=draft_format,
    )  # fmt: skip
    try:
        start_run(PROMPT, ctx, tmp_path / "run")
    finally:
        refiners.clear_refiner_cache()
    result = json.loads((tmp_path / "run/result.json").read_text())
    record = result["refinement"]
    with Image.open(tmp_path / "run" / record["draft"]) as opened:
        assert opened.mode == "RGBA" and opened.getpixel((5, 5)) == (0, 0, 0, 0), opened.getpixel((5, 5))
    assert record["text_mode"]["mode"] == mode, record["text_mode"]
    (request,) = refiner.seen
    assert request.draft.convert("RGB").getpixel((5, 5)) == (255, 255, 255)  # on white, as the critic saw it
    if mode == "layered":
        assert record["text_layer"] == {"composited": True}, record
        final = _pixels(tmp_path / "run" / "final.png")
        layer = _pixels(tmp_path / "run" / record["text_mode"]["layer"], "RGBA")
        core = layer[..., 3] == 255
        assert (
            core.sum() > 1000 and final[core].max() < 60
        )  # the black words, crisp, over the refined picture
