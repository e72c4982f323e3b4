"""What OCR reads: lines with boxes and confidence, per engine, and the engine interface (no engine code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from coco_agent.errors import OcrUnavailable

__all__ = ["OcrEngine", "OcrLine", "OcrResult", "OcrUnavailable", "Quad"]

Quad = list[list[float]]  # four (x, y) corners, clockwise from top-left


@dataclass
class OcrLine:
    """One line of text as read: `text` with recovered word spaces, `raw_text` as the recogniser gave it."""

    text: str
    box: Quad
    confidence: float
    raw_text: str = ""


@dataclass
class OcrResult:
    """Everything one engine read in one image."""

    engine: str
    lines: list[OcrLine] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def raw_text(self) -> str:
        return "\n".join(line.raw_text or line.text for line in self.lines)


class OcrEngine(Protocol):
    """A loaded OCR engine; thread-safe `read`."""

    name: str

    def read(self, image: Image.Image) -> OcrResult: ...
