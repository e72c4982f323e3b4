"""`score_image`: the one scoring entry point (`coco score`, the refinement guardrail, benchmarks).

Text accuracy is the LongText-Bench formula read with a local OCR engine: a proxy, not the official score
(which reads with Qwen2.5-VL-7B). CLIP is open_clip's cosine similarity of image and prompt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from coco_agent.scoring.text_score import Mode, quoted_strings, score_text

PROXY_NOTE = (
    "local-OCR proxy: the LongText-Bench text-score formula read with a local OCR engine, "
    "not the official score (Qwen2.5-VL-7B OCR)"
)
MAX_OCR_TEXT = 4000


def expected_texts(prompt: str, texts: Sequence[str] | None = None) -> tuple[list[str], str]:
    """The strings the image must show and where they came from: given, quoted in the prompt, or none."""
    given = [t for t in (texts or []) if t and t.strip()]
    if given:
        return given, "given"
    quoted = quoted_strings(prompt)
    return quoted, ("quoted in the prompt" if quoted else "none")


def score_image(
    image: Image.Image | str | Path,
    prompt: str,
    texts: Sequence[str] | None = None,
    *,
    ocr_engine: str = "auto",
    clip_model: str = "auto",
    text_mode: Mode | None = None,
) -> dict[str, Any]:
    """Score one image: {"expected_text", "expected_source", "text": {...}, "clip": {...}}.

    Each part is either its figures or {"available": False, "reason": ...}; nothing here raises for a missing
    engine or model. `texts` are the strings the image must show; without them, the prompt's quoted strings.
    `text_mode` forces words (en) or characters (zh); default: zh when the expected text has CJK characters.
    """
    picture = _open(image)
    expected, source = expected_texts(prompt, texts)
    return {
        "expected_text": expected,
        "expected_source": source,
        "text": text_part(picture, expected, ocr_engine, text_mode),
        "clip": clip_part(picture, prompt, clip_model),
    }


def text_part(
    image: Image.Image, expected: list[str], engine: str = "auto", mode: Mode | None = None
) -> dict[str, Any]:
    """The text-accuracy record of one image (see score_image)."""
    if not expected:
        return {
            "available": False,
            "reason": "no expected text: pass --text, or quote the strings in the prompt",
        }
    from coco_agent.scoring.ocr import OcrUnavailable, load_ocr

    try:
        reader = load_ocr(engine)
        ocr = reader.read(image)
    except OcrUnavailable as error:
        return {"available": False, "reason": str(error)}
    result = score_text(
        [line.text for line in ocr.lines], expected, mode, raw_lines=[line.raw_text for line in ocr.lines]
    )
    return {
        **result.as_dict(),
        "engine": getattr(reader, "label", reader.name),
        "proxy": PROXY_NOTE,
        "ocr_text": ocr.text[:MAX_OCR_TEXT],
        "seconds": ocr.seconds,
    }


def clip_part(image: Image.Image, prompt: str, model: str = "auto") -> dict[str, Any]:
    """The CLIP record of one image (see score_image)."""
    if not (prompt or "").strip():
        return {"available": False, "reason": "no prompt to compare the image with"}
    from coco_agent.scoring.clip_score import clip_score

    start = time.perf_counter()
    result = clip_score(image, prompt, model)
    if "score" in result:
        result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def value(part: dict[str, Any] | None) -> float | None:
    """A part's score, or None when it was not available."""
    return None if not part or "score" not in part else float(part["score"])


def _open(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")
