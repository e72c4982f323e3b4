"""A diffusers image-to-image refiner (AutoPipelineForImage2Image), loaded by hub id or local directory."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from coco_agent.models.weights import locate_weights
from coco_agent.refiners.base import RefineOutput, RefineRequest

DEFAULT_STRENGTH = 0.3
DEFAULT_STEPS = 20
SIZE_MULTIPLE = 8
_BF16_FAMILIES = ("Flux", "QwenImage", "StableDiffusion3", "Sana", "Lumina", "HiDream")


class DiffusersImg2ImgRefiner:
    """Runs img2img on the draft with the user's prompt. Create with `load`; reuse for every request."""

    def __init__(self, name: str, pipeline: Any, device: str, dtype: Any) -> None:
        self.name = name
        self.pipeline = pipeline
        self.device = device
        self.dtype = dtype
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str) -> DiffusersImg2ImgRefiner:
        """Load the pipeline from a directory or the Hugging Face cache (never downloads)."""
        path = locate_weights(name, what="refiner")
        import torch
        from diffusers import AutoPipelineForImage2Image

        index = _model_index(path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            family = str(index.get("_class_name", ""))
            dtype = torch.bfloat16 if family.startswith(_BF16_FAMILIES) else torch.float16
        else:
            dtype = torch.float32
        kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
        if "safety_checker" in index:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        pipeline = AutoPipelineForImage2Image.from_pretrained(str(path), **kwargs)
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        return cls(name, pipeline, device, dtype)

    def refine(self, request: RefineRequest) -> RefineOutput:
        """Img2img over the draft, resized to a multiple of 8 and back to the draft's size."""
        import torch

        strength = min(max(request.strength if request.strength is not None else DEFAULT_STRENGTH, 0.01), 1.0)
        steps = effective_steps(strength, request.steps)
        draft = _rgb(request.draft)
        width, height = (max(SIZE_MULTIPLE, side - side % SIZE_MULTIPLE) for side in draft.size)
        image = draft if draft.size == (width, height) else draft.resize((width, height), Image.LANCZOS)
        call: dict[str, Any] = {
            "prompt": request.prompt,
            "image": image,
            "strength": strength,
            "num_inference_steps": steps,
            "generator": torch.Generator(device="cpu").manual_seed(request.seed),
        }
        if request.guidance_scale is not None:
            call["guidance_scale"] = request.guidance_scale
        with self._lock:
            result = self.pipeline(**call).images[0]
        if result.size != draft.size:
            result = result.resize(draft.size, Image.LANCZOS)
        settings = {
            "refiner": self.name,
            "pipeline": type(self.pipeline).__name__,
            "strength": strength,
            "steps": steps,
            "denoising_steps": int(steps * strength),
            "guidance_scale": request.guidance_scale,
            "seed": request.seed,
            "size": [width, height],
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        return RefineOutput(image=result, settings=settings)


def effective_steps(strength: float, steps: int | None) -> int:
    """Scheduler steps such that img2img runs at least one denoising step (int(steps * strength) >= 1)."""
    steps = max(1, steps if steps is not None else DEFAULT_STEPS)
    while int(steps * strength) < 1:
        steps = max(steps + 1, math.ceil(1 / strength))
    return steps


def _model_index(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{path} is not a diffusers pipeline folder (no readable model_index.json): {error}"
        ) from error


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
