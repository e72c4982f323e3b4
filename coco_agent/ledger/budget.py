"""Budgets: dollars, tokens and seconds a run may spend (``--budget-usd``, ``--budget-tokens``, ``--deadline``),
and the same for a whole batch (``--batch-budget-usd``, ``--batch-budget-tokens``, ``--batch-deadline``).

A run's budget is checked before each model call the graph would make next (a new round's code writer, the
critic): the spent part comes from the run's ledger (calls.jsonl), and the next call is estimated as the mean cost per
answer of this run's earlier calls of the same role (a call for n candidates counts n answers; ``affordable``
then decides how many candidates the rest covers) (the first call has no estimate and goes ahead). A dollar budget needs
a price for every model called, a token budget a usage count from every call: without them the run stops, and
says why, rather than spend blind. The deadline counts the seconds the run's nodes ran (across resumes).

A batch budget (``BatchBudget``, bound to the runs of a batch with ``batch_budget``) sums what every run of this
batch invocation spends; once it is reached no new prompt starts, and runs in flight stop before their next
round (their current round, critique included, finishes). A later invocation has a budget of its own: it goes on
with those runs from where they stopped (``reopening``, as `coco resume RUN --budget-...` does for a run's own).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from coco_agent.ledger import replay
from coco_agent.ledger.records import read_calls, totals

Before = Literal["write_code", "critique"]


@dataclass(frozen=True)
class Limits:
    """A run's budget: dollars, tokens (input + output) and seconds of node time; None: no limit."""

    usd: float | None = None
    tokens: int | None = None
    seconds: float | None = None

    @classmethod
    def of(cls, ctx: Any) -> Limits:
        return cls(
            getattr(ctx, "budget_usd", None),
            getattr(ctx, "budget_tokens", None),
            getattr(ctx, "deadline_s", None),
        )

    def any(self) -> bool:
        return any(v is not None for v in (self.usd, self.tokens, self.seconds))

    def as_dict(self) -> dict[str, Any]:
        return {"usd": self.usd, "tokens": self.tokens, "deadline_s": self.seconds}


def limits_problem(usd: Any, tokens: Any, seconds: Any, what: str = "") -> str:
    """Why budget values cannot work ("" when they can): each must be None or a finite number above 0."""
    for flag, value in (
        (f"--{what}budget-usd", usd),
        (f"--{what}budget-tokens", tokens),
        (f"--{what}deadline", seconds),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{flag} must be a number, got {value!r}"
        if value <= 0:
            return f"{flag} must be more than 0, got {value:g} (leave it out for no limit)"
    if tokens is not None and tokens != int(tokens):
        return f"--{what}budget-tokens must be a whole number of tokens, got {tokens:g}"
    return ""


@dataclass(frozen=True)
class Stop:
    """Why the run stops for its budget: the reason for people, ``by`` (usd, tokens, deadline, batch)."""

    reason: str
    by: str

    def as_dict(self, at: str, rnd: int) -> dict[str, Any]:
        return {"reason": self.reason, "by": self.by, "at": at, "round": rnd}


def run_seconds(state: dict[str, Any]) -> float:
    """Seconds the run's nodes have run so far (every resume included)."""
    return float(sum(t.get("seconds", 0.0) for t in state.get("timings") or []))


def check(ctx: Any, state: dict[str, Any], before: Before, role: str, calls: int = 1) -> Stop | None:
    """Whether the run must stop instead of making ``calls`` more calls of ``role`` (at ``before``)."""
    recording = replay.current()
    if recording is not None:  # a replay stops where the recorded run stopped for time or for its batch
        forced = recording.stop_at(before, int(state.get("round") or 0))
        return Stop(forced["reason"], forced["by"]) if forced else _money(ctx, state, role, calls)
    stop = _money(ctx, state, role, calls)
    if stop is not None:
        return stop
    limits = Limits.of(ctx)
    if limits.seconds is not None:
        used = run_seconds(state)
        if used >= limits.seconds:
            return Stop(
                f"the run's deadline of {limits.seconds:g} s is reached ({used:.1f} s of node time)",
                "deadline",
            )
    batch = _batch.get()
    if batch is not None and before == "write_code":
        reason = batch.reason()
        if reason:
            return Stop(reason, "batch")
    return None


def reopening(values: dict[str, Any], ctx: Any, run_dir: Path) -> tuple[str, dict[str, Any] | None]:
    """The state update that sends a run its budget stopped (graph ``values``) back to where it stopped (the
    next round's code writer, or the critic of the last draft), or why it cannot go on: its budgets, the run's
    and the batch's, still do not cover the next call."""
    stop = values.get("budget_stop") or {}
    at = stop.get("at") if stop.get("at") in ("write_code", "critique") else "write_code"
    role = "critic" if at == "critique" else "coder"
    still = check(ctx, {**values, "run_dir": str(run_dir)}, at, role)
    if still is not None:
        return still.reason, None
    why = "resumed with a larger budget"
    return "", {"status": "running", "route": at, "why": why, "error": "", "budget_stop": None}


def _money(ctx: Any, state: dict[str, Any], role: str, calls: int) -> Stop | None:
    limits = Limits.of(ctx)
    if limits.usd is None and limits.tokens is None:
        return None
    records = read_calls(state["run_dir"])
    spent = totals(records)
    same_role = [r for r in records if r.get("role") == role and r.get("ok", True)]
    if limits.usd is not None:
        if spent["usd"] is None:
            return Stop(
                f"a dollar budget cannot be kept: {spent['price']}; add the price with --prices FILE "
                "(or COCO_PRICES), or use --budget-tokens",
                "usd",
            )
        per_answer = [r["usd"] / max(1, r.get("outputs") or 1) for r in same_role if r.get("usd") is not None]
        stop = _over(spent["usd"], limits.usd, per_answer, calls, role, "$", "usd")
        if stop:
            return stop
    if limits.tokens is not None:
        if spent["calls_without_usage"]:
            models = sorted(
                {str(r.get("model")) for r in records if r.get("total_tokens") is None and r.get("ok", True)}
            )
            return Stop(
                f"a token budget cannot be kept: {', '.join(models)} reported no token usage", "tokens"
            )
        per_call = [r["total_tokens"] / max(1, r.get("outputs") or 1) for r in same_role]
        stop = _over(spent["total_tokens"], limits.tokens, per_call, calls, role, "", "tokens")
        if stop:
            return stop
    return None


def _over(
    spent: float, limit: float, history: list[float], calls: int, role: str, unit: str, by: str
) -> Stop | None:
    shown = (lambda v: f"${v:.4f}") if unit == "$" else (lambda v: f"{int(v):,} tokens")
    if spent >= limit:
        return Stop(f"the run's budget of {shown(limit)} is spent ({shown(spent)})", by)
    if history:
        estimate = calls * sum(history) / len(history)
        if spent + estimate > limit:
            return Stop(
                f"the next {role} call{'s' if calls > 1 else ''} (about {shown(estimate)}, from this run's "
                f"earlier ones) would pass the budget of {shown(limit)} ({shown(spent)} spent)",
                by,
            )
    return None


def affordable(ctx: Any, state: dict[str, Any], wanted: int, role: str = "coder") -> int:
    """How many of ``wanted`` answers the run's money budget still covers (at least 1 while it covers one:
    ``check`` has said it does), from this run's earlier ``role`` calls: tokens as the next request's prompt
    (the last one's plus the program sent back) and the mean output per answer; dollars as the mean cost per
    answer. For the code writer, the mean cost of an earlier critic call is kept back: the round's candidates
    are worth nothing if no critic call is left to judge them."""
    limits = Limits.of(ctx)
    if wanted <= 1 or (limits.usd is None and limits.tokens is None):
        return wanted
    calls = read_calls(state["run_dir"])
    records = [r for r in calls if r.get("role") == role and r.get("ok", True)]
    critics = [r for r in calls if r.get("role") == "critic" and r.get("ok", True)] if role == "coder" else []
    spent = totals(calls)
    room = []
    if limits.usd is not None and spent["usd"] is not None:
        per = [r["usd"] / max(1, r.get("outputs") or 1) for r in records if r.get("usd") is not None]
        if per:
            reserve = _mean([r["usd"] for r in critics if r.get("usd") is not None])
            room.append((limits.usd - spent["usd"] - reserve) / max(1e-12, _mean(per)))
    if limits.tokens is not None and records:
        reserve = _mean([r["total_tokens"] for r in critics if r.get("total_tokens")])
        room.append(
            (limits.tokens - spent["total_tokens"] - reserve - _next_prompt(records)) / _per_answer(records)
        )
    if not room:
        return wanted
    return max(1, min(wanted, math.floor(min(room))))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _per_answer(records: list[dict[str, Any]]) -> float:
    """Output tokens per answer of these calls (a request's prompt is paid once, whatever its ``n``)."""
    per = [(r.get("output_tokens") or 0) / max(1, r.get("outputs") or 1) for r in records]
    return max(1.0, _mean(per))


def _next_prompt(records: list[dict[str, Any]]) -> float:
    """Input tokens of the next request: the last one's, plus the program it sends back to be patched."""
    return (records[-1].get("input_tokens") or 0) + _per_answer(records)


class BatchBudget:
    """What the runs of one batch invocation spend together, against the batch's limits (thread-safe)."""

    def __init__(
        self, usd: float | None = None, tokens: int | None = None, seconds: float | None = None
    ) -> None:
        self.limits = Limits(usd, tokens, seconds)
        self.started = time.monotonic()
        self.usd = 0.0
        self.tokens = 0
        self.unpriced: set[str] = set()
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.calls += 1
            if isinstance(record.get("usd"), int | float):
                self.usd += float(record["usd"])
            elif record.get("ok", True):
                self.unpriced.add(str(record.get("model")))
            if isinstance(record.get("total_tokens"), int):
                self.tokens += int(record["total_tokens"])

    def reason(self) -> str:
        """Why no more should be spent ("" while the batch is within its limits)."""
        limits = self.limits
        with self._lock:
            if limits.usd is not None:
                if self.unpriced:
                    return f"the batch's dollar budget cannot be kept: price unknown for {', '.join(sorted(self.unpriced))}"
                if self.usd >= limits.usd:
                    return f"the batch budget of ${limits.usd:.4f} is spent (${self.usd:.4f})"
            if limits.tokens is not None and self.tokens >= limits.tokens:
                return f"the batch budget of {limits.tokens:,} tokens is spent ({self.tokens:,})"
            elapsed = time.monotonic() - self.started
            if limits.seconds is not None and elapsed >= limits.seconds:
                return f"the batch deadline of {limits.seconds:g} s is reached ({elapsed:.0f} s)"
        return ""

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "limits": self.limits.as_dict(),
                "calls": self.calls,
                "usd": round(self.usd, 6) if not self.unpriced else None,
                "tokens": self.tokens,
                "seconds": round(time.monotonic() - self.started, 3),
            }


_batch: ContextVar[BatchBudget | None] = ContextVar("coco_batch_budget", default=None)


@contextlib.contextmanager
def batch_budget(budget: BatchBudget | None) -> Iterator[BatchBudget | None]:
    """Count every metered call made in this context (a batch's runs and their node threads) against ``budget``."""
    token = _batch.set(budget)
    try:
        yield budget
    finally:
        _batch.reset(token)


def note_spent(record: dict[str, Any]) -> None:
    """Count one call against the batch budget of this context, if any."""
    budget = _batch.get()
    if budget is not None:
        budget.add(record)


def spent_of(run_dir: str | Path) -> dict[str, Any]:
    """The ledger totals of a run directory (what result.json's ``usage`` holds)."""
    return totals(read_calls(run_dir))
