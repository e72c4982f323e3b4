"""The `none` refiner: the final picture is the draft itself."""

from __future__ import annotations

from coco_agent.refiners.base import RefineOutput, RefineRequest


class NoneRefiner:
    """Keeps the draft unchanged (exact text and layout, no diffusion model needed)."""

    name = "none"

    def refine(self, request: RefineRequest) -> RefineOutput:
        return RefineOutput(image=request.draft, settings={"refiner": "none"})
