"""Benchmark `coco batch` itself against the local fake OpenAI-compatible server (tests/support/fixtures_models.py).

Prints, for --workers 1, 2 and 4: prompts per minute, and the orchestration overhead per run, that is a run's
wall time (from the batch driver's call to its result) over the sum of its node times (what result.json's
``seconds`` adds up): checkpoints, trace lines, scheduling, result.json. Goal: at most 5%.

    .venv/bin/python scripts/bench_batch.py                      # 16 prompts, instant model, process sandbox
    .venv/bin/python scripts/bench_batch.py --model-latency 2    # a model that takes 2 s per answer
    .venv/bin/python scripts/bench_batch.py --sandbox docker --prompts 32 --vlm

Nothing leaves 127.0.0.1. Model answers are scripted (a matplotlib bar chart; the critic accepts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.fixtures_models import Slow, serve_fake_openai  # noqa: E402
from support.programs import ACCEPT, GOOD_BARS  # noqa: E402

from coco_agent.batch import BatchOptions, run_batch  # noqa: E402
from coco_agent.context import RunContext  # noqa: E402


def is_critic(body: dict) -> bool:
    return any(isinstance(m.get("content"), list) for m in body.get("messages", []))


def measure(prompts: Path, out: Path, ctx: RunContext, workers: int) -> dict:
    events: list[dict] = []
    started = time.monotonic()
    run_batch(BatchOptions(prompts, out, ctx, workers=workers), on_event=events.append)
    wall = time.monotonic() - started
    runs = [e for e in events if e.get("event") == "prompt"]
    assert all(e["status"] == "accepted" for e in runs), [e["error"] for e in runs if e["error"]]
    overheads = [(e["wall_seconds"] - e["seconds"]) / e["wall_seconds"] for e in runs]
    return {
        "workers": workers,
        "prompts": len(runs),
        "wall_s": wall,
        "per_minute": 60 * len(runs) / wall,
        "node_s_mean": statistics.mean(e["seconds"] for e in runs),
        "overhead_ms_median": 1000 * statistics.median(e["wall_seconds"] - e["seconds"] for e in runs),
        "overhead_pct_median": 100 * statistics.median(overheads),
        "overhead_pct_mean": 100 * statistics.mean(overheads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=16, help="prompts per measurement (default 16)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure (default 1,2,4)")
    parser.add_argument(
        "--model-latency", type=float, default=0.0, help="seconds per model answer (default 0)"
    )
    parser.add_argument("--sandbox", default="process", choices=["process", "bubblewrap", "docker"])
    parser.add_argument("--vlm", action="store_true", help="ask the (scripted) critic too")
    args = parser.parse_args()
    os.environ.pop("LANGSMITH_TRACING", None)
    os.environ.pop("LANGCHAIN_TRACING_V2", None)

    with serve_fake_openai() as server, tempfile.TemporaryDirectory(prefix="coco-bench-") as tmp:
        latency = args.model_latency

        def answer(body: dict):
            reply = ACCEPT if is_critic(body) else GOOD_BARS
            return Slow(latency, reply) if latency else reply

        server.respond_with(answer)
        ctx = RunContext(
            llm="openai:test-model",
            vlm="openai:test-model" if args.vlm else "none",
            base_url=server.base_url,
            sandbox=args.sandbox,
        )
        warm = Path(tmp, "warm.txt")
        warm.write_text("A warm-up bar chart\n")
        run_batch(BatchOptions(warm, Path(tmp, "warm"), ctx))  # imports, sandbox, model clients
        prompts = Path(tmp, "prompts.txt")
        prompts.write_text(
            "".join(f"A bar chart of quarterly sales, variant {i}\n" for i in range(args.prompts))
        )
        print(
            f"coco batch benchmark: {args.prompts} prompts, sandbox {args.sandbox}, critic "
            f"{'on' if args.vlm else 'off'}, model latency {latency:g} s, {os.cpu_count()} CPUs"
        )
        print(f"{'workers':>7} {'wall s':>7} {'prompts/min':>11} {'node s/run':>10} "
              f"{'overhead ms':>11} {'overhead %':>10} {'(mean %)':>8}")  # fmt: skip
        for workers in [int(w) for w in args.workers.split(",")]:
            r = measure(prompts, Path(tmp, f"out-{workers}"), ctx, workers)
            print(
                f"{r['workers']:>7} {r['wall_s']:>7.1f} {r['per_minute']:>11.1f} {r['node_s_mean']:>10.2f} "
                f"{r['overhead_ms_median']:>11.0f} {r['overhead_pct_median']:>10.1f} {r['overhead_pct_mean']:>8.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
