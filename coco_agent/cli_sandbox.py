"""`coco render`, `coco sandbox build|status` and `coco bench sandbox`: run one program in the sandbox, manage the
sandbox image, measure the sandbox's speed and fidelity."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from coco_agent import formats
from coco_agent.safe_text import json_text, markup_text, plain_text, safe_console
from coco_agent.sandbox import (
    SandboxLimits,
    SandboxUnavailable,
    get_sandbox,
    print_progress,
)

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2
err = safe_console(stderr=True)


def add_parsers(subparsers) -> None:
    """Register `render` and `sandbox` on an argparse subparsers object (each sets func(args) -> int)."""
    render = subparsers.add_parser("render", help="run one drawing program in the sandbox and save its PNG")
    render.add_argument("file", type=Path, help="program (.py) or SVG file")
    render.add_argument("-o", "--output", type=Path, required=True, help="where to write the PNG")
    render.add_argument("--format", choices=["auto", *formats.names()], default="auto")
    render.add_argument(
        "--timeout", type=float, default=SandboxLimits.timeout_s, help="seconds (default %(default)s)"
    )
    render.add_argument("--sandbox", choices=["auto", "docker", "process", "bubblewrap"], default="auto")
    render.add_argument(
        "--json", action="store_true", help="print {status, error, seconds, sandbox} to stdout"
    )
    render.set_defaults(func=cmd_render)

    sandbox = subparsers.add_parser("sandbox", help="build or inspect the Docker sandbox image")
    actions = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = actions.add_parser("build", help="build the image from Debian packages (no registry needed)")
    build.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    build.set_defaults(func=cmd_sandbox_build)
    status = actions.add_parser("status", help="engine, runtime and image state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_sandbox_status)


def add_bench_parser(subparsers) -> None:
    """Register `bench sandbox`, under the `bench` command when another module already made it."""
    bench = subparsers.choices.get("bench") or subparsers.add_parser("bench", help="run a benchmark")
    which = next((a for a in bench._actions if isinstance(a, argparse._SubParsersAction)), None)
    if which is None:
        which = bench.add_subparsers(metavar="BENCHMARK")
    sandbox = which.add_parser(
        "sandbox",
        help="seconds per draft: warm pools vs bare interpreter vs a fresh sandbox per job, and fidelity",
    )
    sandbox.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="folder of .py/.svg programs (default: ChartMimic), or 'typical': 40 generated 12-point line charts",
    )
    sandbox.add_argument("--limit", type=int, default=None, help="first N programs (by name)")
    sandbox.add_argument(
        "--paths",
        default="bare,pool,docker_run",
        help="comma-separated subset of bare,pool,docker_run (Docker) and bare_host,bwrap_warm,bwrap_job "
        "(no Docker needed)",
    )
    sandbox.add_argument("--timeout", type=float, default=60.0, help="seconds per program")
    sandbox.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    sandbox.set_defaults(func=cmd_bench_sandbox)


def _default_corpus() -> Path:
    from coco_agent.paths import PROJECT_ROOT

    return PROJECT_ROOT.resolve().parent / "shared" / "benchmarks" / "chartmimic_ori500"


def cmd_bench_sandbox(args: argparse.Namespace) -> int:
    """Render the corpus through each path; print p50/p95 per path and the ratios (or --json)."""
    from coco_agent.sandbox import bench
    from coco_agent.sandbox.image import build_image, docker_client

    corpus = args.corpus or _default_corpus()
    if str(corpus) == bench.TYPICAL:
        corpus = bench.typical_corpus(Path(tempfile.mkdtemp(prefix="coco-typical-")))
    if not corpus.is_dir():
        err.print(f"[red]no corpus at {markup_text(corpus)}[/red]: pass --corpus DIR", highlight=False)
        return EXIT_UNAVAILABLE
    files = bench.corpus_files(corpus, args.limit)
    paths = tuple(p for p in args.paths.split(",") if p in bench.PATHS)
    if not paths:
        err.print(
            f"[red]no known path in {markup_text(repr(args.paths))}[/red]: choose from {','.join(bench.PATHS)}",
            highlight=False,
        )
        return EXIT_UNAVAILABLE
    client = image = None
    try:
        if set(paths) & set(bench.DOCKER_PATHS):
            client = docker_client()
            image = build_image(progress=_progress, client=client)
        if set(paths) & {"bwrap_warm", "bwrap_job"} and not shutil.which("bwrap"):
            raise SandboxUnavailable("bubblewrap is not installed: apt-get install bubblewrap")
    except SandboxUnavailable as exc:
        err.print(f"[red]sandbox unavailable:[/red] {markup_text(exc)}", highlight=False)
        return EXIT_UNAVAILABLE
    rows = bench.run(files, image, client, paths, args.timeout, progress=None if args.json else _progress)
    figures = bench.summarize(rows)
    if args.json:
        print(json_text(figures))
    else:
        _print_bench(figures)
    return EXIT_OK if figures["rendered"] else EXIT_FAILED


def _print_bench(figures: dict) -> None:
    table = Table(title=f"seconds per draft over {figures['compared']} programs every path rendered")
    for column in ("path", "p50", "p95", "mean"):
        table.add_column(column)
    for path, stats in figures["seconds"].items():
        table.add_row(
            path, *(f"{stats[q]:.3f}" if stats[q] is not None else "-" for q in ("p50", "p95", "mean"))
        )
    out = safe_console(file=sys.stdout)
    out.print(table)
    if figures["p50_ratio"] is not None or figures["p50_docker_run_ratio"] is not None:
        out.print(
            f"pool/bare p50 {figures['p50_ratio']}  p95 {figures['p95_ratio']}   "
            f"docker-run/pool p50 {figures['p50_docker_run_ratio']}  p95 {figures['p95_docker_run_ratio']}"
        )
    if "p50_bwrap_warm_ratio" in figures:
        out.print(
            f"bwrap-warm/bare-host p50 {figures['p50_bwrap_warm_ratio']}  p95 {figures['p95_bwrap_warm_ratio']}   "
            f"bwrap-job/bwrap-warm p50 {figures['p50_bwrap_job_ratio']}  p95 {figures['p95_bwrap_job_ratio']}"
        )
    out.print(f"rendered {figures['rendered']}/{figures['programs']}, failed {figures['failed']}")
    for key, name in (("fidelity", "pool"), ("fidelity_bwrap_warm", "bwrap_warm")):
        fid = figures.get(key)
        if fid:
            out.print(
                f"fidelity {name}: {fid['matched']}/{fid['plain_ok']} match the bare render ({fid['match_rate']})"
            )
            for item in fid["mismatches"]:
                line = f"  {item['program']}: {item['why']} {item.get('mean_diff', '')}"
                out.print(plain_text(line), highlight=False)
    for item in figures["failures"]:
        line = f"  failed {item['path']} {item['program']}: {item['status']} {item['error'][-160:]}"
        out.print(plain_text(line), highlight=False)


def _progress(message: str) -> None:
    print_progress(message)


def cmd_render(args: argparse.Namespace) -> int:
    """Render FILE to OUT.png; exit 0 only when OUT.png was written."""
    started = time.monotonic()
    report: dict = {"status": "error", "error": "", "seconds": 0.0, "sandbox": ""}
    try:
        code = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _render_done(args, dict(report, error=f"cannot read {args.file}: {exc}"), EXIT_UNAVAILABLE)
    fmt = formats.guess(code, args.file.name) if args.format == "auto" else args.format
    try:
        sandbox = get_sandbox(args.sandbox, progress=None if args.json else _progress)
    except SandboxUnavailable as exc:
        return _render_done(args, dict(report, error=str(exc)), EXIT_UNAVAILABLE)
    result = sandbox.render(code, fmt, SandboxLimits(timeout_s=args.timeout))
    report = {
        "status": result.status,
        "error": result.error,
        "seconds": result.seconds,
        "sandbox": result.sandbox,
    }
    report.update(format=fmt, width=result.width, height=result.height)
    if not result.ok:
        report["stderr_tail"] = result.stderr[-2000:]
        return _render_done(args, report, EXIT_FAILED)
    try:
        _write_atomic(args.output, result.png or b"")
    except OSError as exc:
        return _render_done(
            args, dict(report, status="error", error=f"cannot write {args.output}: {exc}"), EXIT_FAILED
        )
    report.update(output=str(args.output), seconds=round(time.monotonic() - started, 3))
    return _render_done(args, report, EXIT_OK)


def _write_atomic(path: Path, data: bytes) -> None:
    from coco_agent.runs import write_bytes

    write_bytes(path, data)


def _render_done(args: argparse.Namespace, report: dict, code: int) -> int:
    if args.json:
        print(json_text(report))
    elif code == EXIT_OK:
        err.print(
            f"[green]rendered[/green] {markup_text(report['output'])} ({report['width']}x{report['height']}, "
            f"{report['format']}) in {report['seconds']:.2f} s [dim]\\[{report['sandbox']} sandbox][/dim]",
            highlight=False,
        )
    else:
        err.print(
            f"[red]{markup_text(report['status'])}[/red]: {markup_text(report['error'])}", highlight=False
        )
        if report.get("stderr_tail") and report["status"] != "error":
            err.print(plain_text(report["stderr_tail"]), highlight=False)
    return code


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    """Build the sandbox image (fast when its tag exists)."""
    from coco_agent.sandbox.image import build_image

    started = time.monotonic()
    try:
        tag = build_image(progress=_progress, force=args.force)
    except SandboxUnavailable as exc:
        err.print(f"[red]cannot build the sandbox image:[/red] {markup_text(exc)}", highlight=False)
        return EXIT_FAILED
    err.print(f"[green]ready[/green] {tag} ({time.monotonic() - started:.1f} s)")
    print(tag)
    return EXIT_OK


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    """Say whether the engine answers and the image is there; exit 0 only when Docker rendering is ready."""
    from coco_agent.sandbox.image import image_status

    status = image_status()
    ready = bool(status["engine"] and status["present"])
    if args.json:
        print(json_text(status))
        return EXIT_OK if ready else EXIT_FAILED
    table = Table(show_header=False, box=None)
    table.add_row(
        "engine",
        "[green]reachable[/green]"
        if status["engine"]
        else f"[red]unreachable[/red] {markup_text(status['engine_error'])}",
    )
    if status["engine"]:
        table.add_row(
            "server",
            f"Docker {status['server_version']}, runtime {status['runtime']}, cgroup v{status['cgroup_version']}",
        )
    image = status["image"]
    if status["present"]:
        table.add_row(
            "image", f"[green]{image}[/green] {status['size_mb']} MB, created {status['created'][:19]}"
        )
    else:
        table.add_row("image", f"[yellow]{image} missing[/yellow]: run `coco sandbox build`")
    table.add_row(
        "debootstrap", status["debootstrap"] or "[yellow]missing[/yellow] (apt-get install debootstrap)"
    )
    safe_console(file=sys.stdout).print(table)
    return EXIT_OK if ready else EXIT_FAILED
