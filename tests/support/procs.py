"""Process-table helpers for the sandbox tests (read from /proc; nothing is signalled here)."""

from __future__ import annotations

import os


def descendants(root: int) -> list[int]:
    """Live descendants of `root`, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], [root]
    while frontier:
        kids = [pid for pid, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found
