"""`coco replay RUN -o NEW`: run a recorded run again from its recorded model answers (calls.jsonl), with zero
model calls, and report every difference in what is re-derived: repairs, programs, drafts (byte for byte),
checks, facts, scores, verdicts, routing, refinement, result.json.

The models are stand-ins that raise if anything calls them (``NoCallModel``); every metered call gets the
recorded answer of the same call id instead (coco_agent/ledger/replay.py). A replay uses the run's final
settings (run.json: a budget raised by `coco resume` included), its own sandbox and refiner, and stops where
the recorded run stopped for its deadline or its batch (a replay cannot measure the original's clock).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from coco_agent.errors import ReplayError
from coco_agent.ledger.records import read_calls
from coco_agent.ledger.replay import Recording, replaying
from coco_agent.rundir import (
    ATTEMPTS_DIR,
    CALLS_FILE,
    FINAL_FILE,
    REFINED_FILE,
    REPLAY_FILE,
    RESULT_FILE,
    SETTINGS_FILE,
)
from coco_agent.runs import read_json, write_json
from coco_agent.trace import read_trace

VOLATILE = ("finished", "seconds", "seconds_per_node")  # result.json fields that measure the clock
_TIMES = re.compile(r"\d+(?:\.\d+)?\s?s\b")
MAX_DIFFERENCES = 200


class NoCallModel(BaseChatModel):
    """A model a replay runs with: it answers to the recorded labels and raises if anything calls it."""

    coco_label: str
    coco_spec: str | None = None

    @property
    def _llm_type(self) -> str:
        return "replay"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise ReplayError(
            f"a replay called the model {self.coco_label}: every answer must come from the recording"
        )

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ReplayError(f"a replay called the model {self.coco_label} (with tools)")


def replay_run(run_dir: str | Path, out: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Replay ``run_dir`` into ``out``; the report (also written to ``out``/replay.json)."""
    from coco_agent.runner import start_run
    from coco_agent.settings import context_from_settings

    source, target = Path(run_dir), Path(out)
    if not (source / SETTINGS_FILE).exists():
        raise ReplayError(f"{source} is not a coco run directory (no {SETTINGS_FILE})")
    if not (source / CALLS_FILE).exists():
        raise ReplayError(
            f"{source} has no recorded model answers ({CALLS_FILE}): it was made by a coco that did not record "
            "them, or it made no model call; it cannot be replayed"
        )
    if source.resolve() == target.resolve():
        raise ReplayError("the replay needs its own run directory: pass -o NEW, not the recorded run itself")
    settings = read_json(source / SETTINGS_FILE)
    context = dict(settings.get("context") or {})
    ctx = context_from_settings(context)
    calls = read_calls(source)
    ctx.llm = NoCallModel(coco_label=_label(calls, "coder", context.get("llm")), coco_spec=context.get("llm"))
    if str(context.get("vlm") or "").strip().lower() != "none":
        ctx.vlm = NoCallModel(
            coco_label=_label(calls, "critic", context.get("vlm")), coco_spec=context.get("vlm")
        )
    ctx.deadline_s = None  # stops for time come from the recording
    recording = Recording(source)
    with replaying(recording):
        result = start_run(settings["prompt"], ctx, target, force=force, texts=settings.get("texts") or [])
    differences = compare(source, target)
    report = {
        "source": str(source),
        "replay": str(target),
        "identical": not differences,
        "differences": differences[:MAX_DIFFERENCES],
        "more_differences": max(0, len(differences) - MAX_DIFFERENCES),
        "status": result.get("status"),
        "recorded_status": (_read(source / RESULT_FILE) or {}).get("status"),
        "calls_replayed": len(recording.used),
        "calls_not_asked_for": recording.unused(),
        "model_calls": 0,
    }
    write_json(target / REPLAY_FILE, report)
    return report


def _label(calls: list[dict[str, Any]], role: str, spec: Any) -> str:
    for record in calls:
        if record.get("role") == role and record.get("model"):
            return str(record["model"])
    return str(spec or role)


def compare(source: Path, target: Path) -> list[str]:
    """Every difference between a recorded run and its replay, one line each."""
    found: list[str] = []
    found += _files(source, target)
    found += _results(source, target)
    found += _traces(source, target)
    return found


def _files(source: Path, target: Path) -> list[str]:
    found = []
    names = {
        path.relative_to(root).as_posix()
        for root in (source, target)
        for path in (root / ATTEMPTS_DIR).rglob("*")
        if path.is_file()
    }
    for name in sorted(names | {FINAL_FILE, REFINED_FILE}):
        a, b = source / name, target / name
        if not a.exists() and not b.exists():
            continue
        if a.exists() != b.exists():
            found.append(f"{name}: {'only in the recorded run' if a.exists() else 'only in the replay'}")
        elif a.read_bytes() != b.read_bytes():
            found.append(f"{name}: differs ({a.stat().st_size:,} vs {b.stat().st_size:,} bytes)")
    return found


def _normal(result: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in result.items() if k not in VOLATILE}
    paths = dict(data.get("paths") or {})
    paths.pop("run_dir", None)
    data["paths"] = paths
    if isinstance(data.get("budget"), dict):
        data["budget"] = {k: v for k, v in data["budget"].items() if k != "run_seconds"}
    return data


def _results(source: Path, target: Path) -> list[str]:
    a, b = _read(source / RESULT_FILE), _read(target / RESULT_FILE)
    if a is None or b is None:
        return (
            []
            if a is None and b is None
            else [f"{RESULT_FILE}: missing in the {'recorded run' if a is None else 'replay'}"]
        )
    found: list[str] = []
    _diff(_normal(a), _normal(b), RESULT_FILE, found)
    return found


def _diff(a: Any, b: Any, where: str, found: list[str]) -> None:
    if len(found) > MAX_DIFFERENCES:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                found.append(
                    f"{where}.{key}: {'only in the recorded run' if key in a else 'only in the replay'}"
                )
            else:
                _diff(a[key], b[key], f"{where}.{key}", found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{where}[{i}]", found)
    elif a != b:
        shown = lambda v: json.dumps(v, default=str)[:120]  # noqa: E731
        found.append(f"{where}: {shown(a)} recorded, {shown(b)} replayed")


def _decisions(run_dir: Path) -> list[tuple]:
    return [
        (
            t.get("node"),
            t.get("round"),
            t.get("cand"),
            t.get("decision"),
            _TIMES.sub("#s", str(t.get("why") or "")),
        )
        for t in read_trace(run_dir)
        if t.get("node") != "runner"
    ]


def _traces(source: Path, target: Path) -> list[str]:
    a, b = _decisions(source), _decisions(target)
    if a == b:
        return []
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return [f"trace line {i + 1}: recorded {x[:4]} ({x[4][:100]}), replayed {y[:4]} ({y[4][:100]})"]
    return [f"trace: {len(a)} node runs recorded, {len(b)} replayed"]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
