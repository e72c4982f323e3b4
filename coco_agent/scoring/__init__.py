"""Scores for any image: OCR text accuracy (LongText-Bench formula, local-OCR proxy) and CLIP score.

`score_image(image, prompt, texts)` serves `coco score`, the refinement guardrail and the benchmarks.
Heavy engines (onnxruntime, torch, open_clip) load lazily, once per process.
"""

from coco_agent.scoring.score import PROXY_NOTE, expected_texts, score_image, value
from coco_agent.scoring.text_score import TextScore, aggregate, quoted_strings, score_text

__all__ = [
    "PROXY_NOTE",
    "TextScore",
    "aggregate",
    "expected_texts",
    "quoted_strings",
    "score_image",
    "score_text",
    "value",
]
