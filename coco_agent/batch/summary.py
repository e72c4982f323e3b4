"""OUT/summary.json and OUT/summary.csv: one row per prompt, read back from each run's result.json, and aggregates.

Rows are written as they are read (a 100,000-prompt batch never sits in memory). ``scores`` is copied from
result.json when a scorer put it there (``{"name": number, ...}``); its means appear among the aggregates.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coco_agent.batch.prompts_file import PromptItem
from coco_agent.rundir import REVIEW_FILE, SUMMARY_CSV, SUMMARY_JSON, result_path, settings_path
from coco_agent.runs import now, read_json
from coco_agent.safe_text import json_text

NODES = ("prepare", "write_code", "repair", "execute", "check", "critique", "refine", "finalize")
STATUSES = (
    "accepted",
    "max_rounds",
    "budget",
    "failed",
    "paused",
    "pending",
)  # paused: waits for `coco review`
UNFINISHED = ("paused", "pending")
CSV_FIELDS = (
    "id",
    "line",
    "status",
    "rounds",
    "seconds",
    *(f"seconds_{node}" for node in NODES),
    "coder",
    "critic",
    "refiner",
    "refinement_kept",
    "edited",
    "calls",
    "input_tokens",
    "output_tokens",
    "usd",
    "scores",
    "error",
    "prompt",
)


def summary_row(item: PromptItem, run_dir: Path, error: str | None = None) -> dict[str, Any]:
    """The summary row of one prompt: from its result.json, else ``pending`` (not finished yet)."""
    row: dict[str, Any] = {"id": item.id, "line": item.line, "prompt": item.prompt[:300]}
    result = _read(result_path(run_dir))
    if result is None and not error and (run_dir / REVIEW_FILE).is_file():
        review = _read(run_dir / REVIEW_FILE) or {}
        why = f"waits for review of the {review.get('point', 'draft')}: coco review {run_dir}"
        return row | {"status": "paused", "rounds": review.get("round") or 0, "seconds": 0.0, "error": why}
    if result is None or error:
        status = "failed" if error else "pending"
        why = error or (
            "interrupted; rerun the batch to resume it" if settings_path(run_dir).exists() else ""
        )
        return row | {"status": status, "rounds": 0, "seconds": 0.0, "seconds_per_node": {}, "error": why}
    refinement = result.get("refinement") or {}
    return row | {
        "status": result.get("status", "failed"),
        "rounds": result.get("rounds", 0),
        "seconds": result.get("seconds", 0.0),
        "seconds_per_node": result.get("seconds_per_node") or {},
        "models": result.get("models") or {},
        "refiner": result.get("refiner"),
        "refinement_kept": refinement.get("kept") if refinement else None,
        "edited": len(result.get("edits") or []),  # `coco edit`s on the run's line (its human attempts)
        "usage": _usage_row(result.get("usage")),
        "scores": result.get("scores"),
        "error": result.get("error", ""),
        "meta": item.meta or None,
    }


def _usage_row(usage: Any) -> dict[str, Any] | None:
    """The ledger totals a summary row keeps (calls, tokens, dollars or why not)."""
    if not isinstance(usage, dict):
        return None
    keep = (
        "calls",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "calls_without_usage",
        "usd",
        "usd_priced",
        "price",
    )
    return {k: usage.get(k) for k in keep}


class Aggregates:
    """Running totals over rows: statuses, rounds, seconds (kept as floats for percentiles), scores."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.rounds: list[int] = []
        self.seconds: list[float] = []
        self.node_seconds: dict[str, float] = defaultdict(float)
        self.scores: dict[str, list[float]] = defaultdict(list)
        self.usage = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "usd_priced": 0.0}
        self.unpriced: set[str] = set()
        self.without_usage = 0

    def add_usage(self, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        for key in ("calls", "input_tokens", "output_tokens", "total_tokens"):
            self.usage[key] += int(usage.get(key) or 0)
        self.usage["usd_priced"] += float(usage.get("usd_priced") or 0.0)
        self.without_usage += int(usage.get("calls_without_usage") or 0)
        if usage.get("usd") is None and usage.get("calls"):
            self.unpriced.add(str(usage.get("price")))

    def add(self, row: dict[str, Any]) -> None:
        self.statuses[row["status"]] += 1
        self.add_usage(row.get("usage"))
        if row["status"] in UNFINISHED:
            return
        self.rounds.append(int(row.get("rounds") or 0))
        self.seconds.append(float(row.get("seconds") or 0.0))
        for node, sec in (row.get("seconds_per_node") or {}).items():
            self.node_seconds[node] += float(sec)
        for name, value in (row.get("scores") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                self.scores[name].append(float(value))

    def as_dict(self, wall_seconds: float | None, ran: int) -> dict[str, Any]:
        n = sum(self.statuses.values())
        finished = n - sum(self.statuses[status] for status in UNFINISHED)
        return {
            "n": n,
            "finished": finished,
            "statuses": {status: self.statuses[status] for status in STATUSES},
            "acceptance_rate": _ratio(self.statuses["accepted"], finished),
            "mean_rounds": _mean(self.rounds),
            "p50_seconds": percentile(self.seconds, 50),
            "p95_seconds": percentile(self.seconds, 95),
            "mean_seconds_per_node": {
                node: round(total / finished, 3) for node, total in self.node_seconds.items() if finished
            },
            "ran_this_time": ran,
            "wall_seconds": round(wall_seconds, 3) if wall_seconds is not None else None,
            "prompts_per_minute": (round(60 * ran / wall_seconds, 2) if wall_seconds and ran else None),
            "scores": {name: _mean(values) for name, values in sorted(self.scores.items())},
            "usage": {
                **self.usage,
                "usd_priced": round(self.usage["usd_priced"], 6),
                "usd": None if self.unpriced else round(self.usage["usd_priced"], 6),
                "calls_without_usage": self.without_usage,
                "price": "; ".join(sorted(self.unpriced)) or "known",
            },
        }


def write_summary(
    out: Path,
    items: Iterable[PromptItem],
    manifest: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    wall_seconds: float | None = None,
    ran: int = 0,
    budget: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write summary.json and summary.csv (atomically) for ``items``; return the summary without its rows.
    ``budget``: the batch budget's figures (and why it stopped the batch), when it had one."""
    errors = errors or {}
    totals = Aggregates()
    with _atomic(out / SUMMARY_CSV) as csv_fh, _atomic(out / SUMMARY_JSON) as json_fh:
        writer = csv.DictWriter(csv_fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        json_fh.write('{\n  "rows": [')
        for i, item in enumerate(items):
            row = summary_row(item, out / item.id, errors.get(item.id))
            totals.add(row)
            json_fh.write(("," if i else "") + "\n    " + json_text(row, default=str))
            writer.writerow(csv_row(row))
        summary = {
            "batch_id": manifest.get("batch_id"),
            "prompts": manifest.get("prompts"),
            "settings": manifest.get("settings"),
            "written": now(),
            **totals.as_dict(wall_seconds, ran),
            "batch_budget": budget,
        }
        head = json_text(summary, indent=2, default=str)
        json_fh.write("\n  ],\n" + head[2:] + "\n")
    return summary


def read_summary(out: Path) -> dict[str, Any] | None:
    return _read(out / SUMMARY_JSON)


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {key: row.get(key) for key in CSV_FIELDS}
    for node in NODES:
        flat[f"seconds_{node}"] = (row.get("seconds_per_node") or {}).get(node)
    models = row.get("models") or {}
    flat["coder"], flat["critic"] = models.get("coder"), models.get("critic")
    flat["scores"] = json.dumps(row["scores"]) if row.get("scores") else ""
    usage = row.get("usage") or {}
    for key in ("calls", "input_tokens", "output_tokens", "usd"):
        flat[key] = usage.get(key)
    return flat


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 3)


def _mean(values: list[float] | list[int]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _read(path: Path) -> dict[str, Any] | None:
    """A run's result.json, or None when it is missing, unreadable or not a JSON object."""
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class _atomic:
    """Write a text file through a temp file in the same folder, renamed into place on success."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        # backslashreplace: a lone surrogate (a prompt given as a command-line argument) cannot fail the write
        self.fh = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="")
        return self.fh

    def __exit__(self, kind, *exc: object) -> None:
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            Path(self.tmp).unlink(missing_ok=True)
