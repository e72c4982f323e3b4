"""Read what a report shows from disk: a batch folder (OUT/<id>/ run directories) or a single run directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coco_agent.errors import ReportError
from coco_agent.rundir import (
    BATCH_FILE,
    CRITIQUE_FILE,
    DRAFT_FILE,
    ERROR_FILE,
    FINAL_FILE,
    RESULT_FILE,
    REVIEW_FILE,
    SETTINGS_FILE,
    SUMMARY_JSON,
    attempt_dirs,
    code_file,
)
from coco_agent.runs import read_json
from coco_agent.trace import read_trace

CODE_LIMIT = 200_000  # characters of a program shown
TEXT_LIMIT = 20_000  # characters of an error or answer shown


@dataclass
class RunRow:
    """One line of the summary table."""

    id: str
    run_dir: Path
    status: str
    prompt: str
    rounds: int = 0
    seconds: float = 0.0
    seconds_per_node: dict[str, float] = field(default_factory=dict)
    coder: str | None = None
    critic: str | None = None
    refinement_kept: bool | None = None
    scores: dict[str, Any] | None = None
    error: str = ""
    edited: int = 0  # `coco edit`s on the run's line
    usage: dict[str, Any] | None = None  # the run's ledger totals (result.json "usage")


@dataclass
class Attempt:
    """One round of a run, as its attempts/NN folder and the trace tell it."""

    round: int
    status: str | None
    code: str | None
    code_name: str | None
    draft: Path | None
    critique: dict[str, Any] | None
    error: str
    decisions: list[dict[str, Any]]
    source: str = "model"  # "human": a person wrote the program (coco edit, a review's edit)


@dataclass
class RunDetail:
    """Everything the per-prompt section shows."""

    row: RunRow
    result: dict[str, Any] | None
    texts: list[str]
    attempts: list[Attempt]
    refinement: dict[str, Any] | None
    draft: Path | None
    refined: Path | None
    final: Path | None
    run_decisions: list[dict[str, Any]]


@dataclass
class Target:
    """What a report is about: ``kind`` "batch" or "run", its folder, batch.json and summary.json if any."""

    kind: str
    path: Path
    manifest: dict[str, Any] | None
    summary: dict[str, Any] | None


def open_target(path: Path) -> Target:
    """Tell a batch folder from a run directory; ReportError for anything else."""
    if not path.is_dir():
        raise ReportError(f"{path} is not a folder; pass a batch folder (coco batch -o) or a run directory")
    if (path / SETTINGS_FILE).exists() or (path / RESULT_FILE).exists():
        return Target("run", path, None, None)
    manifest = _read(path / BATCH_FILE)
    summary = _read(path / SUMMARY_JSON)
    if manifest is None and not any(_run_dirs(path)):
        raise ReportError(f"{path} holds neither a batch ({BATCH_FILE}) nor a run ({SETTINGS_FILE})")
    return Target("batch", path, manifest, summary)


def run_dirs(target: Target) -> list[Path]:
    """The run directories in report order: the prompts file's order when summary.json has it, else by name."""
    if target.kind == "run":
        return [target.path]
    found = {p.name: p for p in _run_dirs(target.path)}
    ordered = []
    for row in (target.summary or {}).get("rows", []):
        if row.get("id") in found:
            ordered.append(found.pop(row["id"]))
    return ordered + [found[name] for name in sorted(found)]


def read_row(run_dir: Path) -> RunRow:
    """The table row of a run: result.json when it finished, else run.json (``pending``)."""
    result = _read(run_dir / RESULT_FILE)
    settings = _read(run_dir / SETTINGS_FILE) or {}
    if result is None:
        paused = (run_dir / REVIEW_FILE).is_file()
        return RunRow(
            id=run_dir.name,
            run_dir=run_dir,
            status="paused" if paused else "pending",
            prompt=settings.get("prompt", ""),
            error="waits for review: coco review RUN"
            if paused
            else "not finished (interrupted, or still running)",
            edited=len(settings.get("edits") or []),
        )
    models = result.get("models") or {}
    refinement = result.get("refinement") or {}
    return RunRow(
        id=run_dir.name,
        run_dir=run_dir,
        status=result.get("status", "failed"),
        prompt=result.get("prompt") or settings.get("prompt", ""),
        rounds=result.get("rounds") or 0,
        seconds=result.get("seconds") or 0.0,
        seconds_per_node=result.get("seconds_per_node") or {},
        coder=models.get("coder"),
        critic=models.get("critic"),
        refinement_kept=refinement.get("kept") if refinement else None,
        scores=result.get("scores"),
        error=result.get("error") or "",
        edited=len(result.get("edits") or []),
        usage=result.get("usage") if isinstance(result.get("usage"), dict) else None,
    )


def read_detail(row: RunRow) -> RunDetail:
    """Attempts (code, draft, critique, routing decisions), refinement and final image of one run."""
    run_dir = row.run_dir
    result = _read(run_dir / RESULT_FILE)
    settings = _read(run_dir / SETTINGS_FILE) or {}
    trace = _safe_trace(run_dir)
    records = {a.get("round"): a for a in (result or {}).get("attempts", [])}
    attempts = []
    for rnd, folder in attempt_dirs(run_dir):
        program = code_file(folder)
        draft = folder / DRAFT_FILE
        critique = _read(folder / CRITIQUE_FILE)
        attempts.append(
            Attempt(
                round=rnd,
                status=(records.get(rnd) or {}).get("status") or ("ok" if draft.exists() else None),
                code=_text(program, CODE_LIMIT) if program else None,
                code_name=program.name if program else None,
                draft=draft if draft.exists() else None,
                critique=critique,
                error=_text(folder / ERROR_FILE, TEXT_LIMIT) or "",
                decisions=[t for t in trace if t.get("round") == rnd and t.get("node") != "runner"],
                source=(records.get(rnd) or {}).get("source") or "model",
            )
        )
    refinement = (result or {}).get("refinement")
    draft_rel = (refinement or {}).get("draft") or ((result or {}).get("paths") or {}).get("draft")
    refined_rel = (refinement or {}).get("refined")
    final = run_dir / FINAL_FILE
    return RunDetail(
        row=row,
        result=result,
        texts=settings.get("texts") or [],
        attempts=attempts,
        refinement=refinement,
        draft=_existing(run_dir, draft_rel),
        refined=_existing(run_dir, refined_rel),
        final=final if final.exists() else None,
        run_decisions=[t for t in trace if t.get("node") in ("runner", "prepare", "finalize")],
    )


def _run_dirs(path: Path) -> Iterator[Path]:
    for child in path.iterdir():
        if child.is_dir() and ((child / SETTINGS_FILE).exists() or (child / RESULT_FILE).exists()):
            yield child


def _existing(run_dir: Path, rel: str | None) -> Path | None:
    if not rel:
        return None
    path = (run_dir / rel).resolve()
    inside = run_dir.resolve() in path.parents
    return path if inside and path.is_file() else None


def _safe_trace(run_dir: Path) -> list[dict[str, Any]]:
    try:
        return current_line(read_trace(run_dir))
    except (OSError, ValueError):
        return []


def current_line(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace lines of the run's current line: a `coco edit` entry (node ``edit``, the round it wrote) drops
    the earlier lines of that round and later ones, which belong to the line the edit replaced (its files are
    under edits/NN/replaced/; trace.jsonl itself keeps every line)."""
    kept: list[dict[str, Any]] = []
    for entry in trace:
        rnd = entry.get("round")
        if entry.get("node") == "edit" and isinstance(rnd, int):
            kept = [e for e in kept if not (isinstance(e.get("round"), int) and e["round"] >= rnd)]
        kept.append(entry)
    return kept


def _text(path: Path, limit: int) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit:,} more characters)"


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
