"""Facts extraction over a corpus (default: the 499 ChartMimic programs): every program rendered twice in the
warm Docker pool, facts on and facts off, interleaved; prints how many rendered, whether the PNGs are byte for
byte the same, how many drafts had no facts or a facts note naming an exception, and the seconds per draft
both ways (p50 / mean; the difference is the cost of the facts).

    PYTHONPATH=. .venv/bin/python scripts/bench_facts.py [--corpus DIR] [--limit N] [--json]

Exit 1 when any picture changed or any draft that rendered reported no facts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from coco_agent import formats
from coco_agent.cli.bench.sandbox import default_corpus
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.bench import corpus_files
from coco_agent.sandbox.image import build_image, docker_client
from coco_agent.sandbox.launchers import DockerLauncher
from coco_agent.sandbox.pool import WarmPool


def measure(files: list[Path], timeout_s: float) -> dict:
    client = docker_client()
    pool = WarmPool(DockerLauncher(client=client, image=build_image(client=client)))
    on_limits = SandboxLimits(timeout_s=timeout_s)
    off_limits = dataclasses.replace(on_limits, facts=False)
    rows = []
    try:
        for path in files:
            code = path.read_text(encoding="utf-8", errors="replace")
            fmt = formats.guess(code, path.name)
            runs = {}
            order = ("on", "off") if len(rows) % 2 == 0 else ("off", "on")  # interleaved: no warm-up bias
            for which in order:
                started = time.monotonic()
                result = pool.render(code, fmt, on_limits if which == "on" else off_limits)
                runs[which] = (result, time.monotonic() - started)
            on, off = runs["on"][0], runs["off"][0]
            notes = [n for n in ((on.facts or {}).get("notes") or []) if "Error" in n or "Exception" in n]
            rows.append(
                {
                    "name": path.name,
                    "ok": on.ok and off.ok,
                    "status": (on.status, off.status),
                    "same_png": on.ok and off.ok and on.png == off.png,
                    "facts": on.facts is not None,
                    "notes": notes,
                    "seconds_on": runs["on"][1],
                    "seconds_off": runs["off"][1],
                }
            )
    finally:
        pool.close()
    rendered = [r for r in rows if r["ok"]]
    on_s = [r["seconds_on"] for r in rendered]
    off_s = [r["seconds_off"] for r in rendered]
    return {
        "programs": len(rows),
        "rendered": len(rendered),
        "failed_both_ways": sum(1 for r in rows if r["status"][0] == r["status"][1] != "ok"),
        "status_differs": [r["name"] for r in rows if r["status"][0] != r["status"][1]],
        "png_changed": [r["name"] for r in rendered if not r["same_png"]],
        "no_facts": [r["name"] for r in rendered if not r["facts"]],
        "facts_exceptions": {r["name"]: r["notes"] for r in rendered if r["notes"]},
        "p50_s_facts_on": round(statistics.median(on_s), 4) if on_s else None,
        "p50_s_facts_off": round(statistics.median(off_s), 4) if off_s else None,
        "mean_s_facts_on": round(statistics.fmean(on_s), 4) if on_s else None,
        "mean_s_facts_off": round(statistics.fmean(off_s), 4) if off_s else None,
        "mean_ms_cost_per_draft": round(1000 * (statistics.fmean(on_s) - statistics.fmean(off_s)), 1)
        if on_s
        else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = corpus_files(args.corpus or default_corpus(), args.limit)
    figures = measure(files, args.timeout)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:24} {value}")
    bad = figures["png_changed"] or figures["no_facts"] or figures["status_differs"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
