"""`coco bench sandbox`: seconds per draft through the warm pools, a bare warm interpreter and per-job sandboxes.

Each program of a corpus (.py for matplotlib or PIL, .svg, .html, .dot, .vl.json) goes, in turn, through
  bare        the floor: one warm interpreter (the image's Python and packages, the worker's matplotlib set-up
              and picture capture) that execs every program in-process, in one unconfined container; for
              html, graphviz and vega-lite the worker's own document renderer with its warm service (a warm
              headless Chromium driven over the same CDP pipe, dot, the warm vl-convert process);
  pool        the warm container pool (WarmPool over DockerLauncher), the default Docker sandbox;
  gvisor_pool the same pool under gVisor (GvisorLauncher: Docker's runsc runtime);
  docker_run  a fresh hardened container per program (the same pool, one job per worker), the per-job path;
and, for hosts without Docker (the host's Python and packages, no Docker needed):
  bare_host   the same floor as bare, run by the host's Python with no sandbox;
  bwrap_warm  the warm bubblewrap workers (WarmPool over BwrapLauncher), the default without Docker;
  bwrap_job   a fresh bubblewrap per program (COCO_SANDBOX_POOL=0).
Programs are interleaved (every path for each) so drift hits all alike. Times are host wall seconds per draft,
PNG included. Fidelity: each warm path's PNG against its floor's render (same size, pixels).
"""

from __future__ import annotations

import io
import json
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coco_agent import formats
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.bundle import worker_bundle
from coco_agent.sandbox.image import CONTAINER_ENV, SANDBOX_UID, WORKER_PATH
from coco_agent.sandbox.launchers.bubblewrap import host_mpl_cache

PATHS = ("bare", "pool", "gvisor_pool", "docker_run", "bare_host", "bwrap_warm", "bwrap_job")
DOCKER_PATHS = ("bare", "pool", "docker_run")
NEEDS_DOCKER = (*DOCKER_PATHS, "gvisor_pool")
# warm path -> the bare render it is compared with
FLOORS = {"pool": "bare", "gvisor_pool": "bare", "bwrap_warm": "bare_host"}
MAX_MEAN_DIFF = 1.0  # mean absolute difference per channel (0-255) under which two renders count as identical

# Runs in the image: the worker's set-up and capture, but exec in-process (no fork, no isolation).
BARE_RUNNER = f"""
import io, json, os, shutil, sys, tempfile, time
sys.path.insert(0, {WORKER_PATH!r})
from coco_worker.capture import Capture
from coco_worker.main import preload
from coco_worker.renderers import RENDERERS
from coco_worker.renderers.svg import render_svg
proto = os.fdopen(os.dup(1), "w")
DOCUMENTS = ("html", "graphviz", "vega-lite")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
preload(["numpy", "pil", "matplotlib", "svg", *json.loads(sys.argv[1] if len(sys.argv) > 1 else "[]")])
import matplotlib.pyplot as plt
cap = Capture("matplotlib", 40_000_000, RENDERERS)
cap.install()
mpl_hooks, pil_hooks = cap.hooks["matplotlib"], cap.hooks["pil"]
import matplotlib
rc = matplotlib.rcParams.copy()  # a program's rcParams/style changes must not reach the next one
proto.write("ready\\n"); proto.flush()
for line in sys.stdin:
    job = json.loads(line)
    matplotlib.rcParams.update(rc)
    cap.fmt, mpl_hooks.figures, pil_hooks.saved, pil_hooks.created = job["format"], [], None, None
    home = tempfile.mkdtemp()
    os.chdir(home)
    started = time.perf_counter()
    out = {{"status": "ok", "error": "", "png": ""}}
    try:
        if job["format"] == "svg":
            found = render_svg(job["code"], 40_000_000), "svg text"
        elif job["format"] in DOCUMENTS:  # the worker's own document renderer and its warm service, in-process
            limits = {{"timeout": 60.0, "max_pixels": 40_000_000, "max_png_bytes": 32 << 20}}
            found = RENDERERS[job["format"]].document(job["code"], limits)
        else:
            namespace = {{"__name__": "__main__", "__file__": "program.py"}}
            exec(compile(job["code"], "program.py", "exec"), namespace)
            found = cap.result(namespace, home)
        if found:
            out["png"] = found[0].hex()
        else:
            out["status"] = "no_image"
    except BaseException as exc:
        out.update(status="error", error=f"{{type(exc).__name__}}: {{exc}}"[:500])
    plt.close("all")
    out["seconds"] = time.perf_counter() - started
    os.chdir("/")
    shutil.rmtree(home, ignore_errors=True)
    proto.write(json.dumps(out) + "\\n"); proto.flush()
"""


@dataclass
class Outcome:
    """One program through one path."""

    status: str
    seconds: float
    error: str = ""
    png: bytes = b""


@dataclass
class ProgramRow:
    """One program through every path."""

    name: str
    format: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)


TYPICAL = "typical"
_TYPICAL_PROGRAM = """import matplotlib.pyplot as plt

months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
values = {values}
fig, ax = plt.subplots(figsize=(8, 5))
ax.plot(months, values, marker="{marker}", color="{color}", linewidth=2, label="{label}")
ax.set_title("{title}")
ax.set_xlabel("Month")
ax.set_ylabel("{label}")
ax.grid(True, alpha=0.3)
ax.legend(loc="upper left")
fig.tight_layout()
plt.savefig("chart.png", dpi=100)
"""


def typical_corpus(directory: Path, count: int = 40) -> Path:
    """Write `count` typical agent drafts (a 12-point matplotlib line chart each, the issue's anchor workload)."""
    directory.mkdir(parents=True, exist_ok=True)
    colors, markers = ("tab:blue", "darkorange", "seagreen", "crimson", "purple"), "osd^v"
    for i in range(count):
        values = [round(50 + 30 * ((i + 3) * k % 7) / 7 + k * (i % 5), 1) for k in range(12)]
        program = _TYPICAL_PROGRAM.format(
            values=values,
            marker=markers[i % len(markers)],
            color=colors[i % len(colors)],
            label=("Revenue (k$)", "Visitors", "Orders", "Rainfall (mm)")[i % 4],
            title=f"Monthly figures {2000 + i}",
        )
        (directory / f"line_{i:03d}.py").write_text(program, encoding="utf-8")
    return directory


_TYPICAL_HTML = """<!doctype html>
<html><head><meta name="viewport" content="width=800, height=600"><style>
body {{ margin: 0; width: 800px; height: 600px; font-family: "DejaVu Sans", sans-serif; background: {bg}; }}
.card {{ position: absolute; left: 60px; top: 60px; width: 680px; height: 480px; display: flex;
  flex-direction: column; justify-content: space-between; padding: 40px; box-sizing: border-box;
  border-radius: 24px; background: linear-gradient(135deg, {a}, {b}); color: white; }}
h1 {{ font-size: 56px; margin: 0; line-height: 1.1; }}
p {{ font-size: 24px; margin: 0; }}
ul {{ font-size: 22px; margin: 0; padding-left: 28px; }}
.foot {{ display: flex; justify-content: space-between; font-size: 20px; }}
</style></head><body><div class="card">
<h1>{title}</h1><p>{subtitle}</p>
<ul><li>{item1}</li><li>{item2}</li><li>{item3}</li></ul>
<div class="foot"><span>{when}</span><span>{where}</span></div>
</div></body></html>
"""
_TYPICAL_DOT = """digraph flow {{
  rankdir={rankdir}; node [shape=box, style="rounded,filled", fillcolor="{fill}", fontname="DejaVu Sans"];
  start [label="{title}", shape=ellipse];
{nodes}
  start -> s0;
{edges}
  s{last} -> s0 [label="retry", style=dashed];
}}
"""


def typical_html_corpus(directory: Path, count: int = 20) -> Path:
    """Write `count` typical HTML drafts: an 800x600 poster card (a title, a subtitle, a list, a footer)."""
    directory.mkdir(parents=True, exist_ok=True)
    colours = (("#1d3557", "#457b9d"), ("#6a040f", "#e85d04"), ("#2d6a4f", "#95d5b2"), ("#3c096c", "#9d4edd"))
    events = ("Summer Fair", "Jazz Night", "Book Swap", "Open Studio", "Food Market")
    for i in range(count):
        a, b = colours[i % len(colours)]
        page = _TYPICAL_HTML.format(
            bg="#f1faee" if i % 2 else "#fff8e7",
            a=a,
            b=b,
            title=f"{events[i % len(events)]} {2026 + i % 3}",
            subtitle=f"Edition {i + 1}: music, food and friends",
            item1="Live bands from 6 PM",
            item2=f"{10 + i} local stalls",
            item3="Free entry for children",
            when=f"Friday {1 + i % 28} May, 8 PM",
            where="City Park",
        )
        (directory / f"poster_{i:03d}.html").write_text(page, encoding="utf-8")
    return directory


def typical_dot_corpus(directory: Path, count: int = 20) -> Path:
    """Write `count` typical Graphviz drafts: a 6-9 step flowchart with a decision and a retry edge."""
    directory.mkdir(parents=True, exist_ok=True)
    steps = (
        "Receive order",
        "Check stock",
        "Reserve items",
        "Take payment",
        "Pack",
        "Ship",
        "Notify",
        "Invoice",
    )
    for i in range(count):
        size = 5 + i % 4
        names = [steps[(i + k) % len(steps)] for k in range(size)]
        nodes = "\n".join(f'  s{k} [label="{name}"];' for k, name in enumerate(names))
        edges = "\n".join(f"  s{k} -> s{k + 1};" for k in range(size - 1))
        graph = _TYPICAL_DOT.format(
            rankdir="TB" if i % 2 else "LR",
            fill=("#e0f2fe", "#fef3c7", "#dcfce7")[i % 3],
            title=f"Order flow {i + 1}",
            nodes=nodes,
            edges=edges,
            last=size - 1,
        )
        (directory / f"flow_{i:03d}.dot").write_text(graph, encoding="utf-8")
    return directory


def typical_vl_corpus(directory: Path, count: int = 20) -> Path:
    """Write `count` typical Vega-Lite drafts: a 12-bar monthly chart with a title and axis titles."""
    directory.mkdir(parents=True, exist_ok=True)
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    for i in range(count):
        values = [
            {"month": m, "value": round(40 + 25 * ((i + 2) * k % 5) / 5 + k, 1)} for k, m in enumerate(months)
        ]
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": f"Monthly orders {2000 + i}",
            "width": 640,
            "height": 360,
            "data": {"values": values},
            "mark": {"type": "bar", "color": ("#4c78a8", "#f58518", "#54a24b")[i % 3]},
            "encoding": {
                "x": {"field": "month", "type": "ordinal", "sort": None, "title": "Month"},
                "y": {"field": "value", "type": "quantitative", "title": "Orders"},
            },
        }
        (directory / f"bars_{i:03d}.vl.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return directory


CORPORA: dict[str, Callable[[Path], Path]] = {
    TYPICAL: typical_corpus,
    "typical-html": typical_html_corpus,
    "typical-dot": typical_dot_corpus,
    "typical-vl": typical_vl_corpus,
}


def corpus_files(corpus: Path, limit: int | None = None) -> list[Path]:
    """The corpus's programs (every format's suffix), sorted by name, at most `limit`."""
    files = sorted(p for p in corpus.iterdir() if p.name.endswith(formats.suffixes()) and p.is_file())
    return files[:limit] if limit else files


class BareInterpreter:
    """The floor: one warm interpreter that execs every program in-process; in an unconfined container of the
    sandbox image, or (image None) run by the host's Python."""

    def __init__(self, image: str | None, timeout_s: float = 60.0, documents: tuple[str, ...] = ()) -> None:
        self.image, self.timeout_s, self.documents = image, timeout_s, documents
        self.proc: subprocess.Popen | None = None
        self.home = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self._env(),
        )
        if self._readline(180) != "ready":
            raise RuntimeError("the bare interpreter did not start")

    def _command(self) -> list[str]:
        if self.image is None:
            runner = BARE_RUNNER.replace(repr(WORKER_PATH), repr(str(worker_bundle())), 1)
            return [sys.executable, "-I", "-c", runner, json.dumps(list(self.documents))]
        env = dict(CONTAINER_ENV)
        env["MPLCONFIGDIR"] = "/tmp/mplconfig"
        cmd = ["docker", "run", "--rm", "-i", "--network", "none", "--user", f"{SANDBOX_UID}"]
        cmd += ["--tmpfs", "/tmp:rw,size=256m", "--read-only", "--label", "coco-agent.bench=1"]
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        return cmd + [
            "-e",
            "COCO_MPL_SEED=/opt/coco/mplconfig",
            self.image,
            "python3",
            "-I",
            "-c",
            BARE_RUNNER,
            json.dumps(list(self.documents)),
        ]

    def _env(self) -> dict[str, str] | None:
        if self.image is not None:
            return None
        self.home = tempfile.mkdtemp(prefix="coco-bench-")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.home, "TMPDIR": self.home}
        seed = host_mpl_cache()
        return dict(env, COCO_MPL_SEED=seed) if seed else env

    def _readline(self, timeout: float) -> str | None:
        assert self.proc and self.proc.stdout
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        return self.proc.stdout.readline().strip()

    def render(self, code: str, fmt: str) -> Outcome:
        if self.proc is None:
            self.start()
        assert self.proc and self.proc.stdin
        started = time.monotonic()
        self.proc.stdin.write(json.dumps({"code": code, "format": fmt}) + "\n")
        self.proc.stdin.flush()
        line = self._readline(self.timeout_s)
        seconds = time.monotonic() - started
        if not line:
            self.close()
            return Outcome("timeout", seconds, "no answer from the bare interpreter")
        out = json.loads(line)
        return Outcome(out["status"], seconds, out["error"], bytes.fromhex(out["png"]))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = ""


def _sandbox_outcome(sandbox, code: str, fmt: str, limits: SandboxLimits) -> Outcome:
    started = time.monotonic()
    result = sandbox.render(code, fmt, limits)
    return Outcome(result.status, time.monotonic() - started, result.error[-500:], result.png or b"")


def run(
    files: list[Path],
    image: str | None,
    client=None,
    paths: tuple[str, ...] = DOCKER_PATHS,
    timeout_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> list[ProgramRow]:
    """Render every file through every path (interleaved per program); returns one row per program."""
    limits = SandboxLimits(timeout_s=timeout_s)
    codes = [path.read_text(encoding="utf-8", errors="replace") for path in files]
    documents = tuple(
        sorted({formats.guess(code, path.name) for code, path in zip(codes, files, strict=True)})
    )
    runners = _runners(paths, image, client, limits, documents)
    rows = []
    try:
        for runner in runners.values():
            if isinstance(runner, BareInterpreter):
                runner.start()
            elif hasattr(runner, "warm"):
                runner.warm()
        for i, (path, code) in enumerate(zip(files, codes, strict=True)):
            row = ProgramRow(path.name, formats.guess(code, path.name))
            for name, runner in runners.items():
                if isinstance(runner, BareInterpreter):
                    row.outcomes[name] = runner.render(code, row.format)
                else:
                    row.outcomes[name] = _sandbox_outcome(runner, code, row.format, limits)
            rows.append(row)
            if progress:
                times = ", ".join(f"{k} {o.seconds:.2f}s {o.status}" for k, o in row.outcomes.items())
                progress(f"[{i + 1}/{len(files)}] {path.name}: {times}")
    finally:
        for runner in runners.values():
            runner.close()
    return rows


def _runners(
    paths: tuple[str, ...], image: str | None, client, limits: SandboxLimits, documents: tuple[str, ...] = ()
) -> dict:
    """One runner per requested path, in PATHS order (the bare ones start the document formats' services)."""
    from coco_agent.sandbox.launchers import BwrapLauncher, DockerLauncher, GvisorLauncher
    from coco_agent.sandbox.pool import WarmPool

    makers = {
        "bare": lambda: BareInterpreter(image, limits.timeout_s, documents),
        "pool": lambda: WarmPool(DockerLauncher(client=client, image=image, limits=limits)),
        "gvisor_pool": lambda: WarmPool(GvisorLauncher(client=client, image=image, limits=limits)),
        "docker_run": lambda: WarmPool(
            DockerLauncher(client=client, image=image, limits=limits), 0, max_jobs=1
        ),
        "bare_host": lambda: BareInterpreter(None, limits.timeout_s, documents),
        "bwrap_warm": lambda: WarmPool(BwrapLauncher(limits=limits)),
        "bwrap_job": lambda: WarmPool(BwrapLauncher(limits=limits), 0, max_jobs=1),
    }
    return {name: makers[name]() for name in PATHS if name in paths}


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 4),
        "p95": round(p95, 4),
        "mean": round(statistics.fmean(ordered), 4),
    }


def compare_png(a: bytes, b: bytes) -> dict:
    """Same size? Mean absolute per-channel difference (RGBA, 0-255)."""
    from PIL import Image, ImageChops, ImageStat

    with Image.open(io.BytesIO(a)) as x, Image.open(io.BytesIO(b)) as y:
        if x.size != y.size:
            return {"same_size": False, "sizes": [list(x.size), list(y.size)], "mean_diff": None}
        diff = ImageChops.difference(x.convert("RGBA"), y.convert("RGBA"))
        return {"same_size": True, "mean_diff": round(statistics.fmean(ImageStat.Stat(diff).mean), 4)}


def summarize(rows: list[ProgramRow]) -> dict:
    """Figures: p50/p95 per path over programs every path rendered; ratios; failures; fidelity."""
    paths = [p for p in PATHS if rows and p in rows[0].outcomes]
    common = [r for r in rows if all(r.outcomes[p].status == "ok" for p in paths)]
    seconds = {p: _stats([r.outcomes[p].seconds for r in common]) for p in paths}
    main = next((p for p in ("pool", "bwrap_warm") if p in paths), paths[0])
    failures = [
        {"program": r.name, "path": p, "status": o.status, "error": o.error}
        for r in rows
        for p, o in r.outcomes.items()
        if o.status != "ok"
    ]
    out: dict = {
        "programs": len(rows),
        "rendered": sum(r.outcomes[main].status == "ok" for r in rows),
        "failed": sum(r.outcomes[main].status != "ok" for r in rows),
        "compared": len(common),
        "seconds": seconds,
        "failures": failures,
    }

    def ratio(a: str, b: str, q: str) -> float | None:
        if a not in seconds or b not in seconds or not seconds[b][q]:
            return None
        return round(seconds[a][q] / seconds[b][q], 3)

    out.update(
        p50_ratio=ratio("pool", "bare", "p50"),
        p95_ratio=ratio("pool", "bare", "p95"),
        p50_docker_run_ratio=ratio("docker_run", "pool", "p50"),
        p95_docker_run_ratio=ratio("docker_run", "pool", "p95"),
    )
    if "gvisor_pool" in paths:
        out.update(
            p50_gvisor_ratio=ratio("gvisor_pool", "bare", "p50"),
            p95_gvisor_ratio=ratio("gvisor_pool", "bare", "p95"),
            p50_gvisor_pool_ratio=ratio("gvisor_pool", "pool", "p50"),
        )
    if "bwrap_warm" in paths or "bwrap_job" in paths:
        out.update(
            p50_bwrap_warm_ratio=ratio("bwrap_warm", "bare_host", "p50"),
            p95_bwrap_warm_ratio=ratio("bwrap_warm", "bare_host", "p95"),
            p50_bwrap_job_ratio=ratio("bwrap_job", "bwrap_warm", "p50"),
            p95_bwrap_job_ratio=ratio("bwrap_job", "bwrap_warm", "p95"),
        )
    for warm, floor in FLOORS.items():
        if warm in paths and floor in paths:
            out["fidelity" if warm == "pool" else f"fidelity_{warm}"] = fidelity(rows, warm, floor)
    return out


def fidelity(rows: list[ProgramRow], path: str = "pool", floor: str = "bare") -> dict:
    """`path`'s PNG vs the `floor` render, for the programs the floor rendered."""
    plain = [r for r in rows if r.outcomes[floor].status == "ok"]
    mismatches = []
    for row in plain:
        got = row.outcomes[path]
        if got.status != "ok":
            mismatches.append({"program": row.name, "why": f"{path} {got.status}: {got.error[-200:]}"})
            continue
        cmp = compare_png(got.png, row.outcomes[floor].png)
        if not cmp["same_size"] or cmp["mean_diff"] > MAX_MEAN_DIFF:
            mismatches.append({"program": row.name, "why": "pixels differ", **cmp})
    matched = len(plain) - len(mismatches)
    return {
        "plain_ok": len(plain),
        "matched": matched,
        "match_rate": round(matched / len(plain), 4) if plain else None,
        "mismatches": mismatches,
    }
