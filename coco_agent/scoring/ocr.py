"""Local OCR behind one small interface: `load_ocr(name).read(image) -> OcrResult` (lines with boxes).

Engines (each loaded once per process, never downloading anything):
- ``rapidocr``: PP-OCRv4 detection + recognition, English and Chinese, weights inside the
  ``rapidocr-onnxruntime`` wheel. Its recogniser drops many spaces between English words; the word gaps are
  put back from the line's pixels (see ``word_gaps``).
- ``tesseract``: the Debian ``tesseract-ocr`` binary (Latin script; ``chi_sim`` when that language pack is
  installed), word boxes from its TSV output.

``auto`` picks rapidocr when installed, else tesseract. Scores built on these are a local-OCR proxy, not the
official LongText-Bench number (which reads images with Qwen2.5-VL-7B).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from coco_agent.errors import OcrUnavailable

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


_ENGINES: dict[str, OcrEngine] = {}
_LOCK = threading.Lock()


def load_ocr(name: str = "auto") -> OcrEngine:
    """The OCR engine called `name` (auto, rapidocr, tesseract; env COCO_OCR), loaded once per process."""
    key = resolve_engine_name(name)
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _load(key)
        return _ENGINES[key]


def resolve_engine_name(name: str = "auto") -> str:
    """Turn auto (or empty) into a concrete engine name, or raise OcrUnavailable."""
    name = (name or os.environ.get("COCO_OCR") or "auto").strip().lower()
    if name != "auto":
        if name not in ("rapidocr", "tesseract"):
            raise OcrUnavailable(f"unknown OCR engine {name!r}: use auto, rapidocr or tesseract")
        return name
    if _has_rapidocr():
        return "rapidocr"
    if shutil.which("tesseract"):
        return "tesseract"
    raise OcrUnavailable(
        "no local OCR engine: pip install rapidocr-onnxruntime (the `local` extra; PP-OCRv4 weights ship in "
        "the wheel) or apt-get install tesseract-ocr"
    )


def _has_rapidocr() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _load(name: str) -> OcrEngine:
    if name == "rapidocr":
        if not _has_rapidocr():
            raise OcrUnavailable("rapidocr is not installed: pip install rapidocr-onnxruntime")
        from coco_agent.scoring.ocr_rapid import RapidOcrEngine

        return RapidOcrEngine()
    from coco_agent.scoring.ocr_tesseract import TesseractEngine

    return TesseractEngine()
