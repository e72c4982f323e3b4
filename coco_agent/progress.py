"""Human output for the CLI: a live progress line per node while a run goes, and a closing summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(stderr=True, log_path=False)

NODE_VERBS = {
    "prepare": "checking the prompt",
    "write_code": "asking the code writer",
    "repair": "repairing the program",
    "execute": "rendering in the sandbox",
    "check": "checking the draft",
    "critique": "asking the critic",
    "refine": "refining",
    "finalize": "writing result.json",
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
        arrow = f" -> [bold]{route}[/]" if route else ""
        console.log(
            f"[cyan]round {rnd}[/] {node} {timing.get('seconds', 0):.2f}s{arrow}  [dim]{why[:120]}[/]"
        )
        if route:
            self._status.update(f"round {rnd}: {NODE_VERBS.get(route, route)}")


def print_summary(result: dict[str, Any]) -> None:
    colour = {"accepted": "green", "max_rounds": "yellow"}.get(result.get("status"), "red")
    table = Table(show_header=False, box=None)
    table.add_row("status", f"[{colour}]{result.get('status')}[/]")
    table.add_row("rounds", f"{result.get('rounds')} of {result.get('max_rounds')}")
    if result.get("error"):
        table.add_row("error", f"[red]{result['error']}[/]")
    table.add_row("models", f"coder {result['models'].get('coder')}, critic {result['models'].get('critic')}")
    table.add_row("sandbox", str(result.get("sandbox")))
    per_node = ", ".join(f"{k} {v:.1f}s" for k, v in (result.get("seconds_per_node") or {}).items())
    table.add_row("seconds", f"{result.get('seconds')} ({per_node})")
    run_dir = result["paths"].get("run_dir")
    final = result["paths"].get("final")
    table.add_row("final", f"{run_dir}/{final}" if final else "none")
    console.print(table)
