"""Per-family refiner settings, in one table.

A family is recognised from the pipeline's `model_index.json` class name (and, for distilled models, its name),
or forced with a prefix: ``inpaint:DIR`` loads any Stable Diffusion family as an inpainting pipeline that keeps
the draft's text regions. Modes:

- ``img2img``: denoise the draft at a strength set by the refinement level (few steps and no guidance for
  SDXL-Turbo-style distilled models);
- ``instruction``: an instruction editor (FLUX.1 Kontext, Qwen-Image-Edit) gets the draft and an instruction
  built from the prompt; the level picks the wording, there is no strength;
- ``controlnet``: an SDXL ControlNet img2img pipeline guided by the draft's edges;
- ``inpaint``: repaint everything but the regions where the draft shows text; those keep the draft's pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from coco_agent.refiners.policy import STRENGTH, Level

Mode = Literal["img2img", "instruction", "controlnet", "inpaint"]
DEFAULT_LEVEL_STRENGTH: dict[str, float] = {k: v for k, v in STRENGTH.items() if k != "none"}


@dataclass(frozen=True)
class Family:
    """How to call one family of pipelines."""

    name: str
    mode: Mode
    steps: int
    guidance_scale: float | None
    dtype: Literal["fp16", "bf16"] = "fp16"
    multiple: int = 8  # width and height are rounded down to this (16 for transformer families)
    strengths: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LEVEL_STRENGTH))
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("sdxl-turbo", "img2img", steps=4, guidance_scale=0.0),
        Family("sdxl", "img2img", steps=30, guidance_scale=5.0),
        Family("sd", "img2img", steps=30, guidance_scale=7.5),
        Family("sd3", "img2img", steps=28, guidance_scale=7.0, dtype="bf16", multiple=16),
        Family("flux", "img2img", steps=28, guidance_scale=3.5, dtype="bf16", multiple=16),
        Family("flux-kontext", "instruction", steps=28, guidance_scale=2.5, dtype="bf16", multiple=16),
        Family(
            "qwen-image-edit",
            "instruction",
            steps=40,
            guidance_scale=None,
            dtype="bf16",
            multiple=16,
            extra={"true_cfg_scale": 4.0, "negative_prompt": " "},  # true CFG needs a negative prompt
        ),
        Family(
            "sdxl-controlnet",
            "controlnet",
            steps=30,
            guidance_scale=5.0,
            extra={"controlnet_conditioning_scale": 0.8},
        ),
        Family(
            "inpaint",
            "inpaint",
            steps=30,
            guidance_scale=7.5,
            strengths={"light": 0.5, "medium": 0.75, "strong": 0.95},
        ),
        Family("img2img", "img2img", steps=20, guidance_scale=None),
    )
}

INSTRUCTIONS: dict[str, str] = {
    "light": "Polish this image: clean edges, even colours and lighting. Change nothing else; keep every text, "
    "number and position exactly as it is. The image shows: {prompt}",
    "medium": "Make this image look finished and realistic while keeping its layout and keeping every text "
    "exactly as written. The image shows: {prompt}",
    "strong": "Turn the rough shapes of this sketch into a detailed, realistic picture with the same composition; "
    "keep any written text exactly as it is. The picture shows: {prompt}",
}
_DISTILLED = ("turbo", "lightning", "hyper", "lcm")


def detect_family(class_name: str, name: str = "", mode_hint: str = "") -> Family:
    """The family of a pipeline from its model_index `_class_name` (and its name for distilled models)."""
    lowered = name.lower()
    if mode_hint == "inpaint" or "Inpaint" in class_name:
        return FAMILIES["inpaint"]
    if class_name.startswith("FluxKontext"):
        return FAMILIES["flux-kontext"]
    if class_name.startswith("QwenImageEdit"):
        return FAMILIES["qwen-image-edit"]
    if "ControlNet" in class_name:
        return FAMILIES["sdxl-controlnet"]
    if class_name.startswith("StableDiffusionXL"):
        return FAMILIES["sdxl-turbo" if any(d in lowered for d in _DISTILLED) else "sdxl"]
    if class_name.startswith("StableDiffusion3"):
        return FAMILIES["sd3"]
    if class_name.startswith("StableDiffusion"):
        return FAMILIES["sd"]
    if class_name.startswith("Flux"):
        return FAMILIES["flux"]
    return FAMILIES["img2img"]


def strength_for(family: Family, level: Level, override: float | None) -> float:
    """The img2img strength: the user's number when given, else the family's value for the level."""
    if override is not None:
        return min(max(float(override), 0.01), 1.0)
    return family.strengths.get(level, DEFAULT_LEVEL_STRENGTH["medium"])


def instruction_for(prompt: str, level: Level) -> str:
    """The edit instruction for an instruction editor, worded by refinement level."""
    return INSTRUCTIONS.get(level, INSTRUCTIONS["medium"]).format(prompt=prompt.strip())
