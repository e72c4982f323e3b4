"""Refiners turn the accepted draft into the final picture. `load_refiner(name)` loads each one once."""

from __future__ import annotations

import threading
from pathlib import Path

from coco_agent.models.weights import WeightsNotFoundError
from coco_agent.refiners.base import RefineOutput, Refiner, RefineRequest
from coco_agent.refiners.none import NoneRefiner

__all__ = [
    "NoneRefiner",
    "RefineOutput",
    "RefineRequest",
    "Refiner",
    "WeightsNotFoundError",
    "clear_refiner_cache",
    "load_refiner",
]

_CACHE: dict[str, Refiner] = {}
_LOCK = threading.Lock()


def load_refiner(name: str) -> Refiner:
    """Return the refiner called `name`, loading it on first use and reusing it afterwards.

    "none" (or "") keeps the draft. Anything else is a diffusers pipeline (img2img, instruction editor,
    ControlNet; ``inpaint:NAME`` for text-keeping inpainting; ``controlnet:CONTROLNET+BASE`` to join a ControlNet
    to a base model; see refiners/families.py): a local directory or a
    hub id already in the Hugging Face cache (nothing is downloaded; WeightsNotFoundError says how).
    """
    key = _cache_key(name)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(key)
        return _CACHE[key]


def clear_refiner_cache() -> None:
    """Drop every loaded refiner (tests; freeing GPU memory)."""
    with _LOCK:
        _CACHE.clear()


def _cache_key(name: str) -> str:
    name = (name or "").strip() or "none"
    if name.lower() == "none":
        return "none"
    if name.startswith("controlnet:"):
        controlnet, plus, base = name.removeprefix("controlnet:").partition("+")
        return f"controlnet:{_resolved(controlnet)}{plus}{_resolved(base)}"
    prefix = "inpaint:" if name.startswith("inpaint:") else ""
    return prefix + _resolved(name.removeprefix(prefix))


def _resolved(name: str) -> str:
    """An existing directory as its absolute path (so two spellings share one loaded pipeline), else `name`."""
    path = Path(name.strip()).expanduser()
    return str(path.resolve()) if path.is_dir() else name.strip()


def _load(key: str) -> Refiner:
    if key == "none":
        return NoneRefiner()
    from coco_agent.refiners.diffusers_refiner import DiffusersRefiner

    return DiffusersRefiner.load(key)
