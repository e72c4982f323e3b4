"""LongText-Bench through the batch driver: find the data, score every attempt's draft and the final, aggregate.

Every image is read by a local OCR engine and scored with the benchmark's formula (``coco_agent.scoring``: the
same code as `coco score` and the refinement guardrail). That is a local-OCR proxy, not the official number
(which renders 4 images per prompt and reads them with Qwen2.5-VL-7B).

Each run's result.json gets ``scores`` (numbers the batch summary and the report pick up):

- ``draft_text_score``: the chosen draft (the accepted one, or the best-judged one when rounds ran out: the
  draft the refiner got);
- ``final_text_score``: final.png;
- ``first_draft_text_score``: round 1's draft, what the coder drew before any critique (0 when it drew nothing);
- ``best_draft_text_score``: the best-reading draft of all rounds (what a perfect chooser would have kept);
- ``attempt_text_scores``: one score per round, in order (``null`` for a round that left no draft);

and ``text_scores``: matched / total / missing words and the OCR text of the chosen draft, the final and each
attempt (``attempts``). An image that does not exist counts 0 matched of the ground-truth words, as in the
benchmark. ``first`` minus ``draft`` over the bench shows what the critique loop gained.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from coco_agent.batch.prompts_file import PromptItem, iter_prompts
from coco_agent.errors import BenchDataMissing
from coco_agent.rundir import result_path
from coco_agent.runs import read_json, write_json
from coco_agent.scoring import PROXY_NOTE, TextScore, aggregate, score_text
from coco_agent.scoring.score import text_part

Lang = Literal["en", "zh"]
FILES: dict[str, str] = {"en": "text_prompts.jsonl", "zh": "text_prompts_zh.jsonl"}
DATA_ENV = "COCO_LONGTEXT_BENCH"
RELATIVE = Path("..") / "shared" / "benchmarks" / "longtext_bench"
IMAGES = ("draft", "final")
SCORE_KEYS = {"draft": "draft_text_score", "final": "final_text_score"}
FIGURES = ("first", "draft", "best", "final")  # bench figures, in the order the table shows them
FIGURE_KEYS = {"first": "first_draft_text_score", "best": "best_draft_text_score", **SCORE_KEYS}
TEXT_KEYS = ("score", "matched", "total", "mode", "raw_score", "missing", "engine", "ocr_text")
MAX_OCR_TEXT = 1000


def repo_root() -> Path:
    """The checkout this package runs from (the folder holding ``coco_agent/``)."""
    return Path(__file__).resolve().parent.parent.parent


def find_prompts(lang: Lang = "en", data_dir: str | Path | None = None) -> Path:
    """The LongText-Bench prompts file for ``lang``: from ``data_dir``, env COCO_LONGTEXT_BENCH, or
    ``../shared/benchmarks/longtext_bench`` beside the repository root (or the current folder)."""
    name = FILES[lang]
    given = data_dir or os.environ.get(DATA_ENV)
    if given:
        candidates = [Path(given).expanduser()]
    else:
        candidates = [(repo_root() / RELATIVE).resolve(), (Path.cwd() / RELATIVE).resolve()]
    for folder in candidates:
        if (folder / name).is_file():
            return folder / name
    where = " or ".join(str(folder / name) for folder in dict.fromkeys(candidates))
    raise BenchDataMissing(
        f"LongText-Bench prompts not found: expected {where}. Put the benchmark's shared/ folder beside the "
        f"checkout, or pass --data DIR (env {DATA_ENV})"
    )


class LongTextScorer:
    """The batch ``on_result`` hook: OCR every attempt's draft, the chosen draft and the final of a run, store
    their text scores (see the module docstring)."""

    def __init__(self, lang: Lang, ocr: str = "auto") -> None:
        self.lang = lang
        self.ocr = ocr

    def __call__(self, item: PromptItem, run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
        return self.score(item, run_dir, result)

    def score(self, item: PromptItem, run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with ``scores`` and ``text_scores`` filled in (each distinct image read once: the chosen
        draft is one of the attempts' drafts, and without a refiner the final is that draft again)."""
        read: dict[str, dict[str, Any]] = {}

        def record(path: Path | None, why: str) -> dict[str, Any]:
            if path is None:
                return self._nothing(item, why)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in read:
                read[digest] = self._read(path, item)
            return {**read[digest], "image": os.path.relpath(path, run_dir)}

        records = {
            which: record(_image_path(run_dir, result, which), f"no {which} image") for which in IMAGES
        }
        attempts = []
        for attempt in result.get("attempts") or []:
            path = _resolve(run_dir, attempt.get("draft"))
            attempts.append({"round": attempt.get("round"), **record(path, "no draft in this round")})
        figures = attempt_figures(attempts, item.texts, self.lang)
        scores = dict(result.get("scores") or {})
        scores.update({SCORE_KEYS[w]: records[w]["score"] for w in IMAGES})
        scores.update({FIGURE_KEYS[w]: figures[w].score for w in ("first", "best")})
        scores["attempt_text_scores"] = [None if "note" in a else a["score"] for a in attempts]
        return result | {
            "scores": scores,
            "text_scores": {
                "proxy": PROXY_NOTE,
                "lang": self.lang,
                "ocr": self.ocr,
                **records,
                "attempts": attempts,
            },
        }

    def is_scored(self, result: dict[str, Any]) -> bool:
        """Whether result.json already holds this scorer's figures (same language and OCR choice, every
        attempt scored)."""
        text = result.get("text_scores") or {}
        attempts = text.get("attempts")
        return (
            text.get("lang") == self.lang
            and text.get("ocr") == self.ocr
            and all("total" in (text.get(w) or {}) for w in IMAGES)
            and isinstance(attempts, list)
            and len(attempts) == len(result.get("attempts") or [])
        )

    def _read(self, path: Path, item: PromptItem) -> dict[str, Any]:
        from coco_agent.sandbox import SandboxLimits
        from coco_agent.sandbox.png import decode_png, read_bounded

        limits = SandboxLimits()  # the limits a draft was accepted under: anything larger is not ours
        image = decode_png(read_bounded(path, limits.max_png_bytes), limits.max_pixels, limits.max_png_bytes)
        part = text_part(image.convert("RGB"), item.texts, self.ocr, self.lang)
        if "score" not in part:
            raise RuntimeError(f"cannot score {path}: {part.get('reason')}")
        kept = {k: part[k] for k in TEXT_KEYS if k in part}
        kept["ocr_text"] = kept.get("ocr_text", "")[:MAX_OCR_TEXT]
        return kept

    def _nothing(self, item: PromptItem, why: str) -> dict[str, Any]:
        empty = score_text([], item.texts, self.lang)
        return {**empty.as_dict(), "note": why}


def attempt_figures(attempts: list[dict[str, Any]], texts: list[str], lang: Lang) -> dict[str, TextScore]:
    """Round 1's draft score and the best draft score over all rounds of one prompt (0 matched when there is
    no such draft: a run that never drew, or a first round that crashed)."""
    nothing = score_text([], texts, lang)
    scored = [(a, _as_score(a)) for a in attempts if "note" not in a and "total" in a]
    first = next((score for a, score in scored if a.get("round") == 1), nothing)
    best = max((score for _, score in scored), key=lambda s: s.matched, default=nothing)
    return {"first": first, "best": best}


def _image_path(run_dir: Path, result: dict[str, Any], which: str) -> Path | None:
    return _resolve(run_dir, (result.get("paths") or {}).get(which))


def _resolve(run_dir: Path, name: str | None) -> Path | None:
    """An image path of result.json (relative to the run directory, or absolute) when the file exists."""
    if not name:
        return None
    path = Path(name) if Path(name).is_absolute() else run_dir / name
    return path if path.is_file() else None


def score_missing(out: Path, prompts: Path, limit: int | None, scorer: LongTextScorer) -> int:
    """Score finished runs whose result.json lacks this scorer's figures (a crash between the run and the hook,
    or an earlier run with another OCR engine); return how many were scored."""
    scored = 0
    for item in iter_prompts(prompts, limit):
        path = result_path(out / item.id)
        if not path.is_file():
            continue
        result = read_json(path)
        if not scorer.is_scored(result):
            write_json(path, scorer.score(item, out / item.id, result))
            scored += 1
    return scored


def bench_summary(
    out: Path, prompts: Path, limit: int | None, lang: Lang, ocr: str, engine: str
) -> dict[str, Any]:
    """The benchmark figures over every prompt: overall, by category and by length (sums before dividing)."""
    groups: dict[str, dict[str, dict[str, list[TextScore]]]] = {"category": {}, "length": {}}
    overall: dict[str, list[TextScore]] = {w: [] for w in FIGURES}
    statuses: dict[str, int] = defaultdict(int)
    n = 0
    for item in iter_prompts(prompts, limit):
        n += 1
        result = _read(result_path(out / item.id)) or {}
        statuses[result.get("status", "pending")] += 1
        text = result.get("text_scores") or {}
        found = attempt_figures(text.get("attempts") or [], item.texts, lang)
        for which in IMAGES:
            record = text.get(which)
            found[which] = _as_score(record) if record else score_text([], item.texts, lang)
        for which in FIGURES:
            overall[which].append(found[which])
            for key in groups:
                label = str(item.meta.get(key, "unknown"))
                groups[key].setdefault(label, {w: [] for w in FIGURES})[which].append(found[which])
    return {
        "benchmark": "LongText-Bench",
        "lang": lang,
        "n": n,
        "ocr": engine,
        "ocr_option": ocr,
        "official": False,
        "proxy": PROXY_NOTE,
        **_figures(overall),
        "by_category": {label: _figures(parts) for label, parts in sorted(groups["category"].items())},
        "by_length": {label: _figures(parts) for label, parts in sorted(groups["length"].items())},
        "statuses": dict(statuses),
        "out": str(out),
    }


def _figures(parts: dict[str, list[TextScore]]) -> dict[str, Any]:
    scores = parts["draft"]
    return {
        "n": len(scores),
        **{FIGURE_KEYS[which]: aggregate(parts[which]) for which in FIGURES},
        "units": sum(s.total for s in scores),
    }


def _as_score(record: dict[str, Any]) -> TextScore:
    return TextScore(
        score=float(record.get("score", 0.0)),
        matched=int(record.get("matched", 0)),
        total=int(record.get("total", 0)),
        mode=record.get("mode", "en"),
        raw_score=float(record.get("raw_score", 0.0)),
    )


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
