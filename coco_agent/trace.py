"""The run trace: one JSON line per node run, plus a decorator that times nodes and writes those lines."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coco_agent.rundir import TRACE_FILE

TRACE_KEY = (
    "_trace"  # a node puts {"decision", "why", "model", ...} here; the decorator moves it to the trace
)


def append_trace(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Append one record to the run's trace (created on demand)."""
    path = Path(run_dir) / TRACE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), **record}, default=str)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def read_trace(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / TRACE_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def traced(name: str) -> Callable:
    """Wrap a node: time it, write its trace line, and add its timing to state."""

    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(fn)
        def node(state: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
            start = time.perf_counter()
            update = dict(fn(state, *args, **kwargs) or {})
            seconds = round(time.perf_counter() - start, 4)
            info = update.pop(TRACE_KEY, {})
            run_dir = update.get("run_dir") or state.get("run_dir")
            rnd = update.get("round", state.get("round", 0))
            record = {"node": name, "round": rnd, "seconds": seconds, **info}
            if "route" in update:
                record.setdefault("decision", update["route"])
                record.setdefault("why", update.get("why", ""))
            if run_dir:
                append_trace(run_dir, record)
            update["timings"] = [{"node": name, "round": rnd, "seconds": seconds}]
            return update

        return node

    return wrap
