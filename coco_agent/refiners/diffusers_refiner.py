"""Diffusers refiners: one class for every image-conditioned family in refiners/families.py.

Loaded by hub id (already in the Hugging Face cache) or local directory; ``inpaint:`` before the name loads the
pipeline for inpainting; ``controlnet:CONTROLNET+BASE`` joins a ControlNet to a base pipeline (both by id or
directory) as a ControlNet img2img pipeline guided by the draft's edges. bf16/fp16 on CUDA, fp32 on the CPU. Each call passes only the arguments that the
pipeline's ``__call__`` accepts, so one code path serves img2img, instruction editors, ControlNet and inpainting.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageFilter

from coco_agent.models.content import flatten_rgb
from coco_agent.models.weights import locate_weights
from coco_agent.refiners.base import RefineOutput, RefineRequest
from coco_agent.refiners.families import Family, detect_family, instruction_for, strength_for
from coco_agent.refiners.text_regions import keep_regions, protect_mask, text_regions

DEFAULT_STEPS = 20
INPAINT_PREFIX = "inpaint:"
CONTROLNET_PREFIX = "controlnet:"


class DiffusersRefiner:
    """A loaded diffusers pipeline and its family settings. Create with `load`; reuse for every request."""

    def __init__(self, name: str, pipeline: Any, family: Family, device: str, dtype: Any) -> None:
        self.name = name
        self.pipeline = pipeline
        self.family = family
        self.device = device
        self.dtype = dtype
        self._accepts = set(inspect.signature(pipeline.__call__).parameters)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str) -> DiffusersRefiner:
        """Load the pipeline from a directory or the Hugging Face cache (never downloads)."""
        controlnet_name, target = split_controlnet(name)
        target = target.removeprefix(INPAINT_PREFIX)
        path = locate_weights(target, what="refiner")
        import torch
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        index = model_index(path)
        hint = "inpaint" if name.startswith(INPAINT_PREFIX) else ""
        class_name = str(index.get("_class_name", ""))
        if controlnet_name:
            class_name = class_name.replace("Pipeline", "ControlNetPipeline")
        family = detect_family(class_name, target, hint)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float32
        if device == "cuda":
            dtype = torch.bfloat16 if family.dtype == "bf16" else torch.float16
        kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
        if "safety_checker" in index:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        if controlnet_name:
            from diffusers import ControlNetModel

            where = locate_weights(controlnet_name, what="controlnet")
            kwargs["controlnet"] = ControlNetModel.from_pretrained(
                str(where), local_files_only=True, dtype=dtype
            )
        loader = AutoPipelineForInpainting if family.mode == "inpaint" else AutoPipelineForImage2Image
        pipeline = loader.from_pretrained(str(path), **kwargs)
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        return cls(name, pipeline, family, device, dtype)

    def refine(self, request: RefineRequest) -> RefineOutput:
        """Run the family's call on the draft (sized to the family's multiple) and return it at the draft's size."""
        import torch

        draft = flatten_rgb(request.draft)
        multiple = self.family.multiple
        width, height = (max(multiple, side - side % multiple) for side in draft.size)
        image = draft if draft.size == (width, height) else draft.resize((width, height), Image.LANCZOS)
        call, settings = self._call(request, image)
        call["generator"] = torch.Generator(device="cpu").manual_seed(request.seed)
        regions: list[tuple[int, int, int, int]] = []
        if self.family.mode == "inpaint":
            regions = request.protect if request.protect is not None else text_regions(draft)
            mask = protect_mask(draft.size, regions)
            if request.repaint is not None:  # only these pixels may change (re-refining what an edit changed)
                mask = ImageChops.darker(mask, request.repaint.convert("L").resize(draft.size, Image.NEAREST))
            call["mask_image"] = mask.resize((width, height), Image.NEAREST)
            settings["protected_regions"] = len(regions)
            settings["protected_from"] = (
                "ocr" if request.protect is None else request.protect_source or "caller"
            )
        with self._lock:
            result = self.pipeline(**{k: v for k, v in call.items() if k in self._accepts}).images[0]
        if result.size != draft.size:
            result = result.resize(draft.size, Image.LANCZOS)
        if regions:
            result = keep_regions(result, draft, regions)
        settings.update(
            refiner=self.name,
            family=self.family.name,
            mode=self.family.mode,
            pipeline=type(self.pipeline).__name__,
            seed=request.seed,
            size=[width, height],
            device=self.device,
            dtype=str(self.dtype).removeprefix("torch."),
        )
        return RefineOutput(image=result, settings=settings)

    def _call(self, request: RefineRequest, image: Image.Image) -> tuple[dict[str, Any], dict[str, Any]]:
        family, level = self.family, request.level or "medium"
        guidance = request.guidance_scale if request.guidance_scale is not None else family.guidance_scale
        call: dict[str, Any] = {"image": image, "width": image.width, "height": image.height, **family.extra}
        settings: dict[str, Any] = {"level": level, "guidance_scale": guidance, **family.extra}
        if guidance is not None:
            call["guidance_scale"] = guidance
        if family.mode == "instruction":
            steps = max(1, request.steps or family.steps)
            call |= {"prompt": instruction_for(request.prompt, level), "num_inference_steps": steps}
            call |= {"_auto_resize": False, "max_area": image.width * image.height}  # Kontext: keep the size
            return call, settings | {"instruction": call["prompt"], "steps": steps}
        strength = strength_for(family, level, request.strength)
        steps = effective_steps(strength, request.steps or family.steps)
        call |= {"prompt": request.prompt, "strength": strength, "num_inference_steps": steps}
        if family.mode == "controlnet":
            call["control_image"] = edges(image)
        settings |= {"strength": strength, "steps": steps, "denoising_steps": int(steps * strength)}
        return call, settings


def split_controlnet(name: str) -> tuple[str, str]:
    """``controlnet:CONTROLNET+BASE`` -> (CONTROLNET, BASE); any other name -> ("", name)."""
    if not name.startswith(CONTROLNET_PREFIX):
        return "", name
    controlnet, plus, base = name.removeprefix(CONTROLNET_PREFIX).partition("+")
    if not plus or not controlnet.strip() or not base.strip():
        raise ValueError(
            f"refiner {name!r}: write controlnet:CONTROLNET+BASE, e.g. "
            "controlnet:diffusers/controlnet-canny-sdxl-1.0+stabilityai/stable-diffusion-xl-base-1.0"
        )
    return controlnet.strip(), base.strip()


def effective_steps(strength: float, steps: int | None) -> int:
    """Scheduler steps such that img2img runs at least one denoising step (int(steps * strength) >= 1)."""
    steps = max(1, steps if steps is not None else DEFAULT_STEPS)
    while int(steps * strength) < 1:
        steps = max(steps + 1, math.ceil(1 / strength))
    return steps


def edges(image: Image.Image) -> Image.Image:
    """The draft's edges as a ControlNet condition (white lines on black)."""
    found = image.convert("L").filter(ImageFilter.FIND_EDGES)
    return found.point(lambda v: 255 if v > 40 else 0).convert("RGB")


def model_index(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{path} is not a diffusers pipeline folder (no readable model_index.json): {error}"
        ) from error
