"""Benchmark the `ray` engine beside the `local` one, on this machine (nothing leaves 127.0.0.1).

Three measurements, side by side in one run:

1. **Scale-out**: prompts per minute on 1, 2 and 4 simulated CPU nodes (real Ray nodes from
   ``ray.cluster_utils.Cluster``, each declaring ``coco_sandbox: 1``, so one DraftStage with its own warm
   sandbox pool per node, ``--workers`` runs each), checkpoints in a real Postgres started here, against the
   local engine (one process, SQLite) at the same total concurrency (nodes x workers). The model is the scripted
   server with a delay (``--model-latency``): the regime where a cluster helps (many model calls in flight).
2. **Ray's overhead per prompt**: the driver's time for a prompt (submit to result) minus the stage's own wall
   time for it, over the driver's time (goal <= 5% of a run); beside it the local engine's orchestration
   overhead (wall time over node time).
3. **Refinement batching**: refine images/s through the RefineQueue (the code path of `coco batch` and the
   RefineStage) with batching off (B=1) and on (B=4), the tiny random img2img pipeline on CPU. Tiny-pipeline
   timings show the code path works and what batching saves in per-call overhead; the H200 figure for
   SDXL-Turbo needs a GPU (scripts/bench_refine.py on one).

    .venv/bin/python scripts/bench_ray.py                             # 16 prompts, 1 s model, docker sandbox
    .venv/bin/python scripts/bench_ray.py --nodes 1,2 --prompts 8 --sandbox process
    .venv/bin/python scripts/bench_ray.py --only refine

Needs the cluster extra (ray, langgraph-checkpoint-postgres, psycopg) and Debian's postgresql binaries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.fixtures_models import Slow, save_tiny_img2img, serve_fake_openai  # noqa: E402
from support.programs import ACCEPT, GOOD_BARS  # noqa: E402

from coco_agent.batch import BatchOptions, run_batch  # noqa: E402
from coco_agent.context import RunContext  # noqa: E402


def is_critic(body: dict) -> bool:
    return any(isinstance(m.get("content"), list) for m in body.get("messages", []))


def prompts_file(folder: Path, count: int, tag: str) -> Path:
    path = folder / f"prompts-{tag}.txt"
    path.write_text("".join(f"A bar chart of quarterly sales, {tag} variant {i}\n" for i in range(count)))
    return path


def measure(options: BatchOptions) -> dict[str, Any]:
    events: list[dict] = []
    ended: list[float] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if event.get("event") == "prompt":
            ended.append(time.monotonic())

    started = time.monotonic()
    run_batch(options, on_event=on_event)
    wall = time.monotonic() - started
    runs = [e for e in events if e.get("event") == "prompt"]
    bad = [e.get("error") for e in runs if e["status"] != "accepted"]
    assert runs and not bad, bad[:3]
    row: dict[str, Any] = {
        "prompts": len(runs),
        "wall_s": wall,
        "per_minute": 60 * len(runs) / wall,
        "first_s": ended[0] - started,  # start-up (stages, warm pools) + the first run
        "steady_per_minute": 60 * (len(ended) - 1) / (ended[-1] - ended[0]) if len(ended) > 1 else 0.0,
        "orchestration_pct": 100 * statistics.median((e["wall_seconds"] - e["seconds"]) / e["wall_seconds"] for e in runs),
    }  # fmt: skip
    if all("driver_seconds" in e for e in runs):
        row["ray_ms"] = 1000 * statistics.median(e["driver_seconds"] - e["wall_seconds"] for e in runs)
        row["ray_pct"] = 100 * statistics.median(
            (e["driver_seconds"] - e["wall_seconds"]) / e["driver_seconds"] for e in runs
        )
    return row


def scale_out(args: argparse.Namespace, tmp: Path) -> None:
    from ray.cluster_utils import Cluster
    from support.fixtures_postgres import PostgresServer, free_port, server_bin

    bindir = server_bin()
    if bindir is None:
        raise SystemExit("Postgres server binaries are missing: apt-get install postgresql")
    pg_root = Path(tempfile.mkdtemp(prefix="coco-bench-pg-"))
    user = None
    if os.geteuid() == 0:
        import pwd

        user = "postgres"
        info = pwd.getpwnam(user)
        os.chown(pg_root, info.pw_uid, info.pw_gid)
    pg = PostgresServer(bindir, pg_root, free_port(), user)
    pg.init()
    pg.start()
    pg.create_db()
    latency = args.model_latency
    cluster = None
    try:
        with serve_fake_openai() as server:
            server.respond_with(lambda body: Slow(latency, ACCEPT if is_critic(body) else GOOD_BARS))
            ctx = RunContext(
                llm="openai:test-model", vlm="none", base_url=server.base_url, sandbox=args.sandbox
            )
            warm = prompts_file(tmp, 2, "warm")
            run_batch(BatchOptions(warm, tmp / "warm-local", ctx, workers=2))  # imports, image, clients
            print(
                f"\n1+2. scale-out and Ray's overhead: {args.prompts} prompts per row, model latency {latency:g} s, "
                f"{args.workers} runs in flight per node, sandbox {args.sandbox}, {os.cpu_count()} CPUs here"
            )
            print(f"{'engine':>6} {'nodes':>5} {'in flight':>9} {'wall s':>7} {'prompts/min':>11} {'1st s':>6} "
                  f"{'steady/min':>10} {'orch. %':>7} {'Ray ms':>7} {'Ray %':>6}")  # fmt: skip
            temp = tempfile.mkdtemp(prefix="coco-bench-ray-", dir="/tmp")
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 0, "include_dashboard": False, "temp_dir": temp},
            )
            nodes = 0
            for count in sorted(int(n) for n in args.nodes.split(",")):
                while nodes < count:
                    cluster.add_node(num_cpus=1, resources={"coco_sandbox": 1})
                    nodes += 1
                cluster.wait_for_nodes()
                flight = count * args.workers
                common = {
                    "workers": args.workers,
                    "engine": "ray",
                    "ray_address": cluster.address,
                    "pg_url": pg.url,
                }
                run_batch(BatchOptions(warm, tmp / f"warm-ray-{count}", ctx, **common))  # stages' imports
                ray_row = measure(
                    BatchOptions(
                        prompts_file(tmp, args.prompts, f"r{count}"), tmp / f"ray-{count}", ctx, **common
                    )
                )
                local_row = measure(
                    BatchOptions(
                        prompts_file(tmp, args.prompts, f"l{count}"),
                        tmp / f"local-{count}",
                        ctx,
                        workers=flight,
                    )
                )
                for engine, row in (("local", local_row), ("ray", ray_row)):
                    ray_ms = (
                        f"{row['ray_ms']:>7.0f} {row['ray_pct']:>6.1f}"
                        if "ray_ms" in row
                        else f"{'-':>7} {'-':>6}"
                    )
                    print(f"{engine:>6} {count if engine == 'ray' else 1:>5} {flight:>9} {row['wall_s']:>7.1f} "
                          f"{row['per_minute']:>11.1f} {row['first_s']:>6.1f} {row['steady_per_minute']:>10.1f} "
                          f"{row['orchestration_pct']:>7.1f} {ray_ms}")  # fmt: skip
                print(
                    f"{'':>6} ray/local at {flight} in flight: {ray_row['per_minute'] / local_row['per_minute']:.2f}x"
                )
    finally:
        if cluster is not None:
            cluster.shutdown()
        pg.stop()


def refine_batching(args: argparse.Namespace, tmp: Path) -> None:
    from PIL import Image, ImageDraw

    from coco_agent.refiners import RefineRequest, load_refiner
    from coco_agent.refiners.batching import RefineJob, RefineQueue

    path = str(save_tiny_img2img(tmp / "tiny-img2img"))
    load_refiner(path)  # loaded once, as the RefineStage does

    def job(seed: int) -> RefineJob:
        draft = Image.new("RGB", (args.refine_size,) * 2, "white")
        ImageDraw.Draw(draft).rectangle(
            (8, 8, args.refine_size // 2, args.refine_size - 8), fill=(30, 90, 200)
        )
        request = RefineRequest(draft=draft, prompt="a bar chart", strength=0.5, steps=4, seed=seed)
        return RefineJob(path, request, guard=False)

    print(f"\n3. refinement through the refine queue: tiny random img2img on CPU, {args.refine_size}² drafts, "
          f"{args.refine_jobs} jobs submitted at once, 4 steps x strength 0.5")  # fmt: skip
    print(f"{'batch':>5} {'calls':>5} {'s':>6} {'images/s':>8}")
    rates = {}
    for batch in (1, 4):
        queue = RefineQueue(batch, 0.05)
        queue.refine(job(999))  # warm the pipeline at this batch size
        queue.batches.clear()
        started = time.monotonic()
        futures = [queue.submit(job(seed)) for seed in range(args.refine_jobs)]
        wait(futures)
        seconds = time.monotonic() - started
        queue.close()
        assert all(f.result().image is not None for f in futures), [f.result().record for f in futures][:2]
        rates[batch] = args.refine_jobs / seconds
        print(f"{batch:>5} {len(queue.batches):>5} {seconds:>6.2f} {rates[batch]:>8.2f}")
    print(f"batching on/off: {rates[4] / rates[1]:.2f}x images/s (the H200 SDXL-Turbo figure needs a GPU)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", default="1,2,4", help="simulated CPU node counts (default 1,2,4)")
    parser.add_argument("--workers", type=int, default=2, help="runs in flight per node (default 2)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per measurement (default 16)")
    parser.add_argument(
        "--model-latency", type=float, default=1.0, help="seconds per model answer (default 1)"
    )
    parser.add_argument("--sandbox", default="docker", choices=["process", "bubblewrap", "docker"])
    parser.add_argument("--refine-jobs", type=int, default=16)
    parser.add_argument("--refine-size", type=int, default=64)
    parser.add_argument("--only", choices=["scale", "refine"], help="one measurement only")
    args = parser.parse_args()
    for name in (
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
        "COCO_RAY_ADDRESS",
        "COCO_PG_URL",
        "RAY_ADDRESS",
    ):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="coco-bench-") as tmp:
        if args.only in (None, "refine"):
            refine_batching(args, Path(tmp))
        if args.only in (None, "scale"):
            scale_out(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
