"""Cheap deterministic checks on a draft, run before any critic: blank images and absurd sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from PIL import Image, ImageStat

MIN_SIDE = 64
MAX_SIDE = 8192
MAX_ASPECT = 12.0
MIN_INK_FRACTION = 0.002  # share of pixels that differ from the background


@dataclass
class CheckResult:
    ok: bool
    width: int
    height: int
    ink_fraction: float
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def check_draft(image: Image.Image) -> CheckResult:
    """Flag drafts no critic needs to see: (near-)blank canvases and absurd sizes."""
    width, height = image.size
    problems: list[str] = []
    if min(width, height) < MIN_SIDE:
        problems.append(
            f"the image is only {width}x{height} pixels; make it at least {MIN_SIDE} px on each side"
        )
    if max(width, height) > MAX_SIDE:
        problems.append(f"the image is {width}x{height} pixels; keep each side at most {MAX_SIDE} px")
    if max(width, height) / max(1, min(width, height)) > MAX_ASPECT:
        problems.append(f"the image is {width}x{height}, an extreme aspect ratio; use a normal canvas shape")
    ink = ink_fraction(image)
    if ink < MIN_INK_FRACTION:
        problems.append("the program ran but drew (almost) nothing: the image is blank")
    return CheckResult(
        ok=not problems, width=width, height=height, ink_fraction=round(ink, 5), problems=problems
    )


def ink_fraction(image: Image.Image) -> float:
    """Share of pixels that differ clearly from the most common colour, measured on a thumbnail."""
    small = image.convert("RGBA")
    small.thumbnail((256, 256))
    background = Image.new("RGBA", small.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(background, small).convert("L")
    histogram = flat.histogram()
    dominant = max(range(256), key=histogram.__getitem__)
    total = flat.width * flat.height
    near = sum(histogram[max(0, dominant - 8) : dominant + 9])
    if ImageStat.Stat(flat).stddev[0] < 0.5:
        return 0.0
    return (total - near) / total
