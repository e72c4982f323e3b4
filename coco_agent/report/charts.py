"""The report's charts, drawn with matplotlib (Agg) into PNG bytes: statuses, rounds, seconds per node."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence

from coco_agent.report.collect import RunRow

STATUS_COLOURS = {
    "accepted": "#2e7d32",
    "max_rounds": "#ef8f00",
    "budget": "#8d6e00",
    "failed": "#c62828",
    "pending": "#9e9e9e",
}
NODE_ORDER = ("prepare", "write_code", "repair", "execute", "check", "critique", "refine", "finalize")
SIZE = (3.9, 2.8)
DPI = 100


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=SIZE, dpi=DPI, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def status_chart(rows: Sequence[RunRow]) -> bytes:
    """Prompts per status."""
    counts = Counter(row.status for row in rows)
    names = [s for s in STATUS_COLOURS if counts[s]] + sorted(set(counts) - set(STATUS_COLOURS))
    fig = _figure()
    ax = fig.add_subplot()
    bars = ax.bar(names, [counts[n] for n in names], color=[STATUS_COLOURS.get(n, "#607d8b") for n in names])
    ax.bar_label(bars)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Prompts by status")
    ax.set_ylabel("prompts")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def rounds_chart(rows: Sequence[RunRow]) -> bytes:
    """How many rounds finished prompts took, split by status."""
    finished = [row for row in rows if row.status != "pending"]
    seen = [row.rounds for row in finished] or [1]
    xs = list(range(min(seen), max(seen) + 1))
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0] * len(xs)
    for status, colour in STATUS_COLOURS.items():
        counts = Counter(row.rounds for row in finished if row.status == status)
        heights = [counts[x] for x in xs]
        if any(heights):
            ax.bar(xs, heights, bottom=bottom, color=colour, label=status)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(xs)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("rounds")
    ax.set_ylabel("prompts")
    ax.set_title("Rounds per prompt")
    if finished:
        fig.legend(loc="outside right upper", frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def node_seconds_chart(rows: Sequence[RunRow]) -> bytes:
    """Seconds per node over the runs: a box per node (a bar for a single run)."""
    per_node: dict[str, list[float]] = {}
    for row in rows:
        for node, sec in row.seconds_per_node.items():
            per_node.setdefault(node, []).append(float(sec))
    nodes = [n for n in NODE_ORDER if n in per_node] + sorted(set(per_node) - set(NODE_ORDER))
    fig = _figure()
    ax = fig.add_subplot()
    if len(rows) == 1 or all(len(per_node[n]) == 1 for n in nodes):
        ax.barh(nodes, [per_node[n][0] for n in nodes], color="#1565c0")
    elif nodes:
        ax.boxplot([per_node[n] for n in nodes], orientation="horizontal", tick_labels=nodes)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Seconds per node")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
