"""Keep a refined image only when it did not make things worse than the draft.

Rules: text accuracy (LongText-Bench formula, local-OCR proxy) over the strings the prompt asks for must not
drop; the CLIP score must not drop by more than `margin` (cosine). When text is expected but cannot be read
(no OCR engine), the draft is kept: its text was exact by construction. A CLIP model that is not available
skips the CLIP rule and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from coco_agent.scoring.score import value

TEXT_TOLERANCE = 1e-9
MAX_KEPT_OCR_TEXT = 500


@dataclass
class GuardVerdict:
    """Keep the refined image or the draft, why, and each rule's outcome."""

    keep_refined: bool
    why: str
    checks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(draft: dict[str, Any], refined: dict[str, Any], margin: float) -> GuardVerdict:
    """Compare the `score_image` records of the draft and the refined image."""
    checks = [_text_check(draft, refined), _clip_check(draft, refined, margin)]
    failed = [c["note"] for c in checks if c["ok"] is False]
    if failed:
        return GuardVerdict(False, "kept the draft: " + "; ".join(failed), checks)
    passed = [c["note"] for c in checks if c["ok"] is True]
    if not passed:
        skipped = "; ".join(c["note"] for c in checks)
        return GuardVerdict(True, f"kept the refined image, unverified ({skipped})", checks)
    return GuardVerdict(True, "kept the refined image: " + "; ".join(passed), checks)


def _text_check(draft: dict[str, Any], refined: dict[str, Any]) -> dict[str, Any]:
    if not draft.get("expected_text"):
        return {"check": "text", "ok": None, "note": "no text expected (none given or quoted in the prompt)"}
    before, after = value(draft.get("text")), value(refined.get("text"))
    if before is None or after is None:
        reason = (refined.get("text") or draft.get("text") or {}).get("reason", "OCR failed")
        return {"check": "text", "ok": False, "note": f"cannot verify the text ({reason})"}
    ok = after >= before - TEXT_TOLERANCE
    verb = "held" if ok else "fell"
    note = f"text accuracy {verb}: {before:.3f} -> {after:.3f} (local-OCR proxy)"
    return {"check": "text", "ok": ok, "draft": before, "refined": after, "note": note}


def _clip_check(draft: dict[str, Any], refined: dict[str, Any], margin: float) -> dict[str, Any]:
    before, after = value(draft.get("clip")), value(refined.get("clip"))
    if before is None or after is None:
        reason = (draft.get("clip") or refined.get("clip") or {}).get("reason", "not computed")
        return {"check": "clip", "ok": None, "note": f"CLIP skipped: {reason}"}
    ok = after >= before - margin
    change = "within" if ok else "beyond"
    note = f"CLIP {before:.4f} -> {after:.4f}, {change} the {margin:g} margin"
    return {"check": "clip", "ok": ok, "draft": before, "refined": after, "margin": margin, "note": note}


def verify(
    draft: Image.Image,
    refined: Image.Image,
    prompt: str,
    texts: list[str] | None,
    *,
    margin: float,
    ocr_engine: str = "auto",
    clip_model: str = "auto",
) -> tuple[GuardVerdict, dict[str, Any]]:
    """Score both images and judge. Returns the verdict and the compact scores for result.json."""
    from coco_agent.scoring import score_image

    try:
        before = score_image(draft, prompt, texts, ocr_engine=ocr_engine, clip_model=clip_model)
        after = score_image(refined, prompt, texts, ocr_engine=ocr_engine, clip_model=clip_model)
    except Exception as error:  # a scoring bug must not lose the run: the exact draft is the safe choice
        why = f"kept the draft: verification failed ({type(error).__name__}: {str(error)[:300]})"
        return GuardVerdict(False, why), {}
    scores = {
        "expected_text": before["expected_text"],
        "expected_source": before["expected_source"],
        "draft": compact(before),
        "refined": compact(after),
    }
    return judge(before, after, margin), scores


def compact(scores: dict[str, Any]) -> dict[str, Any]:
    """The parts of a score_image record worth keeping in result.json."""
    text_keys = ("score", "raw_score", "matched", "total", "mode", "missing", "engine", "available", "reason")
    clip_keys = ("score", "model", "available", "reason")
    text = {k: v for k, v in scores["text"].items() if k in text_keys}
    if "ocr_text" in scores["text"]:
        text["ocr_text"] = scores["text"]["ocr_text"][:MAX_KEPT_OCR_TEXT]
    return {"text": text, "clip": {k: v for k, v in scores["clip"].items() if k in clip_keys}}
