"""The deterministic ranking of a round's candidates, before any critic looks: a program that ran beats one that
did not, then passing the draft checks and the geometry checks, then fewer facts-check problems (numbers,
labels and strings the prompt states against what the program drew), then fewer geometry problems (missing or
misspelled strings, overflow, overlap, text too small: coco_agent/geometry.py), then more of the prompt's quoted
strings drawn, then the OCR of those strings in the draft (when an OCR engine is here), then the earlier
candidate. The best ``TOP_K`` that pass every check form the critic's shortlist."""

from __future__ import annotations

from typing import Any

TOP_K = 3  # candidates the critic sees side by side at most


def facts_problems(candidate: dict[str, Any]) -> int:
    facts = (candidate.get("checks") or {}).get("facts") or {}
    return len(facts.get("problems") or [])


def geometry_problems(candidate: dict[str, Any]) -> int:
    """How many problems the geometry checks found (0 when the renderer reported no texts to check)."""
    geometry = candidate.get("geometry") or {}
    return sum((geometry.get("counts") or {}).values()) or (0 if geometry.get("ok", True) else 1)


def checks_pass(candidate: dict[str, Any]) -> bool:
    """The draft checks (with the facts check) and the geometry checks found nothing."""
    return bool((candidate.get("checks") or {}).get("ok")) and (candidate.get("geometry") or {}).get(
        "ok", True
    )


def quoted_ratio(candidate: dict[str, Any]) -> float:
    quoted = ((candidate.get("checks") or {}).get("facts") or {}).get("quoted") or {}
    total = quoted.get("total") or 0
    return (quoted.get("drawn") or 0) / total if total else 0.0


def ocr_score(candidate: dict[str, Any]) -> float:
    value = (candidate.get("ocr") or {}).get("score")
    return float(value) if isinstance(value, int | float) else 0.0


def rank_key(candidate: dict[str, Any]) -> tuple:
    """Larger is better (sorted in reverse); the last element keeps the order total and stable."""
    return (
        candidate.get("status") == "ok" and bool(candidate.get("draft_path")),
        checks_pass(candidate),
        -facts_problems(candidate),
        -geometry_problems(candidate),
        quoted_ratio(candidate),
        ocr_score(candidate),
        -int(candidate.get("cand") or 0),
    )


def rank(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates best first."""
    return sorted(candidates, key=rank_key, reverse=True)


def passes(candidate: dict[str, Any]) -> bool:
    """Rendered and passed every deterministic check (the draft checks, the facts check, the geometry checks)."""
    return candidate.get("status") == "ok" and checks_pass(candidate) and bool(candidate.get("draft_path"))


def shortlist(ranked: list[dict[str, Any]], k: int = TOP_K) -> list[int]:
    """The numbers of the best ``k`` candidates that pass every check, best first."""
    return [c["cand"] for c in ranked if passes(c)][:k]


def summary(candidate: dict[str, Any], position: int) -> dict[str, Any]:
    """What ranking.json, result.json and the report show of one candidate."""
    checks = candidate.get("checks") or {}
    return {
        "cand": candidate.get("cand"),
        "rank": position,
        "status": candidate.get("status"),
        "code": candidate.get("code_path"),
        "draft": candidate.get("draft_path"),
        "checks_ok": checks.get("ok"),
        "problems": (checks.get("problems") or [])[:5],
        "facts_problems": facts_problems(candidate),
        "geometry_problems": geometry_problems(candidate),
        "quoted_drawn": quoted_ratio(candidate),
        "ocr_score": (candidate.get("ocr") or {}).get("score"),
        "error": (candidate.get("error") or "")[-300:],
        "key": list(rank_key(candidate)),
    }
