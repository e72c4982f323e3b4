"""Refiners: `none` keeps the draft; a tiny random diffusers img2img pipeline loads through load_refiner."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from coco_agent.refiners import RefineRequest, WeightsNotFoundError, clear_refiner_cache, load_refiner
from coco_agent.refiners.diffusers_refiner import DiffusersRefiner, effective_steps


def _draft(size: tuple[int, int] = (64, 64)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((8, 8, size[0] // 2, size[1] - 8), fill=(30, 90, 200))
    return image


def test_none_returns_the_draft() -> None:
    refiner = load_refiner("none")
    draft = _draft()
    output = refiner.refine(RefineRequest(draft=draft, prompt="a bar chart"))
    assert output.image is draft
    assert output.settings == {"refiner": "none"}
    assert load_refiner("") is refiner is load_refiner(" None ")


def test_tiny_img2img_refines_on_cpu(tiny_img2img_dir) -> None:
    clear_refiner_cache()
    refiner = load_refiner(str(tiny_img2img_dir))
    assert isinstance(refiner, DiffusersRefiner) and refiner.family.name == "sd"
    assert refiner.pipeline.safety_checker is None
    output = refiner.refine(
        RefineRequest(draft=_draft(), prompt="a bar chart", strength=0.5, steps=4, seed=1)
    )
    assert output.image.size == (64, 64) and output.image.mode == "RGB"
    assert output.settings["strength"] == 0.5 and output.settings["steps"] == 4
    assert output.settings["denoising_steps"] == 2
    assert output.settings["pipeline"] == "StableDiffusionImg2ImgPipeline"
    # Same seed, same picture: runs are reproducible.
    again = refiner.refine(RefineRequest(draft=_draft(), prompt="a bar chart", strength=0.5, steps=4, seed=1))
    assert again.image.tobytes() == output.image.tobytes()


def test_odd_sizes_and_alpha_come_back_at_the_draft_size(tiny_img2img_dir) -> None:
    refiner = load_refiner(str(tiny_img2img_dir))
    draft = _draft((70, 45)).convert("RGBA")
    output = refiner.refine(RefineRequest(draft=draft, prompt="chart", strength=0.3, steps=4))
    assert output.image.size == (70, 45)
    assert output.settings["size"] == [64, 40]


def test_refiner_loads_once(tiny_img2img_dir) -> None:
    first = load_refiner(str(tiny_img2img_dir))
    assert load_refiner(str(tiny_img2img_dir) + "/") is first
    assert load_refiner(str(tiny_img2img_dir / ".")) is first


def test_default_steps_always_denoise() -> None:
    assert effective_steps(0.3, None) == 20
    assert int(effective_steps(0.3, 1) * 0.3) >= 1
    assert int(effective_steps(0.05, 4) * 0.05) >= 1
    assert effective_steps(1.0, 1) == 1


def test_unknown_refiner_says_how_to_download(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError, match="hf download someone/not-cached-model"):
        load_refiner("someone/not-cached-model")
    with pytest.raises(WeightsNotFoundError):
        load_refiner(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_refiner(str(tmp_path))
