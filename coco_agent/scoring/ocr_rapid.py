"""The rapidocr backend: PP-OCRv4 (ONNX, CPU) with word spaces recovered from the line's pixels."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from coco_agent.scoring.ocr_result import OcrLine, OcrResult
from coco_agent.scoring.word_gaps import recover_spaces

MAX_SIDE = 2000  # rapidocr's own limit; bigger images are scaled down by it


class RapidOcrEngine:
    """PP-OCRv4 detection + recognition from the rapidocr-onnxruntime wheel (no download). Create once."""

    name = "rapidocr"
    label = "rapidocr PP-OCRv4 (local OCR proxy)"

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._engine = RapidOCR()
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> OcrResult:
        """Read every text line of `image`; spaces the recogniser dropped are put back from the pixels."""
        start = time.perf_counter()
        rgb = image.convert("RGB")
        pixels = np.asarray(rgb)
        with self._lock:
            found, _ = self._engine(pixels[:, :, ::-1].copy(), return_word_box=True)
        gray = np.asarray(rgb.convert("L"))
        lines = [_line(item, gray) for item in found or []]
        return OcrResult(
            engine=self.name, lines=[line for line in lines if line.text.strip()], seconds=_since(start)
        )


def _line(item: list[Any], gray: np.ndarray) -> OcrLine:
    """One rapidocr item: [quad, text, confidence, char boxes, chars, char confidences]."""
    quad = [[float(x), float(y)] for x, y in item[0]]
    raw = str(item[1])
    confidence = float(item[2])
    chars = item[4] if len(item) > 4 else []
    boxes = item[3] if len(item) > 3 else []
    centers = [float(np.mean([p[0] for p in box])) for box in boxes] if boxes else []
    text = raw
    if len(chars) == len(centers) and "".join(chars) == raw:
        text = recover_spaces(gray, quad, raw, centers)
    return OcrLine(text=text, box=quad, confidence=confidence, raw_text=raw)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)
