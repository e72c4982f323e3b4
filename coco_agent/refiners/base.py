"""The refiner interface: turn an accepted draft into the final picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image


@dataclass
class RefineRequest:
    """One refinement job: the draft, the user's prompt and optional overrides."""

    draft: Image.Image
    prompt: str
    strength: float | None = None  # None: the family's value for `level`
    steps: int | None = None
    seed: int = 0
    guidance_scale: float | None = None
    level: str | None = None  # light | medium | strong (refiners/policy.py)
    protect: list[tuple[int, int, int, int]] | None = None  # inpainting keeps these boxes; None: found by OCR
    protect_source: str | None = None  # where `protect` came from ("sandbox": the drawing code's text)
    repaint: Image.Image | None = (
        None  # inpainting repaints only where this L mask is white (None: everywhere)
    )


@dataclass
class RefineOutput:
    image: Image.Image
    settings: dict = field(default_factory=dict)


class Refiner(Protocol):
    """A loaded refiner. Loaded once per process (see ``refiners.load_refiner``) and reused."""

    name: str

    def refine(self, request: RefineRequest) -> RefineOutput: ...
