"""CLIP score with open_clip: cosine similarity of the image and the prompt embeddings (CLIPScore = 100 x it).

Models are named `ARCH:TAG` (a built-in open_clip architecture and pretrained tag, e.g.
``ViT-B-32:laion2b_s34b_b79k``), `ARCH:/path/weights.pt`, ``hf-hub:org/repo`` or ``org/repo``, or a local
directory holding ``open_clip_config.json`` and weights. Weights must already be on this machine (a local
path or the Hugging Face cache): nothing is downloaded. ``auto`` (the default; env COCO_CLIP) takes the first
cached model of `AUTO_CANDIDATES`; ``none`` turns CLIP off. Each model is loaded once per process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from coco_agent.errors import ClipUnavailable

AUTO_CANDIDATES = {  # spec -> the hub repo holding its weights (checked in the cache before importing torch)
    "ViT-B-32:laion2b_s34b_b79k": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    "ViT-B-32:openai": "timm/vit_base_patch32_clip_224.openai",
    "ViT-B-16:openai": "timm/vit_base_patch16_clip_224.openai",
    "ViT-L-14:openai": "timm/vit_large_patch14_clip_224.openai",
    "ViT-H-14:laion2b_s32b_b79k": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
}
_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass
class ClipSource:
    """Where a CLIP model's config and weights are: an open_clip model name plus a weights file (or None)."""

    spec: str
    model_name: str
    weights: str | None
    preprocess: dict[str, Any]
    quick_gelu: bool = False


class ClipScorer:
    """A loaded open_clip model. `score(image, prompt)` -> cosine similarity in [-1, 1]."""

    def __init__(self, source: ClipSource) -> None:
        import open_clip
        import torch

        self.name = source.spec
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model, _, preprocess = open_clip.create_model_and_transforms(
            source.model_name,
            pretrained=source.weights,
            device=self.device,
            force_quick_gelu=source.quick_gelu,
            **{f"image_{key}": value for key, value in source.preprocess.items()},
            pretrained_image=False,
            pretrained_text=False,
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(source.model_name)
        self._lock = threading.Lock()

    def score(self, image: Image.Image, prompt: str) -> float:
        import torch

        pixels = self.preprocess(image.convert("RGB")).unsqueeze(0).to(self.device)
        tokens = self.tokenizer([prompt]).to(self.device)
        with self._lock, torch.inference_mode():
            image_features = self.model.encode_image(pixels)
            text_features = self.model.encode_text(tokens)
        image_features = torch.nn.functional.normalize(image_features.float(), dim=-1)
        text_features = torch.nn.functional.normalize(text_features.float(), dim=-1)
        return round(float((image_features * text_features).sum()), 4)


_SCORERS: dict[str, ClipScorer] = {}
_LOCK = threading.Lock()


def load_clip(spec: str = "auto") -> ClipScorer:
    """The CLIP scorer for `spec`, loaded once per process. Raises ClipUnavailable (with the reason)."""
    source = resolve_clip(spec)
    key = f"{source.model_name}|{source.weights}"
    with _LOCK:
        if key not in _SCORERS:
            try:
                _SCORERS[key] = ClipScorer(source)
            except ImportError as error:
                raise ClipUnavailable(
                    f"open_clip is not installed ({error}): pip install open_clip_torch"
                ) from error
        return _SCORERS[key]


def clip_score(image: Image.Image, prompt: str, spec: str = "auto") -> dict[str, Any]:
    """{"score", "model", "seconds"} or {"available": False, "reason"}; never raises for a missing model."""
    start = time.perf_counter()
    try:
        scorer = load_clip(spec)
        value = scorer.score(image, prompt)
    except ClipUnavailable as error:
        return {"available": False, "reason": str(error)}
    return {"score": value, "model": scorer.name, "seconds": round(time.perf_counter() - start, 3)}


def resolve_clip(spec: str = "auto") -> ClipSource:
    """Find the model `spec` names on this machine, or raise ClipUnavailable saying why."""
    spec = (spec or os.environ.get("COCO_CLIP") or "auto").strip()
    if spec.lower() == "none":
        raise ClipUnavailable("CLIP is turned off (none)")
    if spec.lower() == "auto":
        return _first_cached()
    path = Path(spec).expanduser()
    if path.is_dir():
        return _from_dir(spec, path)
    if spec.startswith("hf-hub:") or (spec.count("/") == 1 and ":" not in spec):
        return _from_hub(spec)
    arch, _, pretrained = spec.partition(":")
    return _from_builtin(spec, arch, pretrained)


def _first_cached() -> ClipSource:
    for candidate, repo in AUTO_CANDIDATES.items():
        if _cached_in_hub(repo, _FILES) is None:
            continue
        try:
            return resolve_clip(candidate)
        except ClipUnavailable:
            continue
    raise ClipUnavailable(
        "no CLIP weights on this machine (looked for " + ", ".join(AUTO_CANDIDATES) + " in the Hugging Face "
        "cache); coco-agent never downloads. On a machine with internet: hf download "
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K, copy the cache here, or pass a local open_clip directory"
    )


def _from_dir(spec: str, path: Path) -> ClipSource:
    if not (path / "open_clip_config.json").is_file():
        raise ClipUnavailable(f"{path} has no open_clip_config.json (not an open_clip model folder)")
    if not any(any(path.glob(pattern)) for pattern in ("*.safetensors", "*.bin", "*.pth", "*.pt")):
        raise ClipUnavailable(f"{path} has a config but no weights: random weights would score nothing")
    return ClipSource(spec=spec, model_name=f"local-dir:{path.resolve()}", weights=None, preprocess={})


def _from_hub(spec: str) -> ClipSource:
    from coco_agent.models.weights import WeightsNotFoundError, locate_weights

    repo = spec.removeprefix("hf-hub:")
    try:
        return _from_dir(spec, locate_weights(repo, what="CLIP model"))
    except WeightsNotFoundError as error:
        raise ClipUnavailable(str(error)) from error


def _from_builtin(spec: str, arch: str, pretrained: str) -> ClipSource:
    import open_clip

    if arch not in open_clip.list_models():
        raise ClipUnavailable(
            f"unknown CLIP model {spec!r}: use ARCH:TAG (open_clip), hf-hub:org/repo or a dir"
        )
    if pretrained and Path(pretrained).expanduser().is_file():
        return ClipSource(spec, arch, str(Path(pretrained).expanduser()), {})
    config = open_clip.get_pretrained_cfg(arch, pretrained) if pretrained else {}
    if not config:
        raise ClipUnavailable(
            f"{spec!r}: no pretrained tag {pretrained!r} for {arch} (random weights are no score)"
        )
    weights = _cached_file(config)
    if weights is None:
        raise ClipUnavailable(
            f"CLIP weights {spec} are not in the local cache and coco-agent never downloads; on a machine with "
            f"internet run: hf download {config.get('hf_hub', '').rstrip('/')} (then copy the cache here)"
        )
    keep = ("mean", "std", "interpolation", "resize_mode")
    preprocess = {k: config[k] for k in keep if k in config}
    return ClipSource(spec, arch, weights, preprocess, quick_gelu=bool(config.get("quick_gelu")))


def _cached_file(config: dict[str, Any]) -> str | None:
    """The tag's weights file if it is already in the Hugging Face cache (or open_clip's URL cache)."""
    hub = config.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        found = _cached_in_hub(repo, [filename] if filename else _FILES)
        if found:
            return found
    url = config.get("url", "")
    if url:
        cached = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if cached.is_file():
            return str(cached)
    return None


def _cached_in_hub(repo: str, filenames: Sequence[str]) -> str | None:
    """The first of `filenames` already in the Hugging Face cache for `repo` (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        found = try_to_load_from_cache(repo.rstrip("/"), name)
        if isinstance(found, str):
            return found
    return None
