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
from dataclasses import dataclass
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
# the call arguments that become one list per batch (everything else must be equal to share a call)
BATCHED_ARGUMENTS = ("image", "prompt", "generator", "mask_image", "control_image")


@dataclass
class _Prepared:
    """One request made ready for the pipeline: its draft, call arguments, settings and kept text regions."""

    draft: Image.Image
    call: dict[str, Any]
    settings: dict[str, Any]
    regions: list[tuple[int, int, int, int]]
    key: str


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
        return self.refine_batch([request])[0]

    def refine_batch(self, requests: list[RefineRequest]) -> list[RefineOutput]:
        """Refine several drafts; those whose calls differ only in picture, prompt and seed (same size,
        strength, steps: drafts of the same size at the same level) go through one batched pipeline call,
        each with its own seeded generator, so every output is what a call of its own would give (up to
        floating-point summation order). ``settings["batch"]`` says how many pictures shared the call."""
        prepared = [self._prepare(request) for request in requests]
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(prepared):
            groups.setdefault(item.key, []).append(index)
        images: dict[int, Image.Image] = {}
        for members in groups.values():
            for index, image in zip(members, self._run([prepared[i] for i in members]), strict=True):
                images[index] = image
        return [
            self._finish(prepared[i], images[i], batch=len(groups[prepared[i].key]))
            for i in range(len(prepared))
        ]

    def _prepare(self, request: RefineRequest) -> _Prepared:
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
        call = {k: v for k, v in call.items() if k in self._accepts}
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
        return _Prepared(draft, call, settings, regions, self._batch_key(call))

    def _batch_key(self, call: dict[str, Any]) -> str:
        """What calls must share to go through the pipeline together; instruction editors (Kontext,
        Qwen-Image-Edit) are not batched (their pipelines size and encode each picture on its own)."""
        if self.family.mode == "instruction":
            return f"single:{id(call)}"
        shared = {k: v for k, v in call.items() if k not in BATCHED_ARGUMENTS}
        size = call["image"].size
        return repr((size, sorted((k, repr(v)) for k, v in shared.items())))

    def _run(self, group: list[_Prepared]) -> list[Image.Image]:
        """One pipeline call for the group (lists of pictures, prompts, generators, masks)."""
        if len(group) == 1:
            call = group[0].call
        else:
            call = dict(group[0].call)
            for name in BATCHED_ARGUMENTS:
                if name in call:
                    call[name] = [item.call[name] for item in group]
        with self._lock:
            return list(self.pipeline(**call).images)

    def _finish(self, item: _Prepared, result: Image.Image, *, batch: int) -> RefineOutput:
        if result.size != item.draft.size:
            result = result.resize(item.draft.size, Image.LANCZOS)
        if item.regions:
            result = keep_regions(result, item.draft, item.regions)
        return RefineOutput(image=result, settings=item.settings | {"batch": batch})

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
