"""The studio's work: a run started, edited or answered from the page runs in a thread of the studio's process,
through the same library calls as the CLI (runner.start_run, human.edit.edit_run, human.review.review_run), so
its run directory is the CLI's. Each run holds its lock while it moves (someone else continuing it meanwhile,
from the CLI or another page, is refused with the lock's message)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from coco_agent.context import RunContext


class Jobs:
    """What the studio is doing now, per run id: ``{"state": running|done|failed, "what", "error"}``."""

    def __init__(self, root: Path, ctx: RunContext) -> None:
        self.root, self.ctx = root, ctx
        self.state: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self.state.items()}

    def busy(self, run_id: str) -> bool:
        with self._lock:
            return (self.state.get(run_id) or {}).get("state") == "running"

    def start(self, prompt: str, ctx: RunContext) -> str:
        """A new run of ``prompt`` under the runs folder; its id."""
        from coco_agent.runner import start_run

        run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._go(run_id, "generate", lambda: start_run(prompt, ctx, self.root / run_id))
        return run_id

    def edit(
        self, run_id: str, code: str, *, rnd: int | None, fmt: str | None, critic: bool, full_refine: bool
    ) -> None:
        from coco_agent.human.edit import edit_run

        self._go(
            run_id,
            "edit",
            lambda: edit_run(
                self.root / run_id, code, rnd=rnd, fmt=fmt, critic=critic, full_refine=full_refine,
                source_name="studio",
            ),
        )  # fmt: skip

    def review(self, run_id: str, answer: dict[str, Any]) -> None:
        from coco_agent.human.review import review_run

        self._go(run_id, "review", lambda: review_run(self.root / run_id, answer))

    def _go(self, run_id: str, what: str, work: Callable[[], dict[str, Any]]) -> None:
        with self._lock:
            self.state[run_id] = {"state": "running", "what": what, "error": ""}

        def target() -> None:
            try:
                result = work()
                state = {"state": "done", "what": what, "error": "", "status": result.get("status")}
            except Exception as exc:  # shown on the page (as text), never a dead thread
                state = {"state": "failed", "what": what, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            with self._lock:
                self.state[run_id] = state

        threading.Thread(target=target, name=f"studio-{what}-{run_id}", daemon=True).start()
