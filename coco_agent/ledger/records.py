"""One record per model call, kept in the run directory's ``calls.jsonl`` (with the call's output, for
`coco replay`), and the totals result.json, the summaries and the report show.

A record: ``id`` (node/round/candidate/sequence: the same call of a redone node has the same id), ``node``,
``round``, ``cand``, ``role`` (coder, critic, code_critic), ``model`` (the label), ``served_model`` (the id the
server answered with), ``input_tokens``, ``output_tokens``, ``total_tokens`` (None: the provider did not say),
``usd`` (None: price unknown or tokens unknown), ``price`` ("known", "unknown", "no usage"), ``seconds``,
``outputs`` (answers returned: n > 1 for candidates asked in one call), ``ok``, ``error``, ``sampling``.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coco_agent.ledger.prices import PriceTable
from coco_agent.ledger.usage import Usage
from coco_agent.rundir import CALLS_FILE
from coco_agent.safe_text import json_text

_LOCK = threading.Lock()


def call_id(node: str, rnd: int, cand: int | None, seq: int) -> str:
    """The id of a call: which node, round, candidate and which call of that node run."""
    return f"{node}/r{rnd:02d}/c{cand or 0}/{seq}"


def make_record(
    *,
    cid: str,
    node: str,
    rnd: int,
    cand: int | None,
    role: str,
    label: str,
    served: str | None,
    usage: Usage,
    seconds: float,
    prices: PriceTable,
    outputs: int = 1,
    error: str | None = None,
    sampling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ledger record of one call, priced from ``prices`` (the label as asked for; a served snapshot id is
    recorded but not priced: its price may differ)."""
    price = prices.lookup(label)
    usd = price.cost(usage) if price is not None else None
    record: dict[str, Any] = {
        "id": cid,
        "node": node,
        "round": rnd,
        "cand": cand,
        "role": role,
        "model": label,
        "served_model": served,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "usd": round(usd, 8) if usd is not None else None,
        "price": _price_state(price is not None, usage.known, error is not None),
        "seconds": round(seconds, 4),
        "outputs": outputs,
        "ok": error is None,
    }
    if error is not None:
        record["error"] = error[:500]
    if sampling:
        record["sampling"] = sampling
    return record


def _price_state(priced: bool, usage_known: bool, failed: bool) -> str:
    """known: dollars counted; unknown: no entry for the model; no usage: priced but no tokens reported;
    failed: the call raised (no answer, nothing counted)."""
    if failed:
        return "failed"
    if not priced:
        return "unknown"
    return "known" if usage_known else "no usage"


def append_call(run_dir: str | Path, record: dict[str, Any], output: Any) -> None:
    """Append a call's record and its output to calls.jsonl (one line; thread-safe within this process)."""
    path = Path(run_dir) / CALLS_FILE
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    line = json_text({"ts": stamp, **record, "output": output}, default=str)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def read_calls(run_dir: str | Path, *, outputs: bool = False) -> list[dict[str, Any]]:
    """Every call record of a run, in order (a torn last line, from a killed process, is skipped)."""
    path = Path(run_dir) / CALLS_FILE
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            if not outputs:
                record.pop("output", None)
            found.append(record)
    return found


def totals(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Calls, tokens, dollars and seconds of ``records``, overall and per role and per model.

    ``usd`` is None unless every call was priced ("price unknown" then names the unpriced models; ``usd_priced``
    is the part that was); tokens count the calls that reported them (``calls_without_usage`` the rest)."""
    records = list(records)
    summary = _sum(records)
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_role[str(record.get("role"))].append(record)
        by_model[str(record.get("model"))].append(record)
    summary["by_role"] = {role: _sum(items) for role, items in sorted(by_role.items())}
    summary["by_model"] = {model: _sum(items) for model, items in sorted(by_model.items())}
    ids = [r.get("id") for r in records]
    summary["redone_calls"] = len(ids) - len(set(ids))
    return summary


def _sum(records: list[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str) -> int:
        return sum(int(r[key]) for r in records if isinstance(r.get(key), int))

    unpriced = sorted({str(r.get("model")) for r in records if r.get("price") == "unknown"})
    no_usage = sum(1 for r in records if r.get("price") == "no usage")
    priced = sum(float(r["usd"]) for r in records if isinstance(r.get("usd"), int | float))
    gaps = [f"price unknown for {', '.join(unpriced)}"] if unpriced else []
    if no_usage:
        gaps.append(f"{no_usage} priced call(s) reported no token usage")
    return {
        "calls": len(records),
        "failed_calls": sum(1 for r in records if not r.get("ok", True)),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "total_tokens": total("total_tokens"),
        "calls_without_usage": sum(1 for r in records if r.get("ok", True) and r.get("total_tokens") is None),
        "usd": None if gaps else round(priced, 6),
        "usd_priced": round(priced, 6),
        "price": "; ".join(gaps) or "known",
        "seconds": round(sum(float(r.get("seconds") or 0) for r in records), 3),
    }


def describe_totals(summary: dict[str, Any] | None) -> str:
    """One line for people: "3 calls, 1,234 tokens (1,000 in / 234 out), $0.0012" or "... price unknown"."""
    if not summary or not summary.get("calls"):
        return "no model calls"
    tokens = f"{summary['total_tokens']:,} tokens ({summary['input_tokens']:,} in / {summary['output_tokens']:,} out)"
    if summary.get("calls_without_usage"):
        tokens += f", {summary['calls_without_usage']} call(s) reported no usage"
    dollars = f"${summary['usd']:.4f}" if summary.get("usd") is not None else summary.get("price", "")
    return f"{summary['calls']} call(s), {tokens}, {dollars}"
