"""Human output for the CLI: a live progress line per node while a run goes, and a closing summary.

Every text a run carries (why a route was taken, the error, model names, paths) is untrusted: it goes through
``coco_agent.safe_text`` before rich sees it. ``shielded`` wraps a display callback so that a display that fails
costs an update on screen, never a run or a prompt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rich.table import Table

from coco_agent.rundir import RESULT_FILE
from coco_agent.safe_text import markup_text, safe_console, terminal_text

console = safe_console(stderr=True, log_path=False)
MAX_DISPLAY_ERRORS = 3  # display failures reported one by one; later ones only counted
Callback = TypeVar("Callback", bound=Callable[..., Any])

NODE_VERBS = {
    "prepare": "checking the prompt",
    "write_code": "asking the code writer",
    "repair": "repairing the program",
    "execute": "rendering in the sandbox",
    "check": "checking the draft",
    "critique": "asking the critic",
    "refine": "refining",
    "finalize": f"writing {RESULT_FILE}",
}
NEXT = {
    "write_code": "repair",
    "repair": "execute",
    "execute": "check",
    "check": "critique",
    "critique": "write_code",
}


class RunProgress:
    """A spinner that names what the agent is doing, plus one log line per finished node."""

    def __enter__(self) -> RunProgress:
        self._status = console.status("starting", spinner="dots")
        self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._status.__exit__(*exc)

    def update(self, node: str, update: dict[str, Any]) -> None:
        route = update.get("route")
        timing = (update.get("timings") or [{}])[-1]
        rnd = timing.get("round", "")
        why = update.get("why", "")
        arrow = f" -> [bold]{markup_text(route)}[/]" if route else ""
        console.log(
            f"[cyan]round {markup_text(rnd)}[/] {markup_text(node)} {timing.get('seconds', 0):.2f}s{arrow}  "
            f"[dim]{markup_text(str(why)[:120])}[/]",
            highlight=False,
        )
        if route:
            self._status.update(f"round {markup_text(rnd)}: {markup_text(NODE_VERBS.get(route, route))}")


def print_summary(result: dict[str, Any]) -> None:
    """The closing table of one run (every value from result.json is shown as data, never as markup)."""
    from coco_agent.ledger.records import describe_totals

    colour = {"accepted": "green", "max_rounds": "yellow", "budget": "yellow"}.get(
        result.get("status"), "red"
    )
    models = result.get("models") or {}
    paths = result.get("paths") or {}
    table = Table(show_header=False, box=None)
    table.add_row("status", f"[{colour}]{markup_text(result.get('status'))}[/]")
    table.add_row("rounds", markup_text(f"{result.get('rounds')} of {result.get('max_rounds')}"))
    if result.get("error"):
        table.add_row("error", f"[red]{markup_text(result['error'])}[/]")
    table.add_row("models", markup_text(f"coder {models.get('coder')}, critic {models.get('critic')}"))
    table.add_row("sandbox", markup_text(result.get("sandbox")))
    table.add_row("cost", markup_text(describe_totals(result.get("usage"))))
    stop = (result.get("budget") or {}).get("stop")
    if stop:
        table.add_row("budget", f"[yellow]{markup_text(stop.get('reason'))}[/]")
    if result.get("resume"):
        table.add_row("resume", f"[yellow]{markup_text(result['resume'])}[/]")
    per_node = ", ".join(f"{k} {v:.1f}s" for k, v in (result.get("seconds_per_node") or {}).items())
    table.add_row("seconds", markup_text(f"{result.get('seconds')} ({per_node})"))
    run_dir, final = paths.get("run_dir"), paths.get("final")
    table.add_row("final", markup_text(f"{run_dir}/{final}") if final else "none")
    console.print(table, highlight=False)


def shielded(callback: Callback, what: str = "the run") -> Callback:
    """``callback`` (a progress display) made unable to fail its caller: an exception it raises is reported on
    stderr (as data; the first MAX_DISPLAY_ERRORS of them) and swallowed, so ``what`` goes on without it."""
    failures = 0

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            failures += 1
            if failures <= MAX_DISPLAY_ERRORS:
                more = "; later display errors are not shown" if failures == MAX_DISPLAY_ERRORS else ""
                reason = terminal_text(f"{type(exc).__name__}: {exc}")[:500]
                with contextlib.suppress(OSError, ValueError):  # stderr gone or closed: nothing left to tell
                    print(
                        f"coco: the progress display failed ({reason}); {what} goes on{more}", file=sys.stderr
                    )
            return None

    return call  # type: ignore[return-value]
