"""Answers played back from a recorded run (`coco replay`): the metered calls return what the run's calls.jsonl
recorded for the same call id, and never call a model.

A call id names the node, round, candidate and sequence of a call, so the same flow asks for the same ids; the
last record of an id is the one the original run went on with (a node redone after a crash asks again). A replay
that asks for an id never recorded (the flow diverged) raises ReplayError naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from coco_agent.errors import ReplayError
from coco_agent.ledger.records import read_calls
from coco_agent.rundir import RESULT_FILE

_current: ContextVar[Recording | None] = ContextVar("coco_replay", default=None)


class Recording:
    """The recorded calls of one run directory, by id."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.calls: dict[str, dict[str, Any]] = {}
        for record in read_calls(run_dir, outputs=True):
            self.calls[str(record.get("id"))] = record
        self.used: list[str] = []
        self.stop = _recorded_stop(self.run_dir)

    def take(self, cid: str) -> dict[str, Any]:
        """The record (with its output) of call ``cid``; ReplayError when the run never made that call."""
        record = self.calls.get(cid)
        if record is None:
            raise ReplayError(
                f"the replay asked for model call {cid}, which {self.run_dir} never made: the replayed flow "
                "diverged from the recorded one before this point"
            )
        self.used.append(cid)
        return dict(record)

    def unused(self) -> list[str]:
        return [cid for cid in self.calls if cid not in set(self.used)]

    def stop_at(self, before: str, rnd: int) -> dict[str, Any] | None:
        """The recorded run's stop for time or for its batch, when it happened here (a replay cannot measure
        the original's clock: it stops where the original stopped)."""
        stop = self.stop
        if (
            stop
            and stop.get("by") in ("deadline", "batch")
            and stop.get("at") == before
            and stop.get("round") == rnd
        ):
            return stop
        return None


def _recorded_stop(run_dir: Path) -> dict[str, Any] | None:
    import json

    try:
        result = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
        stop = (result.get("budget") or {}).get("stop")
    except (OSError, ValueError, AttributeError):
        return None
    return stop if isinstance(stop, dict) else None


def current() -> Recording | None:
    """The recording being played back in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def replaying(recording: Recording) -> Iterator[Recording]:
    """Play ``recording`` back to every metered call made in this context (node threads included)."""
    token = _current.set(recording)
    try:
        yield recording
    finally:
        _current.reset(token)
