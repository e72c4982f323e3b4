"""What `coco batch` shows: a live progress bar on stderr (done/total, outcomes, rate, ETA), or JSON events.

With ``--json`` stdout carries one JSON object per finished prompt and the summary as the last line.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from coco_agent.rundir import SUMMARY_CSV, SUMMARY_JSON
from coco_agent.safe_text import json_text, markup_text, plain_text, safe_console

COLOURS = {"accepted": "green", "max_rounds": "yellow", "failed": "red", "paused": "cyan"}


class BatchProgress:
    """A rich progress bar plus one log line per prompt that ran (skipped ones are only counted)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or safe_console(stderr=True)
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.done = 0
        self.ran = 0
        self.started = time.monotonic()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[outcomes]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("batch", total=None, outcomes="", rate="", eta="")

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":  # the display starts once the prompts file and OUT were accepted
            self.started = time.monotonic()
            self.progress.start()
            return
        if event["event"] == "total":  # the whole file is checked and counted
            self.total = event["total"]
            self.progress.update(self.task, total=self.total, **self.fields())
            return
        self.done = event["done"]
        self.counts[event["status"]] += 1
        if event["how"] == "skipped":
            self.counts["skipped"] += 1
        else:
            self.ran += 1
            self._log(event)
        self.progress.update(self.task, completed=self.done, **self.fields())

    def fields(self) -> dict[str, str]:
        c = self.counts
        outcomes = (
            f"[green]accepted {c['accepted']}[/] [yellow]max_rounds {c['max_rounds']}[/] "
            f"[red]failed {c['failed']}[/]"
            + (f" [cyan]paused {c['paused']}[/]" if c["paused"] else "")
            + (f" [dim]skipped {c['skipped']}[/]" if c["skipped"] else "")
        )
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.ran / elapsed * 60
        left = self.total - self.done if self.total else 0
        eta = f"ETA {_clock(left / (self.ran / elapsed))}" if self.ran and left else ""
        return {"outcomes": outcomes, "rate": f"{rate:.1f}/min" if self.ran else "", "eta": eta}

    def _log(self, event: dict[str, Any]) -> None:
        """One line per prompt that ran; its id, status and error are data (an error can quote anything)."""
        colour = COLOURS.get(event["status"], "red")
        status = f"{event['status']:<10}"
        line = (
            f"[{colour}]{markup_text(status)}[/] {markup_text(event['id'])}  "
            f"rounds {markup_text(event['rounds'])}  {event['wall_seconds']:.1f}s"
        )
        if event["how"] != "started":
            line += f" [dim]({markup_text(event['how'])})[/]"
        if event["error"]:
            line += f"  [dim]{markup_text(str(event['error'])[:120])}[/]"
        self.console.print(line, highlight=False)


class JsonEvents:
    """One JSON line per finished prompt on stdout (the start event is not printed); C1 and bidi controls are
    spelled \\uXXXX (safe_text.json_text)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "prompt":
            self.line(event)

    def line(self, data: dict[str, Any]) -> None:
        self.stream.write(json_text(data, default=str) + "\n")
        self.stream.flush()


def print_batch_summary(summary: dict[str, Any], out: str, console: Console | None = None) -> None:
    """The closing table: outcomes, acceptance, rounds, seconds, throughput, where the files are."""
    console = console or safe_console()
    statuses = summary["statuses"]
    table = Table(show_header=False, box=None)
    table.add_row(
        "prompts",
        f"{summary['n']} ([green]{statuses['accepted']} accepted[/], [yellow]{statuses['max_rounds']} "
        f"max_rounds[/], [red]{statuses['failed']} failed[/]"
        + (f", [cyan]{statuses['paused']} waiting for review[/]" if statuses.get("paused") else "")
        + (f", {statuses['pending']} pending" if statuses.get("pending") else "")
        + ")",
    )
    table.add_row("acceptance", _pct(summary["acceptance_rate"]))
    table.add_row("mean rounds", str(summary["mean_rounds"]))
    table.add_row("seconds/prompt", f"p50 {summary['p50_seconds']}  p95 {summary['p95_seconds']}")
    if summary["prompts_per_minute"] is not None:
        table.add_row(
            "throughput",
            f"{summary['prompts_per_minute']} prompts/min ({summary['ran_this_time']} ran this time)",
        )
    if summary.get("usage"):
        from coco_agent.ledger.records import describe_totals

        table.add_row("cost", markup_text(describe_totals(summary["usage"])))
    stopped = (summary.get("batch_budget") or {}).get("stopped")
    if stopped:
        table.add_row("budget", markup_text(f"stopped: {stopped}"))
    for name, value in (summary.get("scores") or {}).items():
        table.add_row(markup_text(f"score {name}"), markup_text(value))
    console.print(table)
    console.print(
        plain_text(f"summary: {out}/{SUMMARY_JSON}, {out}/{SUMMARY_CSV}; HTML report: coco report {out}"),
        soft_wrap=True,
        highlight=False,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
