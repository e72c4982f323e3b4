"""Reading and writing run files: atomic writes, JSON, and result.json's record (names: ``coco_agent.rundir``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coco_agent.rundir import (  # re-exported: older imports name them here
    CHECKPOINT_FILE,
    FINAL_FILE,
    RESULT_FILE,
    SETTINGS_FILE,
    TRACE_FILE,
    attempt_dir,
)
from coco_agent.safe_text import json_text
from coco_agent.version import __version__

__all__ = [
    "CHECKPOINT_FILE",
    "FINAL_FILE",
    "RESULT_FILE",
    "SETTINGS_FILE",
    "attempt_dir",
    "build_result",
    "file_mode",
    "now",
    "read_json",
    "rel",
    "seconds_per_node",
    "write_bytes",
    "write_json",
]


def rel(run_dir: str | Path, path: str | Path) -> str:
    """A path relative to the run directory (runs stay movable)."""
    return os.path.relpath(Path(path), Path(run_dir))


def file_mode() -> int:
    """The mode a plain open() would give a new file (0o666 less the umask; mkstemp alone gives 0o600)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (a temp file in the same folder, renamed into place), with the usual mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, file_mode())
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (a killed run never leaves half a file). Text is kept exactly; DEL, C1 and bidi
    controls and lone surrogates are spelled \\uXXXX (see safe_text.json_text), so `cat` shows them harmlessly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, file_mode())
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json_text(data, indent=2, default=str))
        fh.write("\n")
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _facts_summary(attempt: dict[str, Any]) -> dict[str, Any] | None:
    """The facts check of an attempt, as result.json keeps it (None: not checked)."""
    facts = (attempt.get("checks") or {}).get("facts")
    if not facts:
        return None
    keep = ("available", "problems", "checked", "skipped", "quoted")
    return {k: facts.get(k) for k in keep} | {"path": attempt.get("facts_path")}


def _candidates_summary(attempt: dict[str, Any]) -> dict[str, Any]:
    """An attempt's candidates (--candidates N): the chosen one, the ranking, the shortlist, each candidate."""
    if not attempt.get("candidates"):
        return {}
    return {
        "cand": attempt.get("cand"),
        "ranking": attempt.get("ranking"),
        "shortlist": attempt.get("shortlist"),
        "candidates": attempt.get("candidates"),
        "montage": attempt.get("montage_path"),
    }


def seconds_per_node(timings: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for t in timings:
        totals[t["node"]] += t["seconds"]
    return {node: round(sec, 3) for node, sec in totals.items()}


def build_result(state: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The result.json record for a finished (or failed) run: the outcome, one record per attempt, the cost
    ledger (``usage``: totals of calls.jsonl; ``calls``: the calls the run went on with), the budget and why it
    stopped the run, and what reproduces it (``reproduce``: coco_agent/reproduce.py)."""
    from coco_agent.ledger.budget import Limits
    from coco_agent.ledger.records import read_calls, totals
    from coco_agent.reproduce import reproduction

    run_dir = state.get("run_dir", "")
    attempts = state.get("attempts", [])
    per_node = seconds_per_node(state.get("timings", []))
    best = next((a for a in attempts if a["round"] == state.get("best_round")), None)
    final = state.get("final_path")
    sandboxes = sorted({a["sandbox"] for a in attempts if a.get("sandbox")})
    return {
        "prompt": state.get("prompt", ""),
        "status": state.get("status", "failed"),
        "error": state.get("error", ""),
        "rounds": state.get("round", 0),
        "max_rounds": settings.get("max_rounds"),
        "best_round": state.get("best_round"),
        "format": state.get("format", settings.get("format")),
        "format_choice": state.get("format_choice"),
        "models": {"coder": settings.get("coder"), "critic": settings.get("critic")},
        "refiner": settings.get("refiner"),
        "sandbox": sandboxes[-1] if len(sandboxes) == 1 else (sandboxes or None),
        "seconds": round(sum(per_node.values()), 3),
        "seconds_per_node": per_node,
        "paths": {
            "run_dir": str(Path(run_dir).resolve()) if run_dir else "",
            "final": final,
            "draft": best.get("draft_path") if best else None,
            "trace": TRACE_FILE,
        },
        "attempts": [
            {
                "round": a["round"],
                "status": a.get("status"),
                "code": a.get("code_path"),
                "draft": a.get("draft_path"),
                "error": (a.get("error") or "")[-500:],
                "checks_ok": (a.get("checks") or {}).get("ok"),
                "geometry": (a.get("geometry") or {}).get("counts"),
                "verdict": a.get("verdict"),
                "repairs": a.get("repairs") or [],
                "source": a.get("source") or "model",  # "human": a person's program (coco edit, review)
                "reviews": a.get("reviews") or [],
                "facts": _facts_summary(a),
                **_candidates_summary(a),
            }
            for a in attempts
        ],
        "edits": state.get("edits") or [],
        "refinement": state.get("refinement"),
        "usage": totals(read_calls(run_dir)) if run_dir else totals([]),
        "calls": state.get("calls") or [],
        "budget": {
            "limits": {
                "usd": settings.get("budget_usd"),
                "tokens": settings.get("budget_tokens"),
                "deadline_s": settings.get("deadline_s"),
            },
            "stop": state.get("budget_stop"),
            "run_seconds": round(sum(t.get("seconds", 0.0) for t in state.get("timings") or []), 3),
        }
        if Limits(settings.get("budget_usd"), settings.get("budget_tokens"), settings.get("deadline_s")).any()
        or state.get("budget_stop")
        else None,
        "reproduce": reproduction(state, settings),
        "finished": now(),
        "version": __version__,
    }
