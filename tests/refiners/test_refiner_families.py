"""The per-family settings table, loaded through the production loader with tiny random pipelines."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageDraw
from support.fixtures_models import ScriptedChatModel
from support.paths import require
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, SIGN, SIGN_PROMPT

from coco_agent.context import RunContext
from coco_agent.refiners import RefineRequest, load_refiner
from coco_agent.refiners.diffusers_refiner import DiffusersRefiner
from coco_agent.refiners.families import FAMILIES, detect_family, instruction_for
from coco_agent.runner import start_run
from coco_agent.runs import read_json


@pytest.mark.parametrize(
    "class_name, name, hint, family",
    [
        ("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo", "", "sdxl-turbo"),
        ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0", "", "sdxl"),
        ("StableDiffusionPipeline", "some/sd15", "", "sd"),
        ("FluxKontextPipeline", "black-forest-labs/FLUX.1-Kontext-dev", "", "flux-kontext"),
        ("QwenImageEditPipeline", "Qwen/Qwen-Image-Edit", "", "qwen-image-edit"),
        ("StableDiffusionXLControlNetPipeline", "x/y", "", "sdxl-controlnet"),
        ("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo", "inpaint", "inpaint"),
        ("SomethingNew", "x/y", "", "img2img"),
    ],
)
def test_family_detection(class_name: str, name: str, hint: str, family: str) -> None:
    assert detect_family(class_name, name, hint).name == family


def test_table_settings() -> None:
    turbo = FAMILIES["sdxl-turbo"]
    assert (turbo.mode, turbo.steps, turbo.guidance_scale) == ("img2img", 4, 0.0)
    assert FAMILIES["flux-kontext"].mode == FAMILIES["qwen-image-edit"].mode == "instruction"
    assert FAMILIES["qwen-image-edit"].extra == {"true_cfg_scale": 4.0, "negative_prompt": " "}
    assert "Change nothing else" in instruction_for("a slide", "light") and "sketch" in instruction_for(
        "a cat", "strong"
    )


def _draft() -> Image.Image:
    image = Image.new("RGB", (96, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 40, 56), fill=(30, 90, 200))
    draw.text((50, 20), "OPEN", fill="black")
    return image


def test_inpainting_keeps_the_protected_pixels(tiny_img2img_dir) -> None:
    refiner = load_refiner(f"inpaint:{tiny_img2img_dir}")
    assert (
        refiner.family.name == "inpaint"
        and type(refiner.pipeline).__name__ == "StableDiffusionInpaintPipeline"
    )
    assert load_refiner(f"inpaint:{tiny_img2img_dir}/") is refiner
    draft = _draft()
    box = (48, 16, 80, 36)
    output = refiner.refine(
        RefineRequest(draft=draft, prompt="a shop sign", level="strong", protect=[box], steps=4)
    )
    assert output.image.size == draft.size
    assert output.image.crop(box).tobytes() == draft.crop(box).tobytes()  # the text region is the draft's
    assert ImageChops.difference(output.image, draft).getbbox() is not None  # the rest was repainted
    settings = output.settings
    assert (
        settings["mode"] == "inpaint" and settings["protected_regions"] == 1 and settings["strength"] == 0.95
    )


def test_instruction_editor_gets_an_instruction(tiny_kontext_dir) -> None:
    refiner = load_refiner(str(tiny_kontext_dir))
    assert refiner.family.name == "flux-kontext" and type(refiner.pipeline).__name__ == "FluxKontextPipeline"
    draft = Image.new("RGB", (70, 45), "white")
    output = refiner.refine(
        RefineRequest(draft=draft, prompt="a poster for a jazz night", level="light", steps=2)
    )
    assert output.image.size == (70, 45)
    settings = output.settings
    assert settings["mode"] == "instruction" and settings["size"] == [64, 32]
    assert settings["instruction"].startswith("Polish this image") and "jazz night" in settings["instruction"]
    assert "strength" not in settings and settings["guidance_scale"] == 2.5


@pytest.mark.slow
def test_qwen_image_edit_gets_an_instruction_and_true_cfg(tiny_qwen_edit_dir) -> None:
    """The saved Qwen-Image-Edit pipeline loads by directory, gets the instruction and a negative prompt."""
    refiner = load_refiner(str(tiny_qwen_edit_dir))
    assert refiner.family.name == "qwen-image-edit"
    assert type(refiner.pipeline).__name__ == "QwenImageEditPipeline"
    spied, seen = _spied(refiner)
    draft = Image.new("RGB", (40, 40), "white")
    output = spied.refine(RefineRequest(draft=draft, prompt="a sign", steps=1))
    assert output.image.size == (40, 40)
    assert seen["negative_prompt"] == " " and seen["true_cfg_scale"] == 4.0  # true CFG really on
    assert seen["prompt"].startswith("Make this image look finished") and "a sign" in seen["prompt"]
    assert output.settings["mode"] == "instruction" and output.settings["negative_prompt"] == " "


class _Spy:
    """Stands in for a pipeline: records the keyword arguments of each call, then makes the real call."""

    def __init__(self, real) -> None:
        self.real, self.seen = real, {}

    def __call__(self, **kwargs):
        self.seen.update(kwargs)
        return self.real(**kwargs)


def _spied(refiner) -> tuple[DiffusersRefiner, dict]:
    """The same refiner (family, device, accepted arguments) calling its pipeline through a _Spy."""
    spy = _Spy(refiner.pipeline)
    spied = DiffusersRefiner(refiner.name, spy, refiner.family, refiner.device, refiner.dtype)
    spied._accepts = refiner._accepts
    return spied, spy.seen


@pytest.mark.parametrize("form", ["pipeline", "joined"])
def test_sdxl_controlnet_loads_and_gets_the_draft_edges(tiny_sdxl_controlnet_dirs, form: str) -> None:
    """A saved ControlNet pipeline, or controlnet:CONTROLNET+BASE, runs as ControlNet img2img on the edges."""
    dirs = tiny_sdxl_controlnet_dirs
    name = str(dirs["pipeline"]) if form == "pipeline" else f"controlnet:{dirs['controlnet']}+{dirs['base']}"
    refiner = load_refiner(name)
    assert refiner.family.name == "sdxl-controlnet"
    assert type(refiner.pipeline).__name__ == "StableDiffusionXLControlNetImg2ImgPipeline"
    spied, seen = _spied(refiner)
    draft = Image.new("RGB", (64, 48), "white")
    ImageDraw.Draw(draft).rectangle((10, 10, 40, 30), fill="black")
    output = spied.refine(RefineRequest(draft=draft, prompt="a box", steps=2))
    assert output.image.size == (64, 48)
    edges = seen["control_image"]
    assert edges.size == (64, 48) and edges.getextrema() == ((0, 255), (0, 255), (0, 255))  # lines found
    assert seen["controlnet_conditioning_scale"] == 0.8 and output.settings["mode"] == "controlnet"


def test_controlnet_name_needs_both_parts() -> None:
    with pytest.raises(ValueError, match=r"controlnet:CONTROLNET\+BASE"):
        load_refiner("controlnet:only-one")


def test_text_keeping_inpainting_passes_the_guardrail(tmp_path, tiny_img2img_dir) -> None:
    """Where plain img2img wipes the sign's text (see test_refine_guardrail), inpainting around it keeps it."""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[SIGN]),
        vlm="none",
        sandbox="process",
        refiner=f"inpaint:{tiny_img2img_dir}",
        clip_model="none",
        text_mode="protect",  # the text in the picture, kept by the mask (layered: tests/agent/test_text_mode.py)
    )
    run_dir = tmp_path / "run"
    record = start_run(SIGN_PROMPT, ctx, run_dir)["refinement"]
    assert record["kept"] is True and record["settings"]["protected_regions"] >= 1
    assert record["why"].startswith("kept the refined image: text accuracy held: 1.000 -> 1.000")
    assert (run_dir / "final.png").read_bytes() == (run_dir / "refined.png").read_bytes()
    assert (run_dir / "final.png").read_bytes() != (run_dir / "attempts/01/draft.png").read_bytes()


def test_inpainting_keeps_the_text_the_sandbox_reported(tmp_path, tiny_img2img_dir, monkeypatch) -> None:
    """The sign's text boxes come from the drawing code (fig.text), not OCR, and keep the draft's pixels."""
    import coco_agent.refiners.diffusers_refiner as diffusers_refiner

    def no_ocr(*args, **kwargs):
        raise AssertionError("OCR was asked for text regions although the sandbox reported them")

    monkeypatch.setattr(diffusers_refiner, "text_regions", no_ocr)
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[SIGN]),
        vlm="none",
        sandbox="process",
        refiner=f"inpaint:{tiny_img2img_dir}",
        clip_model="none",
        refine_strength=0.9,
        refine_guard=False,
        text_mode="protect",
    )
    run_dir = tmp_path / "run"
    result = start_run(SIGN_PROMPT, ctx, run_dir)
    record = result["refinement"]
    saved = read_json(run_dir / "attempts/01/text_boxes.json")
    assert saved["source"] == "sandbox" and len(saved["boxes"]) == 1  # the one fig.text
    assert record["settings"]["protected_from"] == "sandbox" and record["settings"]["protected_regions"] == 1
    assert record["protected_text"] == {"source": "sandbox", "regions": 1}
    assert read_json(run_dir / "result.json")["refinement"]["protected_text"]["source"] == "sandbox"
    final = Image.open(run_dir / "final.png").convert("RGB")
    draft = Image.open(run_dir / "attempts/01/draft.png").convert("RGB")
    x0, y0, x1, y1 = saved["boxes"][0]
    assert final.crop((x0, y0, x1, y1)).tobytes() == draft.crop((x0, y0, x1, y1)).tobytes()
    assert ImageChops.difference(final, draft).getbbox() is not None  # the rest was repainted
