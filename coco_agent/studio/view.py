"""What the studio page shows, as JSON: the runs under the runs folder, one run's rounds (code highlighted by the
report's highlighter, draft, critique, routing decisions), its refinement before/after, its final and final.svg,
the review it waits for; and the batches with their summary rows.

Read from the run directories the CLI writes (``coco_agent.report.collect``), so the CLI and the studio show the
same runs. Paths become run-relative file URLs (``/files/<run id>/<path>``), served only from inside the runs
folder (app.py checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from coco_agent.report.collect import RunRow, read_detail, read_row
from coco_agent.rundir import (
    BATCH_FILE,
    FINAL_SVG_FILE,
    RESULT_FILE,
    REVIEW_FILE,
    SETTINGS_FILE,
    SUMMARY_JSON,
    TRACE_FILE,
)
from coco_agent.runs import read_json

MAX_RUNS = 500  # runs listed (newest first)


def is_run(path: Path) -> bool:
    return path.is_dir() and ((path / SETTINGS_FILE).is_file() or (path / RESULT_FILE).is_file())


def run_ids(root: Path) -> list[str]:
    """The runs under ``root`` (``<id>`` and ``<batch>/<id>``), newest first."""
    found: list[tuple[float, str]] = []
    if not root.is_dir():
        return []
    for child in root.iterdir():
        if is_run(child):
            found.append((child.stat().st_mtime, child.name))
        elif child.is_dir() and (child / BATCH_FILE).is_file():
            found += [(g.stat().st_mtime, f"{child.name}/{g.name}") for g in child.iterdir() if is_run(g)]
    return [name for _, name in sorted(found, reverse=True)[:MAX_RUNS]]


def run_summary(root: Path, run_id: str, jobs: dict[str, Any]) -> dict[str, Any]:
    """One line of the runs list."""
    row = read_row(root / run_id)
    return _row(row, run_id) | {"job": jobs.get(run_id)}


def _row(row: RunRow, run_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "status": row.status,
        "prompt": row.prompt[:300],
        "rounds": row.rounds,
        "seconds": row.seconds,
        "edited": row.edited,
        "error": row.error[:500],
    }


def run_detail(root: Path, run_id: str, jobs: dict[str, Any]) -> dict[str, Any]:
    """Everything the run's panel shows."""
    from coco_agent.report.page import code_html

    run_dir = root / run_id
    row = read_row(run_dir)
    detail = read_detail(row)
    settings = _read(run_dir / SETTINGS_FILE) or {}
    attempts = []
    for attempt in detail.attempts:
        attempts.append(
            {
                "round": attempt.round,
                "status": attempt.status,
                "source": attempt.source,
                "code": attempt.code,
                "code_html": code_html(attempt.code, attempt.code_name or "") if attempt.code else None,
                "draft": _url(run_id, run_dir, attempt.draft),
                "critique": attempt.critique,
                "error": attempt.error[:4000],
                "decisions": [
                    {k: d.get(k) for k in ("node", "decision", "why", "seconds", "source")}
                    for d in attempt.decisions
                ],
            }
        )
    refinement = detail.refinement or {}
    result = detail.result or {}
    return _row(row, run_id) | {
        "format": result.get("format") or (settings.get("context") or {}).get("format"),
        "settings": {
            k: (settings.get("context") or {}).get(k) for k in ("llm", "vlm", "refiner", "max_rounds")
        },
        "attempts": attempts,
        "best_round": result.get("best_round"),
        "refinement": {
            "why": refinement.get("why"),
            "kept": refinement.get("kept"),
            "region": refinement.get("region"),
            "before": _url(run_id, run_dir, detail.draft),
            "after": _url(run_id, run_dir, detail.refined),
        }
        if refinement
        else None,
        "final": _url(run_id, run_dir, detail.final),
        "final_svg": _url(run_id, run_dir, run_dir / FINAL_SVG_FILE),
        "review": _read(run_dir / REVIEW_FILE),
        "edits": [
            {k: e.get(k) for k in ("number", "from_round", "round", "at")}
            for e in settings.get("edits") or []
        ],
        "job": jobs.get(run_id),
        "version": version(run_dir),
    }


def version(run_dir: Path) -> list:
    """What changes whenever the run moves on (the live stream sends the run again when it does)."""
    marks = []
    for name in (TRACE_FILE, RESULT_FILE, REVIEW_FILE, SETTINGS_FILE):
        try:
            stat = (run_dir / name).stat()
            marks.append([name, stat.st_size, stat.st_mtime_ns])
        except OSError:
            marks.append([name, None])
    return marks


def batches(root: Path) -> list[dict[str, Any]]:
    """The batch folders under the runs folder, with their summary (rows and aggregates) when written."""
    out = []
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / BATCH_FILE).is_file():
            summary = _read(child / SUMMARY_JSON) or {}
            rows = [
                {k: r.get(k) for k in ("id", "status", "rounds", "seconds", "edited", "error", "prompt")}
                | {"run": f"{child.name}/{r.get('id')}"}
                for r in summary.get("rows") or []
            ]
            if not rows:
                rows = [_row(read_row(g), f"{child.name}/{g.name}") | {"run": f"{child.name}/{g.name}"}
                        for g in sorted(child.iterdir()) if is_run(g)]  # fmt: skip
            out.append({"name": child.name, "statuses": summary.get("statuses"), "rows": rows})
    return out


def _url(run_id: str, run_dir: Path, path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    rel = path.resolve().relative_to(run_dir.resolve()).as_posix()
    stamp = path.stat().st_mtime_ns
    return f"/files/{quote(run_id)}/{quote(rel)}?v={stamp}"


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
