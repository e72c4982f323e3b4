"""How hard to refine, and what becomes of the draft's text: decided from what the prompt asks for,
overridable by the user.

Drawing code gets exact marks, numbers and strings; diffusion gets texture and realism. So data graphics
(charts, plots, tables) are not refined at all, layouts (diagrams, slides, posters, documents) lightly, scenes
that must show text moderately, and scenes or rare concepts drawn as rough shapes strongly. Strength is the
img2img denoising strength (0 keeps the draft, 1 redraws everything).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["none", "light", "medium", "strong"]
TextMode = Literal["layered", "protect", "free"]
TEXT_MODES = ("auto", "layered", "protect", "free")  # --text-mode
STRENGTH: dict[Level, float] = {"none": 0.0, "light": 0.2, "medium": 0.35, "strong": 0.55}

_DATA = re.compile(
    r"\b(chart|plot|graph|histogram|heat ?map|spreadsheet|box ?plot|scatter ?plot|pie chart|"
    r"candlestick|treemap|dashboard|data table|x-axis|y-axis)s?\b"
    r"|\btables?\b.*\b(rows?|columns?|cells?|headers?)\b|\b(rows?|columns?)\b.*\btables?\b",
    re.IGNORECASE | re.DOTALL,
)
_LAYOUT = re.compile(
    r"\b(diagram|flow ?chart|slide|infographic|timeline|schematic|mind ?map|org ?chart|poster|menu|"
    r"document|invoice|certificate|receipt|web ?page|website|user interface|screenshot|calendar|"
    r"resume|brochure|flyer|presentation)s?\b",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"[\"“「『‘]|(?<![\w'])'[^'\n]+'(?![\w])")


@dataclass
class StrengthChoice:
    """The refinement level chosen for a prompt, and why."""

    kind: str  # data graphic | layout | scene with text | scene
    level: Level
    strength: float
    source: Literal["auto", "user"]
    why: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def prompt_kind(prompt: str, texts: list[str] | None = None) -> str:
    """data graphic, layout, scene with text, or scene."""
    if _DATA.search(prompt or ""):
        return "data graphic"
    if _LAYOUT.search(prompt or ""):
        return "layout"
    if texts or _QUOTE.search(prompt or ""):
        return "scene with text"
    return "scene"


_AUTO: dict[str, tuple[Level, str]] = {
    "data graphic": (
        "none",
        "a data graphic: the drawn marks, numbers and labels are the point; diffusion adds risk",
    ),
    "layout": (
        "light",
        "a layout (diagram, slide, poster, document): keep structure and text, polish lightly",
    ),
    "scene with text": (
        "medium",
        "a scene that must show text: add realism, the guardrail protects the text",
    ),
    "scene": ("strong", "a scene or concept drawn as rough shapes: diffusion should add the realism"),
}


def choose_strength(
    prompt: str, override: float | None = None, texts: list[str] | None = None
) -> StrengthChoice:
    """The strength for this prompt: the user's value when given, else by prompt kind."""
    kind = prompt_kind(prompt, texts)
    if override is not None:
        strength = min(max(float(override), 0.0), 1.0)
        level = _level_of(strength)
        return StrengthChoice(
            kind, level, strength, "user", f"set by the user ({strength:g}); prompt kind: {kind}"
        )
    level, why = _AUTO[kind]
    return StrengthChoice(kind, level, STRENGTH[level], "auto", why)


def _level_of(strength: float) -> Level:
    if strength <= 0:
        return "none"
    return "light" if strength <= 0.25 else "medium" if strength <= 0.45 else "strong"


@dataclass
class TextModeChoice:
    """What becomes of the draft's text in refinement, who chose it, and why.

    layered: the refiner gets the draft without its text, and the text is composited back on top after
    (refiners/text_layer.py); protect: the refiner gets the draft, inpainting keeps the text's pixels (and the
    guardrail checks the text); free: the refiner may redraw everything, text included.
    """

    mode: TextMode
    source: Literal["auto", "user"]
    why: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_AUTO_TEXT: dict[str, tuple[TextMode, str]] = {
    "data graphic": (
        "protect",
        "a data graphic: its labels are data, refined (if at all) with the text kept",
    ),
    "layout": ("layered", "a layout: the text stays crisp on top, the refiner polishes what lies beneath"),
    "scene with text": ("layered", "a scene that must show text: no glyph passes through diffusion"),
    "scene": ("protect", "a scene with no stated text: whatever text the program drew is kept, as before"),
}


def choose_text_mode(
    prompt: str, override: str | None = None, texts: list[str] | None = None, layers: bool = True
) -> TextModeChoice:
    """The text mode for this prompt: the user's when given, else by prompt kind. ``layers``: whether the draft's
    format can be drawn without its text; when it cannot, layered becomes protect (and says so)."""
    if override and override != "auto":
        if override not in TEXT_MODES:
            raise ValueError(f"unknown text mode {override!r}; choose one of {', '.join(TEXT_MODES)}")
        mode, source, why = override, "user", f"set by the user ({override})"
    else:
        kind = prompt_kind(prompt, texts)
        mode, why = _AUTO_TEXT[kind]
        source = "auto"
    if mode == "layered" and not layers:
        return TextModeChoice(
            "protect", source, why + "; but this format cannot be drawn without its text, so protect"
        )
    return TextModeChoice(mode, source, why)  # type: ignore[arg-type]
