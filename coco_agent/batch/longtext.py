"""LongText-Bench through the batch driver: find the data, score every draft and final, aggregate.

Every image is read by a local OCR engine and scored with the benchmark's formula (``coco_agent.scoring``: the
same code as `coco score` and the refinement guardrail). That is a local-OCR proxy, not the official number
(which renders 4 images per prompt and reads them with Qwen2.5-VL-7B).

Each run's result.json gets ``scores`` (``draft_text_score``, ``final_text_score``: numbers the batch summary and
the report pick up) and ``text_scores`` (matched / total / missing words and the OCR text of each image). A
prompt that ended without an image counts 0 matched of its ground-truth words, as in the benchmark.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from coco_agent.batch.prompts_file import PromptItem, iter_prompts
from coco_agent.runs import RESULT_FILE, read_json, write_json
from coco_agent.scoring import PROXY_NOTE, TextScore, aggregate, score_text
from coco_agent.scoring.score import text_part

Lang = Literal["en", "zh"]
FILES: dict[str, str] = {"en": "text_prompts.jsonl", "zh": "text_prompts_zh.jsonl"}
DATA_ENV = "COCO_LONGTEXT_BENCH"
RELATIVE = Path("..") / "shared" / "benchmarks" / "longtext_bench"
IMAGES = ("draft", "final")
SCORE_KEYS = {"draft": "draft_text_score", "final": "final_text_score"}
TEXT_KEYS = ("score", "matched", "total", "mode", "raw_score", "missing", "engine", "ocr_text")
MAX_OCR_TEXT = 1000


class BenchDataMissing(FileNotFoundError):
    """The LongText-Bench files are not where they should be; the message names the expected path."""


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
    """The batch ``on_result`` hook: OCR the draft and the final of a run, store their text scores."""

    def __init__(self, lang: Lang, ocr: str = "auto") -> None:
        self.lang = lang
        self.ocr = ocr

    def __call__(self, item: PromptItem, run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
        return self.score(item, run_dir, result)

    def score(self, item: PromptItem, run_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with ``scores`` and ``text_scores`` filled in (images read once even if equal)."""
        records: dict[str, dict[str, Any]] = {}
        read: dict[str, dict[str, Any]] = {}
        for which in IMAGES:
            path = _image_path(run_dir, result, which)
            if path is None:
                records[which] = self._nothing(item, f"no {which} image")
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in read:
                read[digest] = self._read(path, item)
            records[which] = {**read[digest], "image": os.path.relpath(path, run_dir)}
        scores = dict(result.get("scores") or {})
        scores.update({SCORE_KEYS[w]: records[w]["score"] for w in IMAGES if "score" in records[w]})
        return result | {
            "scores": scores,
            "text_scores": {"proxy": PROXY_NOTE, "lang": self.lang, "ocr": self.ocr, **records},
        }

    def is_scored(self, result: dict[str, Any]) -> bool:
        """Whether result.json already holds this scorer's figures (same language and OCR choice)."""
        text = result.get("text_scores") or {}
        return (
            text.get("lang") == self.lang
            and text.get("ocr") == self.ocr
            and all("total" in (text.get(w) or {}) for w in IMAGES)
        )

    def _read(self, path: Path, item: PromptItem) -> dict[str, Any]:
        from PIL import Image

        with Image.open(path) as opened:
            part = text_part(opened.convert("RGB"), item.texts, self.ocr, self.lang)
        if "score" not in part:
            raise RuntimeError(f"cannot score {path}: {part.get('reason')}")
        kept = {k: part[k] for k in TEXT_KEYS if k in part}
        kept["ocr_text"] = kept.get("ocr_text", "")[:MAX_OCR_TEXT]
        return kept

    def _nothing(self, item: PromptItem, why: str) -> dict[str, Any]:
        empty = score_text([], item.texts, self.lang)
        return {**empty.as_dict(), "note": why}


def _image_path(run_dir: Path, result: dict[str, Any], which: str) -> Path | None:
    name = (result.get("paths") or {}).get(which)
    if not name:
        return None
    path = Path(name) if Path(name).is_absolute() else run_dir / name
    return path if path.is_file() else None


def score_missing(out: Path, prompts: Path, limit: int | None, scorer: LongTextScorer) -> int:
    """Score finished runs whose result.json lacks this scorer's figures (a crash between the run and the hook,
    or an earlier run with another OCR engine); return how many were scored."""
    scored = 0
    for item in iter_prompts(prompts, limit):
        path = out / item.id / RESULT_FILE
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
    overall: dict[str, list[TextScore]] = {w: [] for w in IMAGES}
    statuses: dict[str, int] = defaultdict(int)
    n = 0
    for item in iter_prompts(prompts, limit):
        n += 1
        result = _read(out / item.id / RESULT_FILE) or {}
        statuses[result.get("status", "pending")] += 1
        text = result.get("text_scores") or {}
        for which in IMAGES:
            record = text.get(which)
            score = _as_score(record) if record else score_text([], item.texts, lang)
            overall[which].append(score)
            for key in groups:
                label = str(item.meta.get(key, "unknown"))
                groups[key].setdefault(label, {w: [] for w in IMAGES})[which].append(score)
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
        "draft_text_score": aggregate(parts["draft"]),
        "final_text_score": aggregate(parts["final"]),
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
