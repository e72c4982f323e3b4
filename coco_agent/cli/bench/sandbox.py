"""`coco bench sandbox`: seconds per draft through a bare warm interpreter, the warm pools and a fresh sandbox per
job, interleaved, and the fidelity of the pools' PNGs (`coco_agent/sandbox/bench.py`)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode


def register(benchmarks: argparse._SubParsersAction) -> None:
    parser = benchmarks.add_parser(
        "sandbox",
        help="seconds per draft: warm pools vs bare interpreter vs a fresh sandbox per job, and fidelity",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="folder of .py/.svg/.html/.dot/.vl.json programs (default: ChartMimic), or a generated one: "
        "'typical' (40 12-point line charts), 'typical-html' (20 poster cards), 'typical-dot' (20 flowcharts), "
        "'typical-vl' (20 Vega-Lite bar charts)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N programs (by name)")
    parser.add_argument(
        "--paths",
        default="bare,pool,docker_run",
        help="comma-separated subset of bare,pool,gvisor_pool,docker_run (Docker) and bare_host,bwrap_warm,"
        "bwrap_job (no Docker needed)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per program")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.set_defaults(func=run)


def default_corpus() -> Path:
    from coco_agent.paths import PROJECT_ROOT

    return PROJECT_ROOT.resolve().parent / "shared" / "benchmarks" / "chartmimic_ori500"


def run(args: argparse.Namespace) -> int:
    """Render the corpus through each path; print p50/p95 per path and the ratios (or --json)."""
    from coco_agent.errors import SandboxUnavailable
    from coco_agent.safe_text import json_text, markup_text
    from coco_agent.sandbox import bench
    from coco_agent.sandbox.image import build_image, docker_client

    corpus = args.corpus or default_corpus()
    if str(corpus) in bench.CORPORA:
        corpus = bench.CORPORA[str(corpus)](Path(tempfile.mkdtemp(prefix=f"coco-{corpus}-")))
    if not corpus.is_dir():
        display.stderr_console().print(
            f"[red]no corpus at {markup_text(corpus)}[/red]: pass --corpus DIR", highlight=False
        )
        return ExitCode.USAGE
    files = bench.corpus_files(corpus, args.limit)
    paths = tuple(p for p in args.paths.split(",") if p in bench.PATHS)
    if not paths:
        display.stderr_console().print(
            f"[red]no known path in {markup_text(repr(args.paths))}[/red]: choose from {','.join(bench.PATHS)}",
            highlight=False,
        )
        return ExitCode.USAGE
    client = image = None
    try:
        if set(paths) & set(bench.NEEDS_DOCKER):
            client = docker_client()
            image = build_image(progress=display.sandbox_progress, client=client)
        if set(paths) & {"bwrap_warm", "bwrap_job"} and not shutil.which("bwrap"):
            raise SandboxUnavailable("bubblewrap is not installed: apt-get install bubblewrap")
        if "gvisor_pool" in paths:
            from coco_agent.sandbox.launchers.gvisor import INSTALL, runsc_registered

            if not runsc_registered(client):
                raise SandboxUnavailable(f"the Docker engine has no runsc (gVisor) runtime: {INSTALL}")
    except SandboxUnavailable as exc:
        display.sandbox_error("sandbox unavailable:", exc)
        return ExitCode.USAGE
    progress = None if args.json else display.sandbox_progress
    rows = bench.run(files, image, client, paths, args.timeout, progress=progress)
    figures = bench.summarize(rows)
    if args.json:
        print(json_text(figures))
    else:
        display.bench_sandbox(figures)
    return ExitCode.OK if figures["rendered"] else ExitCode.FAILED
